//! Checks that turn a pattern's match into a finding or throw it away: checksums (Luhn,
//! IBAN mod-97), number-plan rules (SSN, phone digit counts), structure (a JWT header that is
//! JSON naming an `alg`) and randomness (a generic secret is not a word or a placeholder).
//!
//! A validator sees the whole haystack and the match's byte span, and returns the span to
//! report — the same, narrower (a card without the CVV typed after it), or `None`.

use std::ops::Range;

/// Accepts or rejects a match; may narrow its span.
pub(super) type Validator = fn(text: &str, span: Range<usize>) -> Option<Range<usize>>;

pub(super) fn any(_: &str, span: Range<usize>) -> Option<Range<usize>> {
    Some(span)
}

/// The validators a custom detector may name (`guards.dlp.custom[].validator`): the
/// checks that mean the same whatever pattern found the match. The built-in ones that lean
/// on their own pattern's shape (a card's issuer and grouping, a phone's number plan) are
/// not offered.
pub(super) const CUSTOM_NAMES: &[&str] = &["luhn", "iban", "us_ssn", "jwt", "entropy"];

/// The validator of a [`CUSTOM_NAMES`] entry. Each copes with any match of any pattern.
pub(super) fn custom(name: &str) -> Option<Validator> {
    Some(match name {
        "luhn" => luhn_digits,
        "iban" => iban,
        "us_ssn" => custom_ssn,
        "jwt" => jwt,
        "entropy" => generic_secret,
        _ => return None,
    })
}

/// The match's digits, separators ignored, pass the Luhn check (an account or card number
/// of the user's own format).
fn luhn_digits(text: &str, span: Range<usize>) -> Option<Range<usize>> {
    let digits: Vec<u8> = text[span.clone()]
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect();
    (digits.len() >= 2 && luhn(&digits)).then_some(span)
}

/// [`us_ssn`] reads exactly nine digits; a user's pattern may match any number of them.
fn custom_ssn(text: &str, span: Range<usize>) -> Option<Range<usize>> {
    let digits = text[span.clone()]
        .bytes()
        .filter(u8::is_ascii_digit)
        .count();
    if digits == 9 {
        us_ssn(text, span)
    } else {
        None
    }
}

/// Real keys mix cases and digits; `sk-this-is-a-slug` does not, and Anthropic's `sk-ant-`
/// keys belong to their own detector.
pub(super) fn openai_key(text: &str, span: Range<usize>) -> Option<Range<usize>> {
    let key = &text[span.clone()];
    let body = key.strip_prefix("sk-")?;
    if body.starts_with("ant-") || body.len() < 32 {
        return None;
    }
    mixed_alnum(body).then_some(span)
}

/// At least one upper-case letter, one lower-case letter and one digit.
pub(super) fn mixed(text: &str, span: Range<usize>) -> Option<Range<usize>> {
    mixed_alnum(&text[span.clone()]).then_some(span)
}

fn mixed_alnum(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter().any(u8::is_ascii_uppercase)
        && b.iter().any(u8::is_ascii_lowercase)
        && b.iter().any(u8::is_ascii_digit)
}

/// A 40-character AWS secret has both cases; a 40-character git SHA is lower-case hex.
pub(super) fn aws_secret(text: &str, span: Range<usize>) -> Option<Range<usize>> {
    let b = text[span.clone()].as_bytes();
    (b.iter().any(u8::is_ascii_uppercase) && b.iter().any(u8::is_ascii_lowercase)).then_some(span)
}

/// `xoxb-<team>-<user>-<secret>`: numeric parts, then an alphanumeric one.
pub(super) fn slack_token(text: &str, span: Range<usize>) -> Option<Range<usize>> {
    let parts: Vec<&str> = text[span.clone()].split('-').collect();
    let numeric = parts[1..]
        .iter()
        .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .count();
    (parts.len() >= 3 && numeric >= 1).then_some(span)
}

/// A JWT's header is base64url JSON naming its algorithm.
pub(super) fn jwt(text: &str, span: Range<usize>) -> Option<Range<usize>> {
    let token = &text[span.clone()];
    let header = token.split('.').next()?;
    let json = base64url_decode(header)?;
    let value: serde_json::Value = serde_json::from_slice(&json).ok()?;
    value.get("alg")?.as_str()?;
    Some(span)
}

fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in s.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// A password in `scheme://user:password@host`, unless it is a placeholder or masked.
pub(super) fn url_password(text: &str, span: Range<usize>) -> Option<Range<usize>> {
    let password = &text[span.clone()];
    let placeholder = password.starts_with('$')
        || password.starts_with('<')
        || password.starts_with('{')
        || password.starts_with('%')
        || password
            .bytes()
            .all(|b| b == b'*' || b == b'x' || b == b'X')
        || matches!(
            password.to_ascii_lowercase().as_str(),
            "password" | "pass" | "passwd" | "pwd" | "secret" | "changeme" | "redacted"
        );
    (!placeholder).then_some(span)
}

/// A value after a key-like name that is no placeholder (`${DB_PASSWORD}`, `<token>`,
/// `********`, `changeme`) and, after a password's name, has eight characters or more with
/// a letter and a digit; after any other name, twenty or more that look random: letters
/// and digits, spread-out characters, and not mostly words (`oauth2_client_credentials_flow`).
/// A name that says the value is about a secret rather than one (`api_key_id`,
/// `password_file`) has none.
pub(super) fn generic_secret(text: &str, span: Range<usize>) -> Option<Range<usize>> {
    let value = text[span.clone()].trim_end_matches(['.', ',']);
    let b = value.as_bytes();
    let name = assigned_name(text, span.start).to_ascii_lowercase();
    if b.len() < 8 || placeholder(b) || names_no_secret(&name) {
        return None;
    }
    let letters = b.iter().any(u8::is_ascii_alphabetic);
    let digits = b.iter().filter(|b| b.is_ascii_digit()).count();
    if !letters || digits == 0 || digits == b.len() {
        return None;
    }
    let password = name.contains("pass") || name.contains("pwd");
    if password {
        return (shannon_entropy(b) >= 2.5).then(|| span.start..span.start + value.len());
    }
    if b.len() < 20 {
        return None;
    }
    // `idempotency_key`, `cache_key`: a UUID under a name that is only a `key` is an id.
    let keyword = [
        "secret",
        "token",
        "api",
        "access",
        "auth",
        "credential",
        "private",
        "signing",
    ];
    if !keyword.iter().any(|k| name.contains(k)) && uuid(b) {
        return None;
    }
    // Hex has sixteen symbols, so a random 32-digit hex key scores less than base64.
    let hex = b.iter().all(u8::is_ascii_hexdigit) && b.len() >= 32;
    let floor = if hex { 3.0 } else { 3.5 };
    if shannon_entropy(b) < floor || wordy(b) {
        return None;
    }
    Some(span.start..span.start + value.len())
}

/// The key-like name a value is assigned to: back from the value over an optional scheme
/// (`Bearer `), quote, white space and operator, then the name's characters.
fn assigned_name(text: &str, value: usize) -> &str {
    let b = text.as_bytes();
    let skip = |mut i: usize| {
        while i > 0 && (b"\"' \t\r\n:=>".contains(&b[i - 1]) || b[i - 1] >= 0x80) {
            i -= 1;
        }
        i
    };
    let name_byte = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-');
    let mut end = skip(value);
    let word_start = (0..end)
        .rev()
        .take_while(|&i| b[i].is_ascii_alphabetic())
        .last();
    if let Some(start) = word_start {
        let word = &text[start..end];
        let scheme = ["bearer", "basic", "token"]
            .iter()
            .any(|s| word.eq_ignore_ascii_case(s));
        if scheme && value > end && b[end].is_ascii_whitespace() {
            end = skip(start);
        }
    }
    let start = (0..end)
        .rev()
        .take_while(|&i| name_byte(b[i]))
        .last()
        .unwrap_or(end);
    let start = start.max(end.saturating_sub(64));
    // A multi-byte character never is a name byte, so `start` is on a boundary.
    text.get(start..end).unwrap_or_default()
}

/// Names of what surrounds a secret, not of a secret: its id, its file, its length.
fn names_no_secret(name: &str) -> bool {
    const SUFFIXES: &[&str] = &[
        "id", "ids", "name", "type", "url", "uri", "file", "path", "length", "len", "ttl", "at",
        "hash", "policy", "expiry", "expires",
    ];
    let last = name.rsplit(['_', '-', '.']).next().unwrap_or(name);
    // camelCase: `apiKeyId` lower-cased is `apikeyid`; its tail after `key` is the suffix.
    let camel = ["key", "token", "secret", "password"]
        .iter()
        .filter_map(|k| name.rfind(k).map(|i| &name[i + k.len()..]))
        .find(|tail| !tail.is_empty());
    (name.contains(['_', '-', '.']) && SUFFIXES.contains(&last))
        || camel.is_some_and(|tail| SUFFIXES.contains(&tail))
}

