//! The content guard on what an agent sends: every finding is recorded with where it was
//! and what the agent's rules do about it — `monitor` records, `redact` replaces it with a
//! typed placeholder before the content leaves, `block` refuses the call, naming the
//! detector and never the secret.

use std::sync::Arc;

use serde_json::{Value, json};

use super::dlp::{self, Detectors};
use super::json;
use super::path::{Path, key_is_sensitive};
use crate::config::policy::{DlpAction, DlpRules};
use crate::{Denial, Reason};

/// One finding in outgoing content, as the ledger records it.
#[derive(Clone, Debug, PartialEq)]
pub struct Seen {
    pub detector: Arc<str>,
    pub path: String,
    pub action: DlpAction,
    /// The detector's confidence, 0–1.
    pub confidence: f32,
}

/// What the guard saw in one outgoing body.
#[derive(Debug, Default, PartialEq)]
pub struct Verdict {
    pub seen: Vec<Seen>,
}

/// An event lists at most this many findings; `dlp_findings` still counts them all.
const MAX_RECORDED: usize = 32;

impl Verdict {
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// The denial when a finding's action is `block`: it names the detector and the
    /// place, never the text.
    pub fn denial(&self) -> Option<Denial> {
        let hit = self.seen.iter().find(|s| s.action == DlpAction::Block)?;
        Some(Denial::new(
            Reason::DlpBlocked,
            format!(
                "the request carries what looks like {} (detector `{}`, at {}); Airlock's content policy blocks sending it",
                describe(&hit.detector),
                hit.detector,
                hit.path
            ),
        ))
    }

    /// The findings for the call's event: `dlp` (detector, path, action; capped) and
    /// `dlp_findings` (how many in all).
    pub fn record(&self, extra: &mut serde_json::Map<String, Value>) {
        if self.seen.is_empty() {
            return;
        }
        let listed: Vec<Value> = self
            .seen
            .iter()
            .take(MAX_RECORDED)
            .map(|s| {
                json!({
                    "detector": &*s.detector,
                    "path": s.path,
                    "action": action_name(s.action),
                    // f32 → f64 would print 0.949999988.
                    "confidence": (f64::from(s.confidence) * 100.0).round() / 100.0,
                })
            })
            .collect();
        extra.insert("dlp".into(), Value::Array(listed));
        extra.insert("dlp_findings".into(), json!(self.seen.len()));
    }
}

fn action_name(action: DlpAction) -> &'static str {
    match action {
        DlpAction::Monitor => "monitor",
        DlpAction::Redact => "redact",
        DlpAction::Block => "block",
    }
}

/// A few words a person reads in the denial.
fn describe(detector: &str) -> &'static str {
    match detector {
        "email" | "phone" | "us_ssn" => "personal data",
        "payment_card" | "iban" => "payment details",
        "private_key" => "a private key",
        "jwt" => "a signed token",
        "connection_string_password" | "generic_secret" => "a password or secret",
        d if d.ends_with("_key") || d.ends_with("_token") => "a credential",
        _ => "protected data",
    }
}

/// Guards a JSON body given as text, or only its member `within` (`"params"` of a
/// JSON-RPC envelope, whose `id` must come back as it went; `""` for all of it). Returns
/// the verdict and, when something is to be redacted (and nothing blocks), the body to
/// send instead.
pub fn json_body(
    detectors: &Detectors,
    rules: &DlpRules,
    body: &str,
    within: &str,
) -> (Verdict, Option<String>) {
    let mut located = json::scan(detectors, body);
    if !within.is_empty() {
        located.retain(|l| {
            l.path
                .strip_prefix(within)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        });
    }
    let verdict = Verdict {
        seen: located
            .iter()
            .map(|l| Seen {
                detector: l.finding.detector.clone(),
                path: l.path.clone(),
                action: rules.action(&l.finding.detector),
                confidence: l.finding.confidence,
            })
            .collect(),
    };
    let redact: Vec<&json::Located> = located
        .iter()
        .zip(&verdict.seen)
        .filter(|(_, s)| s.action == DlpAction::Redact)
        .map(|(l, _)| l)
        .collect();
    let body =
        (verdict.denial().is_none() && !redact.is_empty()).then(|| json::redact(body, &redact));
    (verdict, body)
}

/// Guards text that is not JSON (a form, a plain-text body); findings sit at `path`.
pub fn text_body(
    detectors: &Detectors,
    rules: &DlpRules,
    text: &str,
    path: &str,
) -> (Verdict, Option<String>) {
    let mut verdict = Verdict::default();
    let redacted = guard_str(detectors, rules, text, &path, &mut verdict.seen);
    let body = redacted.filter(|_| verdict.denial().is_none());
    (verdict, body)
}

/// Guards a parsed JSON value in place (tool arguments): strings and numbers are scanned,
/// and redacted where the rules say so. `root` names the value in paths (`arguments`).
pub fn value(detectors: &Detectors, rules: &DlpRules, value: &mut Value, root: &str) -> Verdict {
    let mut verdict = Verdict::default();
    walk(
        detectors,
        rules,
        value,
        &mut Path::at(root),
        &mut verdict.seen,
        0,
    );
    verdict
}

/// Values nest no deeper than this in practice; the bound keeps a hostile one cheap.
const MAX_DEPTH: usize = 128;

fn walk(
    detectors: &Detectors,
    rules: &DlpRules,
    value: &mut Value,
    path: &mut Path,
    seen: &mut Vec<Seen>,
    depth: usize,
) {
    if depth > MAX_DEPTH {
        return;
    }
    match value {
        Value::String(s) => {
            if let Some(redacted) = guard_str(detectors, rules, s, path, seen) {
                *s = redacted;
            }
        }
        // A card or phone number sent as a JSON number is still one; shorter numbers
        // cannot be either.
        Value::Number(n) if n.as_u64().is_some_and(|v| v >= 1_000_000) => {
            let text = n.to_string();
            if let Some(redacted) = guard_str(detectors, rules, &text, path, seen) {
                *value = Value::String(redacted);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push_index(i);
                walk(detectors, rules, item, path, seen, depth + 1);
                path.pop();
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                path.push_key(key, key_is_sensitive(detectors, key));
                walk(detectors, rules, item, path, seen, depth + 1);
                path.pop();
            }
        }
        Value::Number(_) | Value::Bool(_) | Value::Null => {}
    }
}

/// Scans one string, records what it finds at `path` (written out only then); the
/// redacted string when any finding is to be redacted.
fn guard_str(
    detectors: &Detectors,
    rules: &DlpRules,
    text: &str,
    path: &dyn std::fmt::Display,
    seen: &mut Vec<Seen>,
) -> Option<String> {
    let findings = detectors.scan(text);
    if findings.is_empty() {
        return None;
    }
    let path = path.to_string();
    let mut redact = Vec::new();
    for f in findings {
        let action = rules.action(&f.detector);
        seen.push(Seen {
            detector: f.detector.clone(),
            path: path.clone(),
            action,
            confidence: f.confidence,
        });
        if action == DlpAction::Redact {
            redact.push(f);
        }
    }
    (!redact.is_empty()).then(|| dlp::redact(text, &redact))
}

#[cfg(test)]
mod tests;
