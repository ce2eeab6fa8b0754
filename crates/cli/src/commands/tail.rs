//! `airlock tail`: calls on a running gateway as they happen, one line each, coloured by
//! outcome (on a terminal, unless `NO_COLOR` is set), read from the admin API's live feed.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use airlock_core::money::format_usd;
use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::admin::{self, percent_encode};
use super::escape::{for_terminal, json_for_terminal};
use super::{env, load_config};

/// Which calls to show; `None` shows all.
pub struct Filter {
    pub agent: Option<String>,
    pub kind: Option<String>,
    pub outcome: Option<String>,
}

pub fn run(config: Option<&Path>, filter: Filter, json: bool) -> anyhow::Result<ExitCode> {
    let config = load_config(config)?;
    let token = admin::token()?;
    let mut query = Vec::new();
    for (name, value) in [
        ("agent", &filter.agent),
        ("kind", &filter.kind),
        ("outcome", &filter.outcome),
    ] {
        if let Some(v) = value {
            query.push(format!("{name}={}", percent_encode(v)));
        }
    }
    let url = format!(
        "http://{}/api/events/stream?{}",
        config.listen.admin,
        query.join("&")
    );
    let request = hyper::Request::get(&url)
        .header("authorization", format!("Bearer {token}"))
        .header("accept", "text/event-stream")
        .body(Empty::<Bytes>::new())?;
    let colour = !json && std::io::stdout().is_terminal() && env("NO_COLOR").is_none();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
        let response = client
            .request(request)
            .await
            .with_context(|| format!("cannot reach the admin API at {url}"))?;
        if !response.status().is_success() {
            let status = response.status().as_u16();
            let body = response.into_body().collect().await?.to_bytes();
            let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let message = value["error"]["message"].as_str().unwrap_or("no details");
            bail!(
                "the live feed answered HTTP {status}: {}",
                for_terminal(message)
            );
        }
        let mut body = response.into_body();
        let mut pending = Vec::new();
        let mut out = std::io::stdout().lock();
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame?.into_data() else {
                continue;
            };
            pending.extend_from_slice(&data);
            while let Some(end) = find(&pending, b"\n\n") {
                let block: Vec<u8> = pending.drain(..end + 2).collect();
                let Some(call) = call_of(&block) else {
                    continue;
                };
                let line = if json {
                    json_for_terminal(&call.to_string()).into_owned()
                } else {
                    line(&call, colour)
                };
                // The reader went away (`| head`): stop quietly.
                if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                    return Ok(());
                }
            }
        }
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The JSON of one SSE block's `data:` lines, if it is a call.
fn call_of(block: &[u8]) -> Option<Value> {
    let text = std::str::from_utf8(block).ok()?;
    let data: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim_start)
        .collect();
    (!data.is_empty())
        .then(|| serde_json::from_str(&data.join("\n")).ok())
        .flatten()
}

/// `12:04:31.207  support-bot  llm  openai/gpt-4o-mini  200 served  in 120 out 36  $0.0000396  412 ms`
/// Every text field is the gateway's record of what agents and upstreams sent: each is
/// escaped, so none can move the cursor or forge a line.
fn line(call: &Value, colour: bool) -> String {
    let raw = |k: &str| call[k].as_str().unwrap_or("-");
    let s = |k: &str| for_terminal(raw(k));
    let n = |k: &str| call[k].as_u64().unwrap_or(0);
    let time = for_terminal(raw("ts").get(11..23).unwrap_or(raw("ts")));
    let what = match call["target"].as_str() {
        Some(t) if !t.is_empty() => for_terminal(t),
        _ => s("host"),
    };
    let outcome = s("outcome");
    let outcome = outcome.as_ref();
    let mut verdict = format!("{} {outcome}", n("status"));
    if let Some(reason) = call["reason"].as_str() {
        verdict.push_str(&format!(" ({})", for_terminal(reason)));
    }
    if colour {
        let code = match outcome {
            "served" => "32",
            "denied" => "33",
            "failed" => "31",
            _ => "90",
        };
        verdict = format!("\x1b[{code}m{verdict}\x1b[0m");
    }
    let mut parts = vec![
        time.into_owned(),
        s("agent").into_owned(),
        s("kind").into_owned(),
        format!("{what} {}", s("operation")),
        verdict,
    ];
    if n("input_tokens") + n("output_tokens") > 0 {
        parts.push(format!(
            "in {} out {}",
            n("input_tokens"),
            n("output_tokens")
        ));
    }
    if n("cost_nanos") > 0 {
        parts.push(format!("${}", format_usd(n("cost_nanos"))));
    }
    parts.push(format!("{} ms", n("latency_ms")));
    parts.join("  ")
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_call_is_one_readable_line() {
        let call = json!({"ts": "2026-11-28T00:04:31.207Z", "agent": "bot", "kind": "llm",
            "target": "openai/gpt-4o-mini", "operation": "chat.completions", "status": 429,
            "outcome": "denied", "reason": "budget_exceeded", "input_tokens": 0,
            "output_tokens": 0, "cost_nanos": 0, "latency_ms": 3});
        assert_eq!(
            line(&call, false),
            "00:04:31.207  bot  llm  openai/gpt-4o-mini chat.completions  429 denied (budget_exceeded)  3 ms"
        );
        assert!(line(&call, true).contains("\x1b[33m429 denied"));
        let block = format!("event: call\ndata: {call}\n\n");
        assert_eq!(call_of(block.as_bytes()), Some(call));
        assert_eq!(call_of(b": keep-alive\n\n"), None);
    }

    #[test]
    fn hostile_names_cannot_clear_the_screen_link_or_forge_lines() {
        let call = json!({"ts": "2026-11-28T00:04:31.207Z", "agent": "bot", "kind": "llm",
            "target": "openai/x\u{1b}[2J\u{1b}[H",
            "operation": "\u{1b}]8;;https://evil.example\u{1b}\\click\u{1b}]8;;\u{1b}\\",
            "status": 200, "outcome": "served\r00:00:00.000  admin  llm  fake  200 served",
            "reason": "x\ny\u{9b}2J", "latency_ms": 3});
        for colour in [false, true] {
            let shown = line(&call, colour);
            // Only the colour codes Airlock itself adds may reach the terminal.
            let without_ours = shown.replace("\u{1b}[90m", "").replace("\u{1b}[0m", "");
            assert!(!without_ours.chars().any(char::is_control), "{shown:?}");
            assert!(shown.contains("x\\x1b[2J\\x1b[H"), "{shown}");
            assert!(shown.contains("\\x1b]8;;https://evil.example"), "{shown}");
            assert!(shown.contains("served\\x0d00:00:00.000"), "{shown}");
            assert!(shown.contains("(x\\x0ay\\u{9b}2J)"), "{shown}");
        }
        let json = json_for_terminal(&call.to_string()).into_owned();
        assert!(!json.chars().any(char::is_control), "{json}");
    }
}
