use serde_json::{Value, json};

use super::*;

fn detectors() -> Detectors {
    Detectors::new(&[]).unwrap()
}

/// Scans `body`, redacts everything found, and parses the result: redaction must always
/// leave valid JSON.
fn redacted(body: &str) -> (Vec<Located>, Value) {
    let located = scan(&detectors(), body);
    let all: Vec<&Located> = located.iter().collect();
    let out = redact(body, &all);
    let parsed = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("redacting {body} gave invalid JSON {out}: {e}"));
    (located, parsed)
}

#[test]
fn a_secret_in_a_message_is_placed_and_replaced() {
    let body = json!({"model": "m", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "my key is AKIAIOSFODNN7EXAMPLE, why is S3 refusing it?"},
    ]})
    .to_string();
    let (located, out) = redacted(&body);
    assert_eq!(located.len(), 1);
    assert_eq!(&*located[0].finding.detector, "aws_access_key");
    assert_eq!(located[0].path, "messages[1].content");
    assert_eq!(
        out["messages"][1]["content"],
        "my key is [REDACTED:aws_access_key], why is S3 refusing it?"
    );
    assert_eq!(out["messages"][0]["content"], "be brief");
}

#[test]
fn a_clean_body_costs_no_walk_and_finds_nothing() {
    let body = json!({"messages": [{"role": "user", "content": "what is 2 + 2?"}]}).to_string();
    assert!(scan(&detectors(), &body).is_empty());
}

#[test]
fn escapes_neither_hide_a_secret_nor_get_cut() {
    // After an escaped newline the key still starts a word; the email sits between
    // escaped quotes and before an escaped newline.
    let text = "config:\nAKIAIOSFODNN7EXAMPLE\nmail \"bob.smith@example.com\"\nbye";
    let body = json!({"input": text}).to_string();
    assert!(
        body.contains("\\nAKIA"),
        "the newline is escaped in the body"
    );
    let (located, out) = redacted(&body);
    let ids: Vec<&str> = located.iter().map(|l| &*l.finding.detector).collect();
    assert_eq!(ids, ["aws_access_key", "email"]);
    assert_eq!(
        out["input"],
        "config:\n[REDACTED:aws_access_key]\nmail \"[REDACTED:email]\"\nbye"
    );
}

#[test]
fn a_private_key_block_with_escaped_newlines_is_one_finding() {
    let block = "-----BEGIN EC PRIVATE KEY-----\nStEQ6QkFvAxiP+GF9j9yWrg1SCSh4tTUlBiaSZc61dn/S4f6ZwtHGbSIJYtCm1K+\nFP6iyTGqLuhGmdGFOd0qNbSd8uqKLNQtprpT+l7WBTyAhgH9G/MGCNulffibBOGK\n-----END EC PRIVATE KEY-----";
    let body =
        json!({"messages": [{"role": "user", "content": format!("why does this fail?\n{block}")}]})
            .to_string();
    let (located, out) = redacted(&body);
    assert_eq!(located.len(), 1, "{located:?}");
    assert_eq!(&*located[0].finding.detector, "private_key");
    let content = out["messages"][0]["content"].as_str().unwrap();
    assert!(content.starts_with("why does this fail?\n"));
    assert!(!content.contains("StEQ6Qk"), "{content}");
}

#[test]
fn a_card_number_sent_as_a_number_becomes_a_string_placeholder() {
    let body = r#"{"order": {"card": 4111111111111111, "qty": 2}}"#;
    let (located, out) = redacted(body);
    assert_eq!(located[0].path, "order.card");
    assert!(located[0].quote);
    assert_eq!(
        out,
        json!({"order": {"card": "[REDACTED:payment_card]", "qty": 2}})
    );
}

#[test]
fn a_sensitive_key_is_not_written_into_the_path() {
    let body = json!({"contacts": {"bob.smith@example.com": "call +1 415 555 2671"}}).to_string();
    let (located, out) = redacted(&body);
    assert!(
        located.iter().all(|l| !l.path.contains("example")),
        "{located:?}"
    );
    assert!(
        located.iter().any(|l| l.path == "contacts.*"),
        "{located:?}"
    );
    assert!(
        out["contacts"]
            .as_object()
            .unwrap()
            .keys()
            .all(|k| k.starts_with("[REDACTED"))
    );
}

#[test]
fn text_that_is_not_json_is_placed_at_body() {
    let located = scan(&detectors(), "user=bob&card=4111111111111111");
    assert_eq!(located.len(), 1);
    assert_eq!(located[0].path, "body");
    assert_eq!(
        redact("user=bob&card=4111111111111111", &[&located[0]]),
        "user=bob&card=[REDACTED:payment_card]"
    );
}

#[test]
fn unicode_escapes_around_a_finding_stay_intact() {
    let body = r#"{"t": "caf\u00e9 \ud83d\ude00 bob.smith@example.com \u00e9t\u00e9"}"#;
    let (_, out) = redacted(body);
    assert_eq!(out["t"], "café 😀 [REDACTED:email] été");
}

fn custom(patterns: &[(&str, &str)]) -> Detectors {
    let custom: Vec<_> = patterns
        .iter()
        .map(|(id, pattern)| super::super::dlp::CustomDetector {
            id: (*id).into(),
            pattern: (*pattern).into(),
            validator: None,
        })
        .collect();
    Detectors::new(&custom).unwrap()
}

#[test]
fn overlapping_findings_become_one_placeholder_covering_both() {
    let d = custom(&[("left", "AAA-BBB"), ("right", "BBB-CCC-DDD")]);
    let body = r#"{"t": "x AAA-BBB-CCC-DDD y"}"#;
    let located = scan(&d, body);
    let all: Vec<&Located> = located.iter().collect();
    let out: Value = serde_json::from_str(&redact(body, &all)).unwrap();
    assert_eq!(out["t"], "x [REDACTED:left] y", "nothing of either is left");
}

#[test]
fn a_finding_across_tokens_is_redacted_in_each() {
    let d = custom(&[("pair", r#"secret-one", "secret-two"#)]);
    let body = r#"{"a": ["secret-one", "secret-two"]}"#;
    let located = scan(&d, body);
    let paths: Vec<&str> = located.iter().map(|l| l.path.as_str()).collect();
    assert_eq!(paths, ["a[0]", "a[1]"]);
    let all: Vec<&Located> = located.iter().collect();
    let out: Value = serde_json::from_str(&redact(body, &all)).unwrap();
    assert_eq!(out, json!({"a": ["[REDACTED:pair]", "[REDACTED:pair]"]}));
}

#[test]
fn a_form_feed_or_backspace_still_separates_words() {
    let body = json!({"t": "key:\u{c}AKIAIOSFODNN7EXAMPLE"}).to_string();
    assert!(body.contains("\\f"), "{body}");
    let (located, _) = redacted(&body);
    assert_eq!(&*located[0].finding.detector, "aws_access_key");
}

#[test]
fn text_with_backslashes_is_read_as_it_is() {
    let text = r"C:\u0041 mail bob.smith@example.com";
    let located = scan(&detectors(), text);
    assert_eq!(located.len(), 1);
    assert_eq!(&text[located[0].span.clone()], "bob.smith@example.com");
}
