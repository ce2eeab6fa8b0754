//! A settled call as a span: its name, its attributes and whether it failed. Pure: the
//! [`Event`] and the config in, plain values out.
//!
//! Names and keys follow the OpenTelemetry semantic conventions — GenAI for model calls
//! (`{operation} {model}`), MCP for tool calls (`{method} {tool}`), HTTP client for egress
//! (`{method}`) — and Airlock's own facts go under `airlock.*`. Only what the event holds
//! is read: never a key, a body or a query string.

use airlock_core::config::ProviderKind;
use airlock_core::money::nanos_to_usd;
use airlock_core::{Config, Event, Kind, Outcome};
use opentelemetry::KeyValue;
use serde_json::Value;

pub struct Described {
    pub name: String,
    pub attributes: Vec<KeyValue>,
    /// The reason code when the span's status is Error (refused or failed).
    pub error: Option<String>,
}

pub fn describe(event: &Event, config: &Config) -> Described {
    let mut out = Vec::with_capacity(24);
    let name = match event.kind {
        Kind::Llm if genai_operation(&event.operation).is_some() => llm(event, config, &mut out),
        Kind::Mcp => mcp(event, &mut out),
        Kind::A2a => a2a(event, &mut out),
        // Egress, and model calls seen only as traffic to a provider's host (shadow AI).
        Kind::Llm | Kind::Egress => egress(event, &mut out),
    };
    common(event, &mut out);
    let tool_error = event.extra.get("is_error") == Some(&Value::Bool(true));
    let error = match (event.outcome, &event.reason) {
        (Outcome::Denied | Outcome::Failed, Some(reason)) => Some(reason.clone()),
        (Outcome::Denied | Outcome::Failed, None) => Some(event.outcome.as_str().to_string()),
        _ if tool_error => Some("tool_error".to_string()),
        _ => None,
    };
    match (&event.reason, tool_error) {
        (Some(reason), _) => out.push(KeyValue::new("error.type", reason.clone())),
        (None, true) => out.push(KeyValue::new("error.type", "tool_error")),
        (None, false) => {}
    }
    Described {
        name,
        attributes: out,
        error,
    }
}

/// `gen_ai.operation.name` for the LLM adapter's operations.
fn genai_operation(operation: &str) -> Option<&'static str> {
    match operation {
        "chat.completions" | "responses" | "messages" => Some("chat"),
        "embeddings" => Some("embeddings"),
        _ => None,
    }
}

/// `gen_ai.provider.name`: the well-known name for OpenAI and Anthropic providers, the
/// configured provider's name for other OpenAI-compatible ones.
fn genai_provider(provider: &str, config: &Config) -> String {
    match config.providers.get(provider).map(|p| p.kind) {
        Some(ProviderKind::Openai) => "openai".into(),
        Some(ProviderKind::Anthropic) => "anthropic".into(),
        Some(ProviderKind::OpenaiCompatible) | None => provider.into(),
    }
}

fn llm(event: &Event, config: &Config, out: &mut Vec<KeyValue>) -> String {
    let operation = genai_operation(&event.operation).unwrap_or("chat");
    out.push(KeyValue::new("gen_ai.operation.name", operation));
    if let Some(provider) = &event.provider {
        let name = genai_provider(provider, config);
        // `gen_ai.system` is the older key; collectors on either convention find it.
        out.push(KeyValue::new("gen_ai.provider.name", name.clone()));
        out.push(KeyValue::new("gen_ai.system", name));
    }
    if let Some(model) = &event.model {
        out.push(KeyValue::new("gen_ai.request.model", model.clone()));
    }
    let usage = &event.usage;
    if event.outcome == Outcome::Served || usage.input_tokens + usage.output_tokens > 0 {
        out.push(int("gen_ai.usage.input_tokens", usage.input_tokens));
        out.push(int("gen_ai.usage.output_tokens", usage.output_tokens));
    }
    if usage.cached_input_tokens > 0 {
        out.push(int(
            "gen_ai.usage.cache_read.input_tokens",
            usage.cached_input_tokens,
        ));
    }
    if usage.cache_write_tokens > 0 {
        out.push(int(
            "gen_ai.usage.cache_creation.input_tokens",
            usage.cache_write_tokens,
        ));
    }
    if usage.reasoning_tokens > 0 {
        out.push(int(
            "airlock.usage.reasoning_tokens",
            usage.reasoning_tokens,
        ));
    }
    if let Some(intercepted) = event.extra.get("intercepted").and_then(Value::as_bool) {
        out.push(KeyValue::new("airlock.intercepted", intercepted));
    }
    match &event.model {
        Some(model) => format!("{operation} {model}"),
        None => operation.to_string(),
    }
}

