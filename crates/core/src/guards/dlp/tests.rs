use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use super::*;

/// Synthetic secrets (well-formed, never real) and near-misses in prompt-like text, one JSON
/// object a line: `{"text": ..., "expect": [detector ids]}`. The corpus the detectors are
/// developed against.
const CORPUS: &str = include_str!("../corpus/labelled.jsonl");

/// Held out: written before the detectors were changed for the forms it covers (quoted
/// values in env files, YAML and shell, `client_secret` in JSON, webhook URLs, connection
/// URLs with an empty user) and their decoys, and never tuned against. Each positive line
/// also names its `secret`, which a finding of the expected detector must cover.
const HELD_OUT: &str = include_str!("../corpus/held_out.jsonl");

fn builtin() -> Detectors {
    Detectors::new(&[]).unwrap()
}

fn ids(text: &str) -> Vec<String> {
    builtin()
        .scan(text)
        .into_iter()
        .map(|f| f.detector.to_string())
        .collect()
}

#[derive(Default)]
struct Tally {
    true_positive: u32,
    false_positive: u32,
    false_negative: u32,
}

impl Tally {
    fn precision(&self) -> f64 {
        ratio(self.true_positive, self.true_positive + self.false_positive)
    }
    fn recall(&self) -> f64 {
        ratio(self.true_positive, self.true_positive + self.false_negative)
    }
}

fn ratio(n: u32, d: u32) -> f64 {
    if d == 0 {
        1.0
    } else {
        f64::from(n) / f64::from(d)
    }
}

/// Precision and recall per detector over a corpus, and the lines it got wrong.
fn score(detectors: &Detectors, corpus: &str) -> (BTreeMap<String, Tally>, Vec<String>) {
    let mut tallies: BTreeMap<String, Tally> = detectors
        .ids()
        .map(|id| (id.to_owned(), Tally::default()))
        .collect();
    let mut misses = Vec::new();
    for (n, line) in corpus.lines().enumerate() {
        let case: serde_json::Value = serde_json::from_str(line).unwrap();
        let text = case["text"].as_str().unwrap();
        let expect: BTreeSet<String> = case["expect"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| id.as_str().unwrap().to_owned())
            .collect();
        let findings = detectors.scan(text);
        let mut found: BTreeSet<String> = findings.iter().map(|f| f.detector.to_string()).collect();
        // A finding of the right detector that leaves the secret uncovered did not find it.
        if let Some(secret) = case["secret"].as_str() {
            let at = text.find(secret).expect("the secret is in the text");
            let covered = |id: &String| {
                findings
                    .iter()
                    .any(|f| *f.detector == **id && f.start <= at && at + secret.len() <= f.end)
            };
            if expect.iter().any(|id| found.contains(id) && !covered(id)) {
                found.insert("(secret uncovered)".to_owned());
                found.retain(|id| !expect.contains(id) || covered(id));
            }
        }
        for id in expect.union(&found) {
            let tally = tallies.entry(id.clone()).or_default();
            match (expect.contains(id), found.contains(id)) {
                (true, true) => tally.true_positive += 1,
                (false, true) => tally.false_positive += 1,
                (true, false) => tally.false_negative += 1,
                (false, false) => unreachable!(),
            }
        }
        if expect != found {
            misses.push(format!(
                "line {}: expected {expect:?}, found {found:?}: {text:?}",
                n + 1
            ));
        }
    }
    (tallies, misses)
}

/// All detectors together: every expected or reported detector on a line is one decision.
fn overall(tallies: &BTreeMap<String, Tally>) -> Tally {
    let mut sum = Tally::default();
    for t in tallies.values() {
        sum.true_positive += t.true_positive;
        sum.false_positive += t.false_positive;
        sum.false_negative += t.false_negative;
    }
    sum
}

fn print_table(tallies: &BTreeMap<String, Tally>) {
    println!(
        "\n{:<28} {:>4} {:>4} {:>4} {:>9} {:>7}",
        "detector", "tp", "fp", "fn", "precision", "recall"
    );
    let all = overall(tallies);
    for (id, t) in tallies.iter().chain([(&"(all)".to_owned(), &all)]) {
        println!(
            "{id:<28} {:>4} {:>4} {:>4} {:>9.3} {:>7.3}",
            t.true_positive,
            t.false_positive,
            t.false_negative,
            t.precision(),
            t.recall()
        );
    }
}

