//! Fuzzing the DLP guards with text an agent can send: prompts that mix real-looking
//! secrets from the labelled corpus with arbitrary text, as plain text and inside JSON.
//! Findings must be usable spans, and redaction must leave none of what was found — and
//! valid JSON where the body was JSON.

use std::sync::LazyLock;

use serde_json::{Value, json};

use super::dlp::{self, Detectors, Finding};
use super::json;

/// Random inputs after the corpus in a `cargo test` run (about 1 s for prompts in a debug build, most of it scanning);
/// `BOLERO_RANDOM_ITERATIONS` overrides it for a longer campaign (README "Fuzzing").
const RANDOM_INPUTS: usize = 300;

static DETECTORS: LazyLock<Detectors> = LazyLock::new(|| Detectors::new(&[]).unwrap());

/// The labelled corpus's texts: secrets and personal data in the company they keep.
static SAMPLES: LazyLock<Vec<String>> = LazyLock::new(|| {
    include_str!("corpus/labelled.jsonl")
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_string))
        .collect()
});

/// What sits next to a secret: separators, assignments, escapes, multi-byte characters.
const FRAGMENTS: &[&str] = &[
    " ",
    "\n",
    "\t",
    "=",
    ": ",
    "\"",
    "'",
    "\\",
    "\\n",
    "\\u0041",
    "\\\"",
    "password=",
    "token: ",
    "://",
    "@",
    "-----BEGIN",
    "eyJ",
    "\u{e9}",
    "\u{1F600}",
    "4111 1111",
    "-",
];

#[derive(Debug, bolero::TypeGenerator)]
enum Piece {
    Sample(u16),
    Fragment(u8),
    Text(String),
}

fn text_of(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Sample(i) => SAMPLES[usize::from(*i) % SAMPLES.len()].as_str(),
            Piece::Fragment(i) => FRAGMENTS[usize::from(*i) % FRAGMENTS.len()],
            Piece::Text(t) => t,
        })
        .collect()
}

/// No value found in `original` survives in `redacted`, unless it also occurs elsewhere
/// in `original` (a copy without the context that made the first one a finding).
fn assert_gone<'a>(original: &str, redacted: &str, found: impl Iterator<Item = &'a str>) {
    for value in found.filter(|v| original.matches(v).count() == 1) {
        assert!(
            !redacted.contains(value),
            "{value:?} survived in {redacted:?}"
        );
    }
}

fn assert_usable(text: &str, findings: &[Finding]) {
    for f in findings {
        assert!(f.start < f.end && f.end <= text.len(), "{f:?}");
        assert!(text.is_char_boundary(f.start) && text.is_char_boundary(f.end));
    }
    assert!(findings.is_sorted_by_key(|f| f.start));
}

/// The JSON guard on `body`: what it redacts still parses when `body` did.
fn redact_json(body: &str) -> String {
    let located = json::scan(&DETECTORS, body);
    let refs: Vec<_> = located.iter().collect();
    let out = json::redact(body, &refs);
    if serde_json::from_str::<Value>(body).is_ok() {
        assert!(
            serde_json::from_str::<Value>(&out).is_ok(),
            "{body:?} -> {out:?}"
        );
    }
    let found = located.iter().map(|l| &body[l.span.clone()]);
    assert_gone(body, &out, found);
    out
}

#[test]
fn prompts() {
    bolero::check!()
        .with_iterations(RANDOM_INPUTS)
        .with_type::<Vec<Piece>>()
        .for_each(|pieces: &Vec<Piece>| {
            let text = text_of(pieces);
            let findings = DETECTORS.scan(&text);
            assert_usable(&text, &findings);
            let redacted = dlp::redact(&text, &findings);
            let found = findings.iter().map(|f| &text[f.start..f.end]);
            assert_gone(&text, &redacted, found);
            let body = json!({"model": "m", "messages": [{"role": "user", "content": text}]});
            redact_json(&body.to_string());
        });
}

/// Corpus: `__fuzz__/guards__fuzz__bodies/corpus`, request bodies carrying secrets.
#[test]
fn bodies() {
    bolero::check!()
        .with_iterations(RANDOM_INPUTS)
        .for_each(|bytes: &[u8]| {
            if let Ok(body) = std::str::from_utf8(bytes) {
                redact_json(body);
            }
        });
}