/// Stands in for a value rather than being one: a reference (`$`, `${`, `{{`, `%(`), a
/// `<hint>`, masking (`****`, `xxxx`) or a word that says so.
fn placeholder(b: &[u8]) -> bool {
    let lower = String::from_utf8_lossy(b).to_ascii_lowercase();
    matches!(b[0], b'$' | b'<' | b'{' | b'%')
        || b.iter()
            .all(|&c| matches!(c, b'*' | b'x' | b'X' | b'.' | b'-' | b'_'))
        || [
            "changeme",
            "redacted",
            "placeholder",
            "your_",
            "your-",
            "example",
            "replace",
        ]
        .iter()
        .any(|w| lower.contains(w))
}

/// `8-4-4-4-12` hex digits.
fn uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                *c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// A webhook URL whose token is random, not the `XXXXXXXX` of a documentation example:
/// the last path segment, or the `sig=` of a workflow URL.
pub(super) fn webhook_url(text: &str, span: Range<usize>) -> Option<Range<usize>> {
    let url = &text[span.clone()];
    let token = match url.rfind("sig=") {
        Some(at) => &url[at + 4..],
        None => url.rsplit('/').next().unwrap_or(url),
    };
    (shannon_entropy(token.as_bytes()) >= 3.0).then_some(span)
}

/// Bits per character of the value's own character distribution.
pub(super) fn shannon_entropy(b: &[u8]) -> f32 {
    let mut counts = [0u32; 256];
    for &c in b {
        counts[usize::from(c)] += 1;
    }
    let n = b.len() as f32;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f32 / n;
            -p * p.log2()
        })
        .sum()
}

/// More than half of the value is words of three letters or more — `lower`, `UPPER` or
/// `Capitalised`, camelCase split — as in identifiers and prose (`X-Api-Key-For-Service-2`,
/// `oauth2_client_credentials_flow`), which random keys rarely are. A word has a vowel and
/// no four consonants in a row: random letters make `Qgejxi` and `WYTWH` often enough
/// (one 24-character base62 key in 17 was wordy without this; one in 75 with it).
fn wordy(b: &[u8]) -> bool {
    let vowel = |c: &u8| b"aeiouyAEIOUY".contains(c);
    let pronounceable =
        |word: &[u8]| word.iter().any(vowel) && !word.windows(4).any(|w| !w.iter().any(vowel));
    let mut covered = 0;
    for run in b.split(|c| !c.is_ascii_alphabetic()) {
        let mut start = 0;
        for i in 1..=run.len() {
            let boundary =
                i == run.len() || (run[i - 1].is_ascii_lowercase() && run[i].is_ascii_uppercase());
            if boundary {
                let word = &run[start..i];
                let rest = &word[1..];
                let shaped = rest.iter().all(u8::is_ascii_lowercase)
                    || word.iter().all(u8::is_ascii_uppercase);
                if word.len() >= 3 && shaped && pronounceable(word) {
                    covered += word.len();
                }
                start = i;
            }
        }
    }
    covered * 2 > b.len()
}

/// Luhn-valid, 13–19 digits, a known issuer prefix of the right length, and separators used
/// consistently. A trailing group that breaks it (a CVV or expiry typed after the number) is
/// dropped once.
pub(super) fn payment_card(text: &str, span: Range<usize>) -> Option<Range<usize>> {
    if card_ok(&text[span.clone()]) {
        return Some(span);
    }
    let s = &text[span.clone()];
    let cut = s.rfind([' ', '-'])?;
    card_ok(&s[..cut]).then_some(span.start..span.start + cut)
}

fn card_ok(s: &str) -> bool {
    let digits: Vec<u8> = s
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect();
    let mut seps = s.bytes().filter(|b| !b.is_ascii_digit());
    if let Some(first) = seps.next()
        && seps.any(|b| b != first)
    {
        return false;
    }
    if !printed_grouping(s) {
        return false;
    }
    (13..=19).contains(&digits.len()) && luhn(&digits) && issuer_accepts(&digits)
}

