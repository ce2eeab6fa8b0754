//! The content guards where calls pass: an agent's outgoing content against its DLP rules
//! (recorded, redacted or refused), and replies read for instructions aimed at the agent.
//! The findings go into the call's event; the secrets never do.

use std::sync::Arc;

use airlock_core::config::Agent;
use airlock_core::config::policy::DlpRules;
use airlock_core::guards::dlp::Detectors;
use airlock_core::guards::injection::{self, Hit};
use airlock_core::guards::outbound::{self, Verdict};
use airlock_core::{Denial, Reason};
use bytes::Bytes;
use serde_json::Value;

use crate::pipeline::CallGuard;

/// Guards a JSON body, or only its member `within` (`""`: all of it). `Ok(Some(body))` is
/// the redacted body to send instead; `Ok(None)` sends the original (nothing found, or only
/// `monitor` findings, or no DLP for this agent).
pub async fn json_body(
    guard: &mut CallGuard,
    agent: &Agent,
    body: &Bytes,
    within: &'static str,
) -> Result<Option<Bytes>, Denial> {
    body_guard(guard, agent, body, Shape::Json { within }).await
}

/// Guards a body that is text but not JSON; non-UTF-8 bodies are not read.
pub async fn text_body(
    guard: &mut CallGuard,
    agent: &Agent,
    body: &Bytes,
) -> Result<Option<Bytes>, Denial> {
    body_guard(guard, agent, body, Shape::Text).await
}

#[derive(Clone, Copy)]
enum Shape {
    Json { within: &'static str },
    Text,
}

/// Bodies at least this large are scanned on the blocking pool, so that one big prompt
/// does not stall the other calls sharing its worker thread.
const OFF_THREAD: usize = 256 << 10;

async fn body_guard(
    guard: &mut CallGuard,
    agent: &Agent,
    body: &Bytes,
    shape: Shape,
) -> Result<Option<Bytes>, Denial> {
    let Some(rules) = &agent.guards.dlp else {
        return Ok(None);
    };
    if std::str::from_utf8(body).is_err() {
        // Not text: nothing a detector reads. Marked, so the ledger says it went unread.
        let extra = &mut guard.call().extra;
        extra.insert("dlp_unscanned".into(), "not_utf8".into());
        return Ok(None);
    }
    let detectors = guard.runtime().config.detectors.clone();
    let scan = move |body: &[u8], rules: &DlpRules| {
        // Checked above; a failure here is impossible and scans nothing.
        let text = std::str::from_utf8(body).unwrap_or_default();
        match shape {
            Shape::Json { within } => outbound::json_body(&detectors, rules, text, within),
            Shape::Text => outbound::text_body(&detectors, rules, text, "body"),
        }
    };
    let (verdict, redacted) = if body.len() < OFF_THREAD {
        scan(body, rules)
    } else {
        let (owned, rules) = (body.clone(), rules.clone());
        match tokio::task::spawn_blocking(move || scan(&owned, &rules)).await {
            Ok(done) => done,
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(_) => {
                    return Err(Denial::new(
                        Reason::UpstreamUnavailable,
                        "Airlock is shutting down",
                    ));
                }
            },
        }
    };
    judge(guard, &verdict)?;
    Ok(redacted.map(Bytes::from))
}

/// Guards a parsed value (tool arguments) in place; `root` names it in paths.
pub fn value(
    guard: &mut CallGuard,
    agent: &Agent,
    value: Option<&mut Value>,
    root: &str,
) -> Result<(), Denial> {
    let (Some(rules), Some(value)) = (&agent.guards.dlp, value) else {
        return Ok(());
    };
    let detectors = guard.runtime().config.detectors.clone();
    let verdict = outbound::value(&detectors, rules, value, root);
    judge(guard, &verdict)
}