fn mcp(event: &Event, out: &mut Vec<KeyValue>) -> String {
    // A tools/call is recorded under the tool's name; other calls under their method.
    let tool = text(event, "tool");
    let method = if tool.is_some() {
        "tools/call"
    } else {
        event.operation.as_str()
    };
    out.push(KeyValue::new("mcp.method.name", method.to_string()));
    if let Some(server) = text(event, "server") {
        out.push(KeyValue::new("airlock.mcp.server", server.to_string()));
    }
    // The upstream's own name for the tool, prompt or resource.
    let upstream = event
        .target
        .as_deref()
        .and_then(|t| t.split_once('/'))
        .map(|(_, name)| name);
    let target = match (tool, method) {
        (Some(tool), _) => {
            out.push(KeyValue::new("gen_ai.operation.name", "execute_tool"));
            out.push(KeyValue::new("gen_ai.tool.name", tool.to_string()));
            Some(tool)
        }
        (None, "prompts/get") => {
            if let Some(prompt) = upstream {
                out.push(KeyValue::new("gen_ai.prompt.name", prompt.to_string()));
            }
            upstream
        }
        (None, "resources/read") => {
            if let Some(uri) = upstream {
                out.push(KeyValue::new("mcp.resource.uri", uri.to_string()));
            }
            // A URI is no span name: too many of them.
            None
        }
        _ => None,
    };
    match target {
        Some(t) => format!("{method} {t}"),
        None => method.to_string(),
    }
}

fn a2a(event: &Event, out: &mut Vec<KeyValue>) -> String {
    out.push(KeyValue::new("rpc.system", "jsonrpc"));
    out.push(KeyValue::new("rpc.method", event.operation.clone()));
    let remote = event.provider.as_deref();
    if let Some(remote) = remote {
        out.push(KeyValue::new("gen_ai.agent.name", remote.to_string()));
    }
    for (key, attribute) in [
        ("task_id", "a2a.task.id"),
        ("task_state", "a2a.task.state"),
        ("context_id", "gen_ai.conversation.id"),
        ("a2a_version", "a2a.protocol.version"),
    ] {
        if let Some(v) = text(event, key) {
            out.push(KeyValue::new(attribute, v.to_string()));
        }
    }
    match remote {
        Some(remote) => format!("{} {remote}", event.operation),
        None => event.operation.clone(),
    }
}

fn egress(event: &Event, out: &mut Vec<KeyValue>) -> String {
    out.push(KeyValue::new(
        "http.request.method",
        event.operation.clone(),
    ));
    let host = text(event, "host");
    let port = event.extra.get("port").and_then(Value::as_u64);
    if let Some(host) = host {
        out.push(KeyValue::new("server.address", host.to_string()));
    }
    if let Some(port) = port {
        out.push(int("server.port", port));
    }
    // Plain HTTP only (a tunnel has no path): the query is left out, it may hold secrets.
    if let (Some(host), Some(port), Some(path)) = (host, port, text(event, "path")) {
        let path = path.split(['?', '#']).next().unwrap_or("/");
        let authority = if port == 80 {
            host.to_string()
        } else {
            format!("{host}:{port}")
        };
        out.push(KeyValue::new(
            "url.full",
            format!("http://{authority}{path}"),
        ));
    }
    for (key, attribute) in [
        ("bytes_up", "http.request.body.size"),
        ("bytes_down", "http.response.body.size"),
    ] {
        if let Some(n) = event.extra.get(key).and_then(Value::as_u64) {
            out.push(int(attribute, n));
        }
    }
    if let Some(provider) = &event.provider {
        out.push(KeyValue::new("gen_ai.provider.name", provider.clone()));
    }
    event.operation.clone()
}

/// Airlock's own facts, on every span.
fn common(event: &Event, out: &mut Vec<KeyValue>) {
    out.push(KeyValue::new("airlock.event_id", event.id.clone()));
    out.push(KeyValue::new("airlock.kind", event.kind.as_str()));
    out.push(KeyValue::new("airlock.operation", event.operation.clone()));
    out.push(KeyValue::new("airlock.outcome", event.outcome.as_str()));
    out.push(int("http.response.status_code", u64::from(event.status)));
    let optional = [
        ("airlock.agent", &event.agent),
        ("airlock.team", &event.team),
        ("airlock.target", &event.target),
        ("airlock.reason", &event.reason),
        ("airlock.run_id", &event.run_id),
    ];
    for (key, value) in optional {
        if let Some(v) = value {
            out.push(KeyValue::new(key, v.clone()));
        }
    }
    if event.cost_nanos > 0 {
        out.push(int("airlock.cost_nanos", event.cost_nanos));
        out.push(KeyValue::new(
            "airlock.cost_usd",
            nanos_to_usd(event.cost_nanos),
        ));
    }
    if let Some(ms) = event.upstream_ms {
        out.push(int("airlock.upstream_ms", ms));
    }
}

fn text<'a>(event: &'a Event, key: &str) -> Option<&'a str> {
    event.extra.get(key).and_then(Value::as_str)
}

/// OTLP integers are signed 64-bit; counts never come near the limit.
fn int(key: &'static str, n: u64) -> KeyValue {
    KeyValue::new(key, i64::try_from(n).unwrap_or(i64::MAX))
}