#[test]
fn every_detector_keeps_precision_and_recall_above_95_percent_on_the_corpus() {
    let detectors = builtin();
    let bytes: usize = CORPUS.lines().map(str::len).sum();
    let (tallies, misses) = score(&detectors, CORPUS);
    print_table(&tallies);
    let mut below = Vec::new();
    for (id, t) in &tallies {
        if t.true_positive == 0 {
            below.push(format!("{id}: no positive example in the corpus"));
        }
        if t.precision() < 0.95 || t.recall() < 0.95 {
            below.push(format!(
                "{id}: precision {:.3}, recall {:.3}",
                t.precision(),
                t.recall()
            ));
        }
    }
    // Information only, not asserted: the benchmark in bench/ is what counts. Line by line
    // measures the per-call cost; the corpus as one body, the per-byte cost.
    let rounds = 20;
    let started = Instant::now();
    for _ in 0..rounds {
        for line in CORPUS.lines() {
            std::hint::black_box(detectors.scan(line));
        }
    }
    let per_line = (bytes * rounds) as f64 / started.elapsed().as_secs_f64() / 1e6;
    let started = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(detectors.scan(CORPUS));
    }
    let one_body = (CORPUS.len() * rounds) as f64 / started.elapsed().as_secs_f64() / 1e6;
    println!(
        "{} lines, {bytes} bytes; {per_line:.1} MB/s line by line, {one_body:.1} MB/s as one \
         body (unoptimised in a debug build)",
        CORPUS.lines().count(),
    );
    for miss in &misses {
        println!("{miss}");
    }
    assert!(below.is_empty(), "{below:#?}");
}

/// The floors the held-out corpus is held to. When it was written, before any detector was
/// changed for the forms it covers, it scored precision 0.857, recall 0.277; after the
/// changes, developed against `labelled.jsonl`, 0.984 and 0.954. Its misses then: a
/// `base64:`-prefixed Laravel key, passwords given as command-line flags with no `=`
/// (`--password "…"`, `redis-cli -a '…'`), and one false alarm, `PASSWORD_HASHER=argon2id`:
/// a setting, not a password, under a password-like name.
const HELD_OUT_PRECISION: f64 = 0.95;
const HELD_OUT_RECALL: f64 = 0.95;

#[test]
fn the_held_out_corpus_keeps_its_precision_and_recall() {
    let (tallies, misses) = score(&builtin(), HELD_OUT);
    print_table(&tallies);
    for miss in &misses {
        println!("{miss}");
    }
    let all = overall(&tallies);
    println!(
        "held out, all detectors: precision {:.3}, recall {:.3}",
        all.precision(),
        all.recall()
    );
    assert!(
        all.precision() >= HELD_OUT_PRECISION,
        "precision {:.3}",
        all.precision()
    );
    assert!(
        all.recall() >= HELD_OUT_RECALL,
        "recall {:.3}",
        all.recall()
    );
}

