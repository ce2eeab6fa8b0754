//! Cheap checks at a trigger, before any regular expression runs: can the detector's
//! pattern match here at all, and in which span?
//!
//! Most triggers in real text are harmless — `password` in prose, a URL without a
//! password, a date — and a regex search, however short, costs more than looking at a few
//! bytes. Each gate is a *necessary* condition of the pattern it names in `rules.rs`, never
//! a stricter one, so it only skips searches that would have found nothing. Where it is
//! unsure (a non-ASCII byte that may be Unicode white space) it lets the search run.

use std::ops::Range;

use super::digits::Groups;
use super::lanes::{self, BLOCK, Kind};
use super::validate;

/// Where a match around a literal must lie, if anywhere (`Trigger::Inside`).
pub(super) type Within = fn(&[u8], Range<usize>) -> Option<Range<usize>>;

/// Whether a run of digits can hold a match (`Trigger::Digits`).
pub(super) type Shape = fn(&[u8], Range<usize>) -> bool;

/// `[A-Za-z0-9_.-]`: the characters a key-like name may run on with (`password_hash`,
/// `aws.secret`, `api-key`).
fn name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// How many value characters (up to `enough`) follow the `:` or `=` at `op`: after the
/// rest of the operator (`:=`, `=>`), white space, an optional quote and `Bearer `,
/// `Basic ` or `Token ` — the shape of the generic, AWS-secret and Azure patterns after
/// the name. `"tokens": 1532` and `10:22:33` have too few.
pub(super) fn value_after(text: &[u8], op: usize, enough: usize) -> usize {
    let mut i = op + 1;
    if matches!(
        (text[op], text.get(i)),
        (b':', Some(b'=')) | (b'=', Some(b'>'))
    ) {
        i += 1;
    }
    i = skip_quote(text, skip_space(text, i));
    // Most values start with no scheme: look for one only where one could start.
    let schemes: &[&[u8]] = match text.get(i).map(u8::to_ascii_lowercase) {
        Some(b'b') => &[b"bearer", b"basic"],
        Some(b't') => &[b"token"],
        _ => &[],
    };
    for scheme in schemes {
        let word = text.get(i..i + scheme.len());
        let spaced = text
            .get(i + scheme.len())
            .is_some_and(u8::is_ascii_whitespace);
        if word.is_some_and(|w| w.eq_ignore_ascii_case(scheme)) && spaced {
            i = skip_space(text, i + scheme.len());
            break;
        }
    }
    let rest = text.get(i..).unwrap_or_default();
    rest.iter()
        .take(enough)
        .take_while(|&&b| value_byte(b))
        .count()
}

/// The `:` and `=` of a text, in order, after which [`value_after`] may count `shortest`
/// value characters or more — a few more, never fewer. A prompt has one every 30 bytes
/// or so (`"tokens": 1532`, `10:22:33`, `"id":"…"`), and nine in ten have a short value:
/// these are found 64 bytes at a time, with bit masks, instead of looking after each.
pub(super) struct Assignments<'a> {
    text: &'a [u8],
    shortest: usize,
    /// The block looked at, and the operators in it not yet looked at.
    index: usize,
    ops: u64,
    /// The masks of that block and the next: [operator, skipped, value].
    this: [u64; 3],
    next: [u64; 3],
}

/// `:` and `=`; the bytes [`value_after`] may skip before a value (white space, quotes,
/// the `>` of `=>` and, as `\s` is Unicode, any non-ASCII byte), with the other control
/// bytes, which no value starts with, to save compares; and a few more bytes
/// than a value's ([`value_byte`]): the printable ASCII but for what ends most short
/// values (`"id": 17,`, `10:22:33`, `f(x)`), in fewer compares.
const ASSIGNMENT_KINDS: [Kind; 3] = [
    Kind {
        bytes: b":=",
        ranges: &[],
        high: false,
        except: &[],
    },
    Kind {
        bytes: b"\"'>",
        ranges: &[(0x01, b' ')],
        high: true,
        except: &[],
    },
    Kind {
        bytes: &[],
        ranges: &[(0x21, 0x7e)],
        high: false,
        except: b"\"',:;)]}",
    },
];

impl<'a> Assignments<'a> {
    pub fn new(text: &'a [u8], shortest: usize) -> Self {
        let this = lanes::block(text, 0, &ASSIGNMENT_KINDS);
        Assignments {
            text,
            shortest,
            index: 0,
            ops: this[0],
            this,
            next: lanes::block(text, 1, &ASSIGNMENT_KINDS),
        }
    }

