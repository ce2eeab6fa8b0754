use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::config::policy::GuardMode;

fn detectors() -> Detectors {
    Detectors::new(&[]).unwrap()
}

fn rules(default_action: DlpAction, actions: &[(&str, DlpAction)]) -> DlpRules {
    DlpRules {
        default_action,
        actions: actions
            .iter()
            .map(|(id, a)| (id.to_string(), *a))
            .collect::<BTreeMap<_, _>>(),
        mode: GuardMode::Enforce,
    }
}

const PROMPT: &str = r#"{"model":"m","messages":[{"role":"user","content":"key AKIAIOSFODNN7EXAMPLE, mail bob.smith@example.com"}]}"#;

#[test]
fn redact_replaces_and_monitor_only_records() {
    let r = rules(DlpAction::Redact, &[("email", DlpAction::Monitor)]);
    let (verdict, body) = json_body(&detectors(), &r, PROMPT, "");
    let body = body.expect("something is redacted");
    assert!(body.contains("[REDACTED:aws_access_key]"));
    assert!(
        body.contains("bob.smith@example.com"),
        "email is monitor only"
    );
    assert!(verdict.denial().is_none());
    let mut extra = serde_json::Map::new();
    verdict.record(&mut extra);
    assert_eq!(
        extra["dlp"],
        json!([
            {"detector": "aws_access_key", "path": "messages[0].content", "action": "redact", "confidence": 0.99},
            {"detector": "email", "path": "messages[0].content", "action": "monitor", "confidence": 0.95},
        ])
    );
    assert_eq!(extra["dlp_findings"], 2);
    assert!(
        !serde_json::Value::Object(extra)
            .to_string()
            .contains("AKIA"),
        "the event never holds the secret"
    );
}

#[test]
fn block_names_the_detector_not_the_secret() {
    let r = rules(DlpAction::Monitor, &[("aws_access_key", DlpAction::Block)]);
    let (verdict, body) = json_body(&detectors(), &r, PROMPT, "");
    assert!(body.is_none(), "a blocked body is never rewritten");
    let denial = verdict.denial().unwrap();
    assert_eq!(denial.reason, Reason::DlpBlocked);
    assert!(denial.message.contains("aws_access_key"));
    assert!(denial.message.contains("messages[0].content"));
    assert!(!denial.message.contains("AKIA"));
}

#[test]
fn monitor_mode_turns_every_action_into_monitor() {
    let mut r = rules(DlpAction::Block, &[]);
    r.mode = GuardMode::Monitor;
    let (verdict, body) = json_body(&detectors(), &r, PROMPT, "");
    assert!(body.is_none() && verdict.denial().is_none());
    assert_eq!(verdict.seen.len(), 2);
}

#[test]
fn tool_arguments_are_redacted_in_place() {
    let mut args = json!({"customer": {"card": "4111 1111 1111 1111", "digits": 4242424242424242u64},
                          "notes": ["call me", "nothing here"]});
    let verdict = value(
        &detectors(),
        &rules(DlpAction::Redact, &[]),
        &mut args,
        "arguments",
    );
    let paths: Vec<&str> = verdict.seen.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(
        paths,
        ["arguments.customer.card", "arguments.customer.digits"]
    );
    assert_eq!(
        args,
        json!({"customer": {"card": "[REDACTED:payment_card]", "digits": "[REDACTED:payment_card]"},
               "notes": ["call me", "nothing here"]})
    );
}

#[test]
fn plain_text_bodies_are_guarded_too() {
    let (verdict, body) = text_body(
        &detectors(),
        &rules(DlpAction::Redact, &[]),
        "token=ghp_ImEVATfIiwvda5n4tSjOdMyWnbDgB6B50TVK",
        "body",
    );
    assert_eq!(&*verdict.seen[0].detector, "github_token");
    assert_eq!(body.unwrap(), "token=[REDACTED:github_token]");
}

#[test]
fn only_the_member_asked_for_is_guarded() {
    let body =
        r#"{"jsonrpc":"2.0","id":4111111111111111,"params":{"text":"card 4111 1111 1111 1111"}}"#;
    let (verdict, redacted) =
        json_body(&detectors(), &rules(DlpAction::Redact, &[]), body, "params");
    assert_eq!(verdict.seen.len(), 1);
    assert_eq!(verdict.seen[0].path, "params.text");
    let out: serde_json::Value = serde_json::from_str(&redacted.unwrap()).unwrap();
    assert_eq!(
        out["id"],
        json!(4111111111111111u64),
        "the envelope's id comes back as it went"
    );
    assert_eq!(out["params"]["text"], "card [REDACTED:payment_card]");
}