fn judge(guard: &mut CallGuard, verdict: &Verdict) -> Result<(), Denial> {
    verdict.record(&mut guard.call().extra);
    if !verdict.is_empty() {
        tracing::info!(
            findings = verdict.seen.len(),
            first = %verdict.seen[0].detector,
            "the content guard found sensitive data in an outgoing call"
        );
    }
    verdict.denial().map_or(Ok(()), Err)
}

/// What the inbound watch found in one reply, and the denial that replaces the reply when
/// the agent's `guards.injection.action` is `block`.
pub struct Inbound {
    pub hits: Vec<Hit>,
    pub denial: Option<Denial>,
}

/// Reads the tool results an LLM request hands the model — from tools the agent called on
/// its own, past the MCP gateway — like MCP results are read. `items` is the request's
/// `messages` or `input` member (`root`) as raw JSON; it is parsed only when the body
/// holds a tool-result marker at all.
pub fn tool_results(
    guard: &mut CallGuard,
    agent: &Agent,
    body: &[u8],
    root: &str,
    items: &str,
) -> Result<(), Denial> {
    if !injection::may_carry_tool_results(body) {
        return Ok(());
    }
    let detectors = guard.runtime().config.detectors.clone();
    let hits = injection::scan_tool_results(&detectors, items, root);
    let inbound = Inbound {
        denial: injection::denial(&hits, agent.guards.injection),
        hits,
    };
    inbound.record(guard);
    inbound.denial.map_or(Ok(()), Err)
}

/// Reads the reply at `pointer` in `message` (an MCP response's or an A2A message's
/// `/result`) for injected instructions, as [`inbound`] does; one with a large text (a
/// multi-megabyte resource) is read on the blocking pool, as large outgoing bodies are, so
/// it does not stall the other calls on this worker. The message comes back with what
/// was found.
pub async fn inbound_owned(
    detectors: Arc<Detectors>,
    agent: Arc<Agent>,
    message: Value,
    pointer: &'static str,
    root: &'static str,
) -> (Value, Inbound) {
    let read = move |message: Value| {
        let found = message
            .pointer(pointer)
            .map_or_else(Inbound::none, |reply| {
                inbound(&detectors, &agent, reply, root)
            });
        (message, found)
    };
    if text_len(message.pointer(pointer)) < OFF_THREAD {
        return read(message);
    }
    match tokio::task::spawn_blocking(move || read(message)).await {
        Ok(done) => done,
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => {
                let denial = Denial::new(Reason::UpstreamUnavailable, "Airlock is shutting down");
                let found = Inbound {
                    hits: Vec::new(),
                    denial: Some(denial),
                };
                (Value::Null, found)
            }
        },
    }
}

/// The bytes of text in a JSON value (strings and keys): what the injection rules read.
fn text_len(value: Option<&Value>) -> usize {
    match value {
        Some(Value::String(s)) => s.len(),
        Some(Value::Array(items)) => items.iter().map(|v| text_len(Some(v))).sum(),
        Some(Value::Object(members)) => members
            .iter()
            .map(|(k, v)| k.len() + text_len(Some(v)))
            .sum(),
        _ => 0,
    }
}

/// Reads a reply (a tool result, an MCP response, an A2A message or task) for injected
/// instructions; `root` names it in paths.
pub fn inbound(detectors: &Detectors, agent: &Agent, reply: &Value, root: &str) -> Inbound {
    let hits = injection::scan(detectors, reply, root);
    let denial = injection::denial(&hits, agent.guards.injection);
    if let Some(first) = hits.first() {
        tracing::warn!(rule = first.rule, path = %first.path, "a reply carries instructions aimed at the agent");
    }
    Inbound { hits, denial }
}

impl Inbound {
    pub fn none() -> Inbound {
        Inbound {
            hits: Vec::new(),
            denial: None,
        }
    }

    /// Adds the hits to the call's event (a stream's events add up).
    pub fn record(&self, guard: &mut CallGuard) {
        let call = guard.call();
        if let Some(agent) = &call.agent {
            injection::record(&self.hits, agent.guards.injection, &mut call.extra);
        }
    }
}
