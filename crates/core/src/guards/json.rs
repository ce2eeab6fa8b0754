//! Secrets in a JSON body, found in its raw text.
//!
//! Prompts travel as JSON, and parsing a body into values only to scan its strings would
//! parse it a second time. Instead the detectors run once over the raw text, seen through a
//! view of the same length in which every escape sequence reads as spaces followed by what
//! it stands for (`\n` as a space and a newline, `\u0041` as five spaces and `A`): offsets
//! in the view are offsets in the body, and a secret after an escaped newline still starts
//! at a word boundary. Only when something is found is the body walked, to name where each
//! finding is (`messages[1].content`) and to widen its span to whole escapes inside one
//! string, so that replacing it leaves valid JSON.

use std::borrow::Cow;
use std::ops::Range;

use super::dlp::{Detectors, Finding};
use super::path::{Path, key_is_sensitive};

/// A finding in a JSON body, with its place in the document and a span that is safe to
/// replace with a placeholder.
#[derive(Clone, Debug, PartialEq)]
pub struct Located {
    pub finding: Finding,
    /// `messages[1].content`; a key that is itself sensitive shows as `*`.
    pub path: String,
    /// The bytes to replace: inside one string literal, on escape boundaries; or a whole
    /// number token, which the placeholder replaces as a string.
    pub span: Range<usize>,
    pub quote: bool,
}

/// Everything the detectors find in `body`, a JSON document. A body that is not JSON
/// after all is scanned as text, its findings placed at the path `body`.
pub fn scan(detectors: &Detectors, body: &str) -> Vec<Located> {
    let view = unescaped(body);
    let findings = detectors.scan(&view);
    if findings.is_empty() {
        return Vec::new();
    }
    let mut walk = Walk {
        detectors,
        body: body.as_bytes(),
        at: 0,
        findings: &findings,
        next: 0,
        out: Vec::with_capacity(findings.len()),
    };
    let mut path = Path::default();
    let whole = walk.value(&mut path, 0).is_some() && {
        walk.skip_space();
        walk.at == body.len()
    };
    if !whole {
        // Not JSON after all: backslashes are not escapes, so the text is read as it is.
        return detectors
            .scan(body)
            .into_iter()
            .map(|finding| Located {
                span: finding.start..finding.end,
                finding,
                path: "body".to_owned(),
                quote: false,
            })
            .collect();
    }
    walk.out
}

/// `body` with each located span replaced by `[REDACTED:<detector>]`, quoted where it
/// replaces a number. Overlapping spans become one placeholder covering them all, named
/// after the first; spans not on `char` boundaries are left alone.
pub fn redact(body: &str, located: &[&Located]) -> String {
    let mut spans: Vec<&&Located> = located
        .iter()
        .filter(|l| {
            l.span.start < l.span.end
                && l.span.end <= body.len()
                && body.is_char_boundary(l.span.start)
                && body.is_char_boundary(l.span.end)
        })
        .collect();
    spans.sort_by_key(|l| (l.span.start, std::cmp::Reverse(l.span.end)));
    let mut out = String::with_capacity(body.len());
    let mut at = 0;
    let mut i = 0;
    while i < spans.len() {
        let first = spans[i];
        let mut end = first.span.end;
        i += 1;
        while i < spans.len() && spans[i].span.start < end {
            end = end.max(spans[i].span.end);
            i += 1;
        }
        out.push_str(&body[at..first.span.start]);
        let q = if first.quote { "\"" } else { "" };
        out.push_str(q);
        out.push_str("[REDACTED:");
        out.push_str(&first.finding.detector);
        out.push(']');
        out.push_str(q);
        at = end;
    }
    out.push_str(&body[at..]);
    out
}

/// `body` with each escape sequence written as spaces and then the character it stands for
/// (or only spaces, for control characters and broken escapes); borrowed when there is none.
fn unescaped(body: &str) -> Cow<'_, str> {
    let Some(first) = body.find('\\') else {
        return Cow::Borrowed(body);
    };
    let b = body.as_bytes();
    let mut out = b.to_vec();
    let mut i = first;
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        let len = escape_len(b, i);
        let decoded = decode_escape(&b[i..i + len]);
        let spaces = len - decoded.len_utf8().min(len);
        out[i..i + len].fill(b' ');
        if !decoded.is_control() || matches!(decoded, '\n' | '\t' | '\r') {
            decoded.encode_utf8(&mut out[i + spaces..i + len]);
        }
        i += len;
    }
    // Escapes became ASCII or whole characters, so the view stays UTF-8; if that were
    // ever not so, the raw body is still worth scanning.
    String::from_utf8(out).map_or(Cow::Borrowed(body), Cow::Owned)
}

/// The length of the escape at `b[i]` (a backslash): 2, 6 for `\uXXXX`, 12 for a
/// surrogate pair, and 1 for a backslash that ends the text.
fn escape_len(b: &[u8], i: usize) -> usize {
    match b.get(i + 1) {
        None => 1,
        Some(b'u') if hex4(b, i + 2).is_some() => {
            let high = hex4(b, i + 2).unwrap_or(0);
            let pair = (0xD800..0xDC00).contains(&high)
                && b.get(i + 6) == Some(&b'\\')
                && b.get(i + 7) == Some(&b'u')
                && hex4(b, i + 8).is_some_and(|low| (0xDC00..0xE000).contains(&low));
            if pair { 12 } else { 6 }
        }
        Some(_) => 2,
    }
}

fn hex4(b: &[u8], at: usize) -> Option<u32> {
    let digits = std::str::from_utf8(b.get(at..at + 4)?).ok()?;
    u32::from_str_radix(digits, 16).ok()
}