    /// Whether the operator at bit `op` of the block may have a long enough value: the
    /// first byte after it that is not skipped starts a run of value bytes that is long
    /// enough, or may be a scheme (five or six bytes and white space: `Bearer `), or is
    /// the `=` of `:=`, or reaches past what the masks see.
    fn may_have_value(&self, op: usize) -> bool {
        let wide = |kind: usize| u128::from(self.this[kind]) | u128::from(self.next[kind]) << 64;
        let (skipped, value) = (wide(1), wide(2));
        let after = !skipped >> (op + 1);
        if after == 0 {
            return true;
        }
        let first = op + 1 + after.trailing_zeros() as usize;
        let end = first + (!value >> first).trailing_zeros() as usize;
        if end >= 128 || end - first >= self.shortest {
            return true;
        }
        let base = self.index * BLOCK;
        let byte = |at: usize| self.text.get(base + at).copied().unwrap_or(0);
        let scheme = matches!(end - first, 5 | 6) && byte(end).is_ascii_whitespace();
        scheme || byte(first) == b'='
    }
}

impl Iterator for Assignments<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        loop {
            while self.ops != 0 {
                let op = self.ops.trailing_zeros() as usize;
                self.ops &= self.ops - 1;
                if self.may_have_value(op) {
                    return Some(self.index * BLOCK + op);
                }
            }
            self.index += 1;
            if self.index * BLOCK >= self.text.len() {
                return None;
            }
            self.this = self.next;
            self.next = lanes::block(self.text, self.index + 1, &ASSIGNMENT_KINDS);
            self.ops = self.this[0];
        }
    }
}

/// Where one of `names` (ASCII case-insensitive) starts in the key-like name before the
/// `:` or `=` at `op` (`DB_PASSWORD = `, `"aws_secret_access_key": `), left to right: a
/// name, at most `orization` plus the patterns' 24 more name characters, an optional
/// quote, white space, then the operator.
pub(super) fn names_before<'a>(
    text: &'a [u8],
    op: usize,
    names: &'a [&'a str],
) -> impl Iterator<Item = usize> + 'a {
    const TAIL: usize = 9 + 24;
    let mut end = op;
    while end > 0 && (text[end - 1].is_ascii_whitespace() || text[end - 1] >= 0x80) {
        end -= 1;
    }
    if end > 0 && matches!(text[end - 1], b'"' | b'\'') {
        end -= 1;
    }
    let longest = names.iter().map(|n| n.len()).max().unwrap_or(0);
    let mut start = end;
    while start > 0 && end - start < TAIL + longest && name_byte(text[start - 1]) {
        start -= 1;
    }
    // Every `https://` comes here: compare whole names only where a first letter fits.
    (start..end).filter(move |&at| {
        let first = text[at].to_ascii_lowercase();
        names.iter().any(|name| {
            name.as_bytes()[0].to_ascii_lowercase() == first
                && text
                    .get(at..at + name.len())
                    .is_some_and(|w| w.eq_ignore_ascii_case(name.as_bytes()))
        })
    })
}

/// `[A-Za-z0-9_\-+/=.~!#$%^&*]`: what the generic secret's value is made of, and the AWS
/// and Azure keys' values too (theirs are narrower). A table: this runs after every `:`
/// and `=` of the text.
fn value_byte(b: u8) -> bool {
    const TABLE: [bool; 256] = {
        let mut table = [false; 256];
        let mut b = 0;
        while b < 256 {
            let c = b as u8;
            table[b] = c.is_ascii_alphanumeric()
                || matches!(c, b'_' | b'-' | b'+' | b'/' | b'=' | b'.' | b'~' | b'!')
                || matches!(c, b'#' | b'$' | b'%' | b'^' | b'&' | b'*');
            b += 1;
        }
        table
    };
    TABLE[usize::from(b)]
}

fn skip_quote(text: &[u8], i: usize) -> usize {
    i + usize::from(matches!(text.get(i), Some(b'"' | b'\'')))
}

/// `\s` is Unicode: a non-ASCII byte may be part of white space, so it is skipped too
/// (no value character is one).
fn skip_space(text: &[u8], mut i: usize) -> usize {
    while i < text.len() && (text[i].is_ascii_whitespace() || text[i] >= 0x80) {
        i += 1;
    }
    i
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
/// in, if the first white space, `/`, `?` or `@` after it is an `@` within reach of
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
        .position(|&b| b.is_ascii_whitespace() || matches!(b, b'/' | b'?' | b'@'))?;
    // The pattern ends on the host's first character, which it needs to see.
    let at = sep.end + stop;
    (text[at] == b'@').then_some(start..(at + 2).min(text.len()))
}