/// Whether a number written in groups is grouped as cards are printed: fours (the last
/// group shorter), or Amex and Diners' 4-6-5 and 4-6-4. Three numbers in a sentence that
/// happen to pass Luhn (`34307 90881 67952`) are not grouped like a card.
fn printed_grouping(s: &str) -> bool {
    let groups: Vec<usize> = s.split([' ', '-']).map(str::len).collect();
    match groups.as_slice() {
        [_] => true,
        [4, 6, 5] | [4, 6, 4] => true,
        [rest @ .., last] => rest.iter().all(|&g| g == 4) && (1..=4).contains(last),
        [] => false,
    }
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let d = d * 2;
                if d > 9 { d - 9 } else { d }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Issuer identification numbers of the major networks and the lengths they issue.
fn issuer_accepts(digits: &[u8]) -> bool {
    let prefix = |n: usize| {
        digits[..n]
            .iter()
            .fold(0u32, |acc, &d| acc * 10 + u32::from(d))
    };
    let len = digits.len();
    let (p1, p2, p3, p4) = (prefix(1), prefix(2), prefix(3), prefix(4));
    match () {
        // Visa
        () if p1 == 4 => matches!(len, 13 | 16 | 19),
        // Mastercard, including the 2-series
        () if (51..=55).contains(&p2) || (2221..=2720).contains(&p4) => len == 16,
        // American Express
        () if p2 == 34 || p2 == 37 => len == 15,
        // Discover
        () if p4 == 6011 || (644..=649).contains(&p3) || p2 == 65 => (16..=19).contains(&len),
        // JCB
        () if (3528..=3589).contains(&p4) => (16..=19).contains(&len),
        // Diners Club
        () if (300..=305).contains(&p3) || p2 == 36 || p2 == 38 || p2 == 39 => {
            (14..=19).contains(&len)
        }
        // UnionPay
        () if p2 == 62 => (16..=19).contains(&len),
        () => false,
    }
}

/// Area not 000, 666 or 9xx; group not 00; serial not 0000; and not a piece of a longer
/// dash-separated number (`123-45-6789-01`).
pub(super) fn us_ssn(text: &str, span: Range<usize>) -> Option<Range<usize>> {
    let s = &text[span.clone()];
    let d: Vec<u32> = s
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| u32::from(b - b'0'))
        .collect();
    let area = d[0] * 100 + d[1] * 10 + d[2];
    let group = d[3] * 10 + d[4];
    let serial = d[5] * 1000 + d[6] * 100 + d[7] * 10 + d[8];
    if area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0 {
        return None;
    }
    (!inside_longer_number(text, &span, b"-./")).then_some(span)
}

/// The span continues a number on either side: a separator from `seps` and a digit.
fn inside_longer_number(text: &str, span: &Range<usize>, seps: &[u8]) -> bool {
    let b = text.as_bytes();
    let joined = |sep: Option<&u8>, digit: Option<&u8>| {
        sep.is_some_and(|s| seps.contains(s)) && digit.is_some_and(u8::is_ascii_digit)
    };
    let before = span.start >= 2 && joined(b.get(span.start - 1), b.get(span.start - 2));
    before || joined(b.get(span.end), b.get(span.end + 1))
}

/// 8–15 digits in all (E.164's limit), not one digit repeated.
pub(super) fn phone(text: &str, span: Range<usize>) -> Option<Range<usize>> {
    let digits: Vec<u8> = text[span.clone()]
        .bytes()
        .filter(u8::is_ascii_digit)
        .collect();
    let repeated = digits.iter().all(|&d| d == digits[0]);
    // `(+1 415 555 0132)`: the closing parenthesis is the prose's, not the number's.
    let shown = &text[span.clone()];
    let span = if shown.ends_with(')') && shown.matches(')').count() > shown.matches('(').count() {
        span.start..span.end - 1
    } else {
        span
    };
    let piece = inside_longer_number(text, &span, b" -./");
    ((8..=15).contains(&digits.len()) && !repeated && !piece).then_some(span)
}