#[test]
fn a_finding_gives_the_span_and_the_placeholder_replaces_it() {
    let text = "keys: AKIAIOSFODNN7EXAMPLE and ghp_abcdefghijklmnopqrstuvwxyz0123456789 ok";
    let findings = builtin().scan(text);
    let spans: Vec<(&str, &str)> = findings
        .iter()
        .map(|f| (&*f.detector, &text[f.start..f.end]))
        .collect();
    assert_eq!(
        spans,
        [
            ("aws_access_key", "AKIAIOSFODNN7EXAMPLE"),
            ("github_token", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
        ]
    );
    assert_eq!(
        redact(text, &findings),
        "keys: [REDACTED:aws_access_key] and [REDACTED:github_token] ok"
    );
}

#[test]
fn overlapping_spans_become_one_placeholder() {
    let finding = |detector: &str, start, end| Finding {
        detector: Arc::from(detector),
        start,
        end,
        confidence: 1.0,
    };
    let text = "0123456789";
    let findings = [finding("b", 4, 8), finding("a", 2, 5), finding("c", 9, 10)];
    assert_eq!(redact(text, &findings), "01[REDACTED:a]8[REDACTED:c]");
    // A span that is not on the text is ignored, not a panic.
    assert_eq!(redact("é", &[finding("x", 1, 2)]), "é");
}

#[test]
fn the_secret_in_a_connection_string_is_the_password_alone() {
    let text = "DATABASE_URL=postgres://app:Tr0ub4dor3xyz@db.example.com:5432/app";
    let findings = builtin().scan(text);
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(&text[findings[0].start..findings[0].end], "Tr0ub4dor3xyz");
    assert_eq!(
        redact(text, &findings),
        "DATABASE_URL=postgres://app:[REDACTED:connection_string_password]@db.example.com:5432/app"
    );
}

#[test]
fn a_specific_detector_wins_over_a_generic_one_on_the_same_span() {
    assert_eq!(
        ids("api_key = \"sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7dEf0h\""),
        ["openai_key"]
    );
    assert_eq!(
        ids("postgres://svc:Xy7pQ2rT9vLm@mail.example.com/db"),
        ["connection_string_password"]
    );
}

fn custom(id: &str, pattern: &str, validator: Option<&str>) -> CustomDetector {
    CustomDetector {
        id: id.to_owned(),
        pattern: pattern.to_owned(),
        validator: validator.map(str::to_owned),
    }
}

#[test]
fn custom_detectors_run_everywhere_and_bad_ones_are_refused() {
    let detectors = Detectors::new(&[custom("employee_id", r"\bEMP-\d{6}\b", None)]).unwrap();
    let text = "ticket for EMP-004211, cc jane.doe@example.com";
    let found: Vec<&str> = detectors
        .scan(text)
        .iter()
        .map(|f| &text[f.start..f.end])
        .collect();
    assert_eq!(found, ["EMP-004211", "jane.doe@example.com"]);
    assert!(detectors.ids().any(|id| id == "employee_id"));

    let broken = Detectors::new(&[custom("x", "(", None)]).unwrap_err();
    assert!(broken.contains("`x`"), "{broken}");
    assert!(Detectors::new(&[custom("email", "a", None)]).is_err());
    assert!(Detectors::new(&[custom("", "a", None)]).is_err());
    // The id goes into `[REDACTED:<id>]` inside a JSON string.
    for id in ["a\"b", "a\\b", "a b", "ü"] {
        assert!(Detectors::new(&[custom(id, "a", None)]).is_err(), "{id}");
    }
    assert!(Detectors::new(&[custom("Acme.key-2_x", "a", None)]).is_ok());
    // A pattern that matches the empty string finds nothing to report, and ends.
    let empty = Detectors::new(&[custom("empty", "x*", None)]).unwrap();
    assert!(empty.scan("").is_empty());
    assert_eq!(empty.scan("éxx").len(), 1);
}

#[test]
fn a_custom_detector_keeps_only_what_its_validator_accepts() {
    let detectors =
        Detectors::new(&[custom("account", r"\bACC-[\d-]{8,24}\b", Some("luhn"))]).unwrap();
    let text = "moved from ACC-7992-7398-713 to ACC-7992-7398-714";
    let found: Vec<&str> = detectors
        .scan(text)
        .iter()
        .map(|f| &text[f.start..f.end])
        .collect();
    assert_eq!(found, ["ACC-7992-7398-713"]);

    let unknown = Detectors::new(&[custom("account", "a", Some("crc32"))]).unwrap_err();
    assert!(unknown.contains("`crc32`"), "{unknown}");
    for name in validator_names() {
        assert!(unknown.contains(name), "{unknown}");
        assert!(Detectors::new(&[custom("x", "a", Some(name))]).is_ok());
    }
}

#[test]
fn multibyte_text_around_anchors_does_not_split_a_character() {
    let text = "(+1 415 555 0132) ".to_owned()
        + &"é".repeat(40)
        + "@ü"
        + &"ß".repeat(200)
        + " AKIAIOSFODNN7EXAMPLE 4111 1111 1111 1111";
    let findings = builtin().scan(&text);
    let redacted = redact(&text, &findings);
    assert!(redacted.starts_with("([REDACTED:phone]) "), "{redacted}");
    assert!(redacted.ends_with("[REDACTED:aws_access_key] [REDACTED:payment_card]"));
}

#[test]
fn nothing_to_find_in_empty_or_plain_text() {
    assert!(ids("").is_empty());
    assert!(ids("The quick brown fox jumps over the lazy dog.").is_empty());
}

#[test]
fn the_gates_let_through_every_way_the_patterns_match() {
    let value = "Xk9mQ2vL7pR4nT8wZ3bY";
    let cases = [
        // Unicode white space is `\s` to the patterns, so the gates must not stop at it.
        (format!("password\u{a0}=\u{a0}{value}"), "generic_secret"),
        (format!("DB_PASSWORD := {value}"), "generic_secret"),
        (format!("auth_token => \"Basic {value}\""), "generic_secret"),
        (format!("\"X-Api-Key\": 'token {value}'"), "generic_secret"),
        (
            format!("my.credentials.file.v2='{value}'"),
            "generic_secret",
        ),
        ("+44 20 7946 0958".to_owned(), "phone"),
        ("call (415) 555-2671 now".to_owned(), "phone"),
        ("tel. 020 7946 0958".to_owned(), "phone"),
        ("tél. 01 23 45 67 89".to_owned(), "phone"),
        ("SSN 123-45-6789.".to_owned(), "us_ssn"),
        (
            "smtp+tls://mailer:Zq8vN3xLp2@smtp.example.com".to_owned(),
            "connection_string_password",
        ),
    ];
    for (text, want) in &cases {
        assert_eq!(ids(text), [*want], "{text}");
    }
}

#[test]
fn look_alikes_in_ordinary_text_find_nothing() {
    for text in [
        "\"tokens\": 1532, \"password_min_length\": 12, token_ttl=3600",
        "the key point: passwords expire after 2024-01-15; see https://docs.example.com/auth#tokens",
        "served 10.0.12.1 at 2024-01-15T10:22:33.123Z, version 1.23.4567, build 20240115",
    ] {
        assert!(ids(text).is_empty(), "{text}: {:?}", ids(text));
    }
}