/// The hosts of the webhook URLs (`webhook_url`), as their host name ends.
const WEBHOOK_HOSTS: &[&[u8]] = &[
    b"hooks.slack.com",
    b"discord.com",
    b"discordapp.com",
    b".webhook.office.com",
    b"outlook.office.com",
    b".logic.azure.com",
    b".environment.api.powerplatform.com",
];

/// The span a webhook URL after the `://` at `sep` must lie in: its host, up to the first
/// `/`, `:`, `?`, `#`, `@`, quote or white space, is one of [`WEBHOOK_HOSTS`]; the path
/// may run 2 KiB.
pub(super) fn webhook_span(text: &[u8], sep: Range<usize>) -> Option<Range<usize>> {
    let rest = &text[sep.end..text.len().min(sep.end + 2048)];
    let host = rest
        .iter()
        .position(|&b| b.is_ascii_whitespace() || b"/:?#@\"'".contains(&b))
        .unwrap_or(rest.len());
    let name = &rest[..host];
    (WEBHOOK_HOSTS.iter().any(|h| name.ends_with(h))).then_some(sep.end..sep.end + rest.len())
}

/// US SSN: groups of 3, 2 and 4 digits.
pub(super) fn ssn_shape(text: &[u8], run: Range<usize>) -> bool {
    Groups::of(&text[run]).is_none_or(|g| g.has_lengths(&[3, 2, 4]))
}

/// A phone number as the three phone patterns write it: `+` before the first digit
/// (E.164); groups of 3, 3 and 4 digits (North American); a group of 3–5 digits starting
/// with `0` and another not `0`, then one of 3–4 digits (European), or `0` and another digit
/// followed by four pairs (French). Dates (`2024-01-15`), times, versions and IP addresses
/// have none of these.
pub(super) fn phone_shape(text: &[u8], run: Range<usize>) -> bool {
    if text[run.start.saturating_sub(2)..run.start].contains(&b'+') {
        return true;
    }
    let Some(groups) = Groups::of(&text[run]) else {
        return true; // Too long to check cheaply: let the patterns decide.
    };
    let national = |g: &[u8]| g[0] == b'0' && g.get(1).is_some_and(|&d| d != b'0');
    let european = |w: &[&[u8]]| {
        national(w[0]) && (3..=5).contains(&w[0].len()) && (3..=4).contains(&w[1].len())
    };
    let french = |w: &[&[u8]]| national(w[0]) && w.iter().all(|g| g.len() == 2);
    groups.has_lengths(&[3, 3, 4])
        || groups.list().windows(2).any(european)
        || groups.list().windows(5).any(french)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_assignment_with_a_long_value_is_found() {
        // Short pieces, so that operators, quotes, spaces and values meet in every order.
        const PIECES: &[&str] = &[
            ":",
            "=",
            ":=",
            "=>",
            " ",
            "  ",
            "\t",
            "\n",
            "\"",
            "'",
            "é",
            "\u{a0}",
            "Bearer ",
            "token ",
            "basic",
            "abc",
            "0123456789",
            "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
            "+/=",
            "_-.",
            ",",
            "}",
            "{",
            "<",
            ">",
            "/",
            "x",
        ];
        let mut random = crate::guards::dlp::xorshift(0x2545_f491_4f6c_dd1d_u64);
        for case in 0..3000 {
            let pieces = random() % 120;
            let text: String = (0..pieces)
                .map(|_| PIECES[(random() % PIECES.len() as u64) as usize])
                .collect();
            let bytes = text.as_bytes();
            for shortest in [1, 5, 20, 40] {
                let found: Vec<usize> = Assignments::new(bytes, shortest).collect();
                let ops: Vec<usize> = memchr::memchr2_iter(b':', b'=', bytes).collect();
                let long: Vec<usize> = (ops.iter().copied())
                    .filter(|&op| value_after(bytes, op, shortest) >= shortest)
                    .collect();
                assert!(found.windows(2).all(|w| w[0] < w[1]), "case {case}");
                assert!(found.iter().all(|op| ops.contains(op)), "case {case}");
                assert!(
                    long.iter().all(|op| found.contains(op)),
                    "case {case} {text:?}"
                );
            }
        }
    }
}