/// The character an escape stands for; a space when it stands for nothing printable.
fn decode_escape(e: &[u8]) -> char {
    match e {
        [_, b'n'] => '\n',
        [_, b't'] => '\t',
        [_, b'r'] => '\r',
        // A backspace or form feed separates words as a space does.
        [_, b'b' | b'f'] => ' ',
        [_, b'u', ..] if e.len() == 12 => {
            let high = hex4(e, 2).unwrap_or(0);
            let low = hex4(e, 8).unwrap_or(0);
            char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)).unwrap_or(' ')
        }
        [_, b'u', ..] => hex4(e, 2).and_then(char::from_u32).unwrap_or(' '),
        [_, c] if c.is_ascii_graphic() => *c as char,
        _ => ' ',
    }
}

/// Documents nest no deeper than this here; serde_json refuses deeper ones too.
const MAX_DEPTH: usize = 128;

/// A walk over a JSON document that hands each finding the token it falls in.
struct Walk<'a> {
    detectors: &'a Detectors,
    body: &'a [u8],
    at: usize,
    /// Sorted by start.
    findings: &'a [Finding],
    next: usize,
    out: Vec<Located>,
}

impl Walk<'_> {
    /// Walks one value; `None` when the text is not JSON.
    fn value(&mut self, path: &mut Path, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_space();
        match *self.body.get(self.at)? {
            b'{' => {
                self.at += 1;
                self.skip_space();
                if self.eat(b'}') {
                    return Some(());
                }
                loop {
                    self.skip_space();
                    let key = self.string()?;
                    let sensitive = self.place(key.clone(), path, None);
                    self.skip_space();
                    self.expect(b':')?;
                    let raw = &self.body[key.start + 1..key.end - 1];
                    let name = std::str::from_utf8(raw).ok()?;
                    path.push_key(name, sensitive || key_is_sensitive(self.detectors, name));
                    self.value(path, depth + 1)?;
                    path.pop();
                    self.skip_space();
                    if self.eat(b'}') {
                        return Some(());
                    }
                    self.expect(b',')?;
                }
            }
            b'[' => {
                self.at += 1;
                self.skip_space();
                if self.eat(b']') {
                    return Some(());
                }
                let mut index = 0;
                loop {
                    path.push_index(index);
                    self.value(path, depth + 1)?;
                    path.pop();
                    index += 1;
                    self.skip_space();
                    if self.eat(b']') {
                        return Some(());
                    }
                    self.expect(b',')?;
                }
            }
            b'"' => {
                let token = self.string()?;
                self.place(token, path, None);
                Some(())
            }
            b'0'..=b'9' | b'-' | b't' | b'f' | b'n' => {
                let start = self.at;
                while self
                    .body
                    .get(self.at)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || b"+-.".contains(c))
                {
                    self.at += 1;
                }
                if self.at == start {
                    return None;
                }
                let token = start..self.at;
                self.place(token.clone(), path, Some(token));
                Some(())
            }
            _ => None,
        }
    }

    /// Hands the findings that fall in `token` their path and a safe span; for a string,
    /// the span stays within its quotes and takes whole escapes; `whole` replaces a number
    /// whole. Says whether anything was found in it.
    fn place(&mut self, token: Range<usize>, path: &Path, whole: Option<Range<usize>>) -> bool {
        let mut placed = false;
        let findings = self.findings;
        // A finding that runs on past this token is placed in the next ones too.
        while findings
            .get(self.next)
            .is_some_and(|f| f.end <= token.start)
        {
            self.next += 1;
        }
        for f in findings[self.next..]
            .iter()
            .take_while(|f| f.start < token.end)
        {
            if f.end <= token.start {
                continue;
            }
            let (span, quote) = match &whole {
                Some(w) => (w.clone(), true),
                None => (self.string_span(&token, f), false),
            };
            if span.is_empty() {
                continue;
            }
            placed = true;
            self.out.push(Located {
                finding: f.clone(),
                path: path.to_string(),
                span,
                quote,
            });
        }
        placed
    }

    /// The part of `f` inside the string literal `token`, widened to whole escapes.
    fn string_span(&self, token: &Range<usize>, f: &Finding) -> Range<usize> {
        let (inner_start, inner_end) = (token.start + 1, token.end - 1);
        let (want_start, want_end) = (f.start.max(inner_start), f.end.min(inner_end));
        let (mut start, mut end) = (inner_start, inner_end);
        let mut i = inner_start;
        while i < inner_end {
            let len = if self.body[i] == b'\\' {
                escape_len(self.body, i)
            } else {
                1
            };
            if i <= want_start {
                start = i;
            }
            if i + len >= want_end {
                end = (i + len).min(inner_end);
                break;
            }
            i += len;
        }
        start..end.max(start)
    }

    /// A string literal's range, quotes included.
    fn string(&mut self) -> Option<Range<usize>> {
        let start = self.at;
        if self.body.get(start) != Some(&b'"') {
            return None;
        }
        let mut i = start + 1;
        loop {
            match *self.body.get(i)? {
                b'"' => break,
                b'\\' => i += 2,
                _ => i += 1,
            }
        }
        self.at = i + 1;
        Some(start..self.at)
    }

    fn skip_space(&mut self) {
        while self
            .body
            .get(self.at)
            .is_some_and(|c| matches!(c, b' ' | b'\n' | b'\r' | b'\t'))
        {
            self.at += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.body.get(self.at) == Some(&c);
        self.at += usize::from(hit);
        hit
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        self.eat(c).then_some(())
    }
}

#[cfg(test)]
mod tests;