/// The country's IBAN length and a mod-97 remainder of 1. A match that runs on past the
/// IBAN (`... 32 THANKS`) is cut to the country's length.
pub(super) fn iban(text: &str, span: Range<usize>) -> Option<Range<usize>> {
    let s = &text[span.clone()];
    // `get`: a custom pattern's match may be short or start with a multi-byte character.
    let want = iban_length(s.get(..2)?)?;
    let mut alnum = 0;
    let mut end = None;
    for (i, b) in s.bytes().enumerate() {
        if b.is_ascii_alphanumeric() {
            alnum += 1;
            if alnum == want {
                end = Some(i + 1);
                break;
            }
        }
    }
    let s = &s[..end?];
    let compact: Vec<u8> = s.bytes().filter(u8::is_ascii_alphanumeric).collect();
    let rearranged = compact[4..].iter().chain(&compact[..4]);
    let mut rem = 0u32;
    for &b in rearranged {
        let v = if b.is_ascii_digit() {
            u32::from(b - b'0')
        } else {
            u32::from(b - b'A') + 10
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    (rem == 1).then_some(span.start..span.start + s.len())
}

/// IBAN lengths of the SEPA countries and the others most often seen.
pub(super) fn iban_length(country: &str) -> Option<usize> {
    Some(match country {
        "NO" => 15,
        "BE" => 16,
        "DK" | "FI" | "FO" | "GL" | "NL" => 18,
        "MK" | "SI" => 19,
        "AT" | "BA" | "EE" | "KZ" | "LT" | "LU" | "XK" => 20,
        "CH" | "CR" | "HR" | "LI" | "LV" => 21,
        "BG" | "BH" | "DE" | "GB" | "GE" | "IE" | "ME" | "RS" => 22,
        "AE" | "GI" | "IL" | "TL" => 23,
        "AD" | "CZ" | "ES" | "MD" | "PK" | "RO" | "SA" | "SE" | "SK" | "TN" | "VG" => 24,
        "PT" => 25,
        "IS" | "TR" => 26,
        "FR" | "GR" | "IT" | "MC" | "MR" | "SM" => 27,
        "AL" | "AZ" | "CY" | "DO" | "GT" | "HU" | "LB" | "PL" => 28,
        "BR" | "PS" | "QA" | "UA" => 29,
        "JO" | "KW" | "MU" => 30,
        "MT" | "SC" => 31,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(f: Validator, s: &str) -> bool {
        f(s, 0..s.len()) == Some(0..s.len())
    }

    #[test]
    fn checksums_accept_the_documented_examples_and_reject_one_digit_off() {
        assert!(whole(payment_card, "4111 1111 1111 1111"));
        assert!(!whole(payment_card, "4111 1111 1111 1112"));
        assert!(whole(payment_card, "378282246310005"));
        assert!(whole(iban, "GB82 WEST 1234 5698 7654 32"));
        assert!(!whole(iban, "GB82 WEST 1234 5698 7654 33"));
        assert!(whole(iban, "DE89370400440532013000"));
    }

    #[test]
    fn a_cvv_typed_after_the_card_is_not_part_of_it() {
        let s = "4111 1111 1111 1111 123";
        assert_eq!(payment_card(s, 0..s.len()), Some(0..19));
    }

    #[test]
    fn ssn_rules_reject_unassigned_numbers() {
        for bad in [
            "000-12-3456",
            "666-12-3456",
            "912-12-3456",
            "123-00-4567",
            "123-45-0000",
        ] {
            assert!(!whole(us_ssn, bad), "{bad}");
        }
        assert!(whole(us_ssn, "123-45-6789"));
    }

    #[test]
    fn every_custom_validator_name_resolves_and_copes_with_any_match() {
        for name in CUSTOM_NAMES {
            let f = custom(name).unwrap_or_else(|| panic!("{name}"));
            for s in ["", "1", "é", "GB", "Gé82", "12-34", "eyJ", "123-45-6789-0"] {
                f(s, 0..s.len());
            }
        }
        assert!(custom("payment_card").is_none());
        assert!(whole(custom("luhn").unwrap(), "7992-7398-713"));
        assert!(!whole(custom("luhn").unwrap(), "7992-7398-714"));
        assert!(whole(
            custom("iban").unwrap(),
            "GB82 WEST 1234 5698 7654 32"
        ));
    }

    #[test]
    fn entropy_of_a_repeated_byte_is_zero() {
        assert_eq!(shannon_entropy(b"aaaa"), 0.0);
        assert_eq!(shannon_entropy(b"abcd"), 2.0);
    }
}
