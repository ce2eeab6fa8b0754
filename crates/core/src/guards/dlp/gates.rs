//! Cheap checks at a trigger, before any regular expression runs: can the detector's
//! pattern match here at all, and in which span?
//!
//! Most triggers in real text are harmless — `password` in prose, a URL without a
//! password, a date — and a regex search, however short, costs more than looking at a few
//! bytes. Each gate is a *necessary* condition of the pattern it names in `rules.rs`, never
//! a stricter one, so it only skips searches that would have found nothing. Where it is
//! unsure (a non-ASCII byte that may be Unicode white space) it lets the search run.

use std::ops::Range;

use super::{digits, validate};

/// Where a match around a literal must lie, if anywhere (`Trigger::Inside`).
pub(super) type Within = fn(&[u8], Range<usize>) -> Option<Range<usize>>;

/// Whether a run of digits can hold a match (`Trigger::Digits`).
pub(super) type Shape = fn(&[u8], Range<usize>) -> bool;

/// `[A-Za-z0-9_.-]`: the characters a key-like name may run on with (`password_hash`,
/// `aws.secret`, `api-key`).
fn name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// After a key-like name (`token`, `aws`, `AccountKey`): more name characters
/// (`authorization`, `aws_secret_access_key`: at most `orization` plus the patterns' 24),
/// an optional quote, white space, then `:` or `=` — the shape of the generic, AWS-secret
/// and Azure patterns. `token limit` and `the password field` stop here.
pub(super) fn assignment_follows(text: &[u8], name: Range<usize>) -> bool {
    const TAIL: usize = 9 + 24;
    let mut i = name.end;
    while i < text.len() && i - name.end <= TAIL && name_byte(text[i]) {
        i += 1;
    }
    if i - name.end > TAIL {
        return false;
    }
    if matches!(text.get(i), Some(b'"' | b'\'')) {
        i += 1;
    }
    // `\s` is Unicode: a non-ASCII byte may be part of white space, so it does not stop us.
    while i < text.len() && (text[i].is_ascii_whitespace() || text[i] >= 0x80) {
        i += 1;
    }
    matches!(text.get(i), Some(b':' | b'='))
}

/// The span an email address around the `@` at `at` must lie in: at most 64 local-part
/// characters `[A-Za-z0-9._%+-]` before it, domain characters `[A-Za-z0-9.-]` after it.
pub(super) fn email_span(text: &[u8], at: Range<usize>) -> Option<Range<usize>> {
    let local = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-');
    let mut start = at.start;
    while start > 0 && at.start - start < 64 && local(text[start - 1]) {
        start -= 1;
    }
    let domain = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-');
    let end = at.end + text[at.end..].iter().take_while(|b| domain(b)).count();
    (start < at.start && end > at.end).then_some(start..end)
}

/// `scheme://user:password@host`: the span such a URL around the `://` at `sep` must lie
/// in, if the first white space, `/`, `?`, `#` or `@` after it is an `@` within reach of
/// the pattern (64 bytes of user, 128 of password). Most URLs have no password and a `/`
/// comes first.
pub(super) fn userinfo_span(text: &[u8], sep: Range<usize>) -> Option<Range<usize>> {
    let scheme = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'-');
    let mut start = sep.start;
    while start > 0 && sep.start - start < 21 && scheme(text[start - 1]) {
        start -= 1;
    }
    let after = &text[sep.end..text.len().min(sep.end + 64 + 1 + 128 + 1)];
    let stop = after
        .iter()
        .position(|&b| b.is_ascii_whitespace() || matches!(b, b'/' | b'?' | b'#' | b'@'))?;
    // The pattern ends on the host's first character, which it needs to see.
    let at = sep.end + stop;
    (text[at] == b'@').then_some(start..(at + 2).min(text.len()))
}

/// US SSN: groups of 3, 2 and 4 digits.
pub(super) fn ssn_shape(text: &[u8], run: Range<usize>) -> bool {
    digits::has_groups(&text[run], [3, 2, 4])
}

/// A phone number as the three phone patterns write it: `+` before the first digit
/// (E.164), groups of 3, 3 and 4 digits (North American), or a group of 2–5 digits that
/// starts with `0` (European national). Dates (`2024-01-15`), versions and IP addresses
/// have none of these.
pub(super) fn phone_shape(text: &[u8], run: Range<usize>) -> bool {
    let before = &text[run.start.saturating_sub(2)..run.start];
    before.contains(&b'+')
        || digits::has_groups(&text[run.clone()], [3, 3, 4])
        || digits::groups(&text[run]).any(|g| g[0] == b'0' && (2..=5).contains(&g.len()))
}

/// A payment card has 13 digits or more, which the trigger already asks for.
pub(super) fn any_shape(_: &[u8], _: Range<usize>) -> bool {
    true
}

/// An IBAN starts with a country whose IBAN length we know (the validator needs it).
pub(super) fn iban_country(text: &[u8], letters: usize) -> bool {
    std::str::from_utf8(&text[letters..letters + 2])
        .is_ok_and(|c| validate::iban_length(c).is_some())
}
