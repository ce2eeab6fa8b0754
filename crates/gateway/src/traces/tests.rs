use std::sync::{Arc, Mutex};

use airlock_core::{Kind, Outcome, Usage};
use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanProcessor};
use serde_json::json;

use super::*;

/// Keeps ended spans, for the tests to read.
#[derive(Debug, Clone, Default)]
struct Kept(Arc<Mutex<Vec<SpanData>>>);

impl SpanProcessor for Kept {
    fn on_start(&self, _: &mut Span, _: &Context) {}
    fn on_end(&self, span: SpanData) {
        self.0.lock().unwrap().push(span);
    }
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        Ok(())
    }
}

fn traces() -> (Traces, Kept) {
    let kept = Kept::default();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(kept.clone())
        .build();
    (Traces::with_provider(provider), kept)
}

const AGENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const AGENT_SPAN: &str = "00f067aa0ba902b7";

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn config() -> Config {
    Config::parse(
        "providers:\n  oa: { kind: openai, base_url: 'http://127.0.0.1:9/v1', api_key: sk-secret-oa }\n  local: { kind: openai-compatible, base_url: 'http://127.0.0.1:9/v1' }\n",
        &|_| None,
    )
    .unwrap()
}

fn event(kind: Kind, operation: &str) -> Event {
    Event {
        id: "ev_1".into(),
        ts_ms: 0,
        agent: Some("bot".into()),
        team: Some("qa".into()),
        kind,
        target: None,
        provider: None,
        model: None,
        operation: operation.into(),
        status: 200,
        outcome: Outcome::Served,
        reason: None,
        usage: Usage::default(),
        cost_nanos: 0,
        latency_ms: 3,
        upstream_ms: None,
        bytes_in: 0,
        bytes_out: 0,
        run_id: None,
        extra: Default::default(),
    }
}

fn attribute(span: &SpanData, key: &str) -> Option<opentelemetry::Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

#[test]
fn a_call_continues_the_agents_trace_and_names_itself_upstream() {
    let (traces, kept) = traces();
    let parent = format!("00-{AGENT_TRACE}-{AGENT_SPAN}-01");
    let span = traces.open(
        &headers(&[("traceparent", &parent), ("tracestate", "vendor=a1")]),
        None,
    );
    let up = span.upstream().unwrap();
    let mut upstream = headers(&[("traceparent", &parent), ("tracestate", "other=x")]);
    up.replace_headers(&mut upstream);
    let sent = upstream.get("traceparent").unwrap().to_str().unwrap();
    let [version, trace, id, flags] = sent.split('-').collect::<Vec<_>>()[..] else {
        panic!("{sent}")
    };
    assert_eq!((version, trace, flags), ("00", AGENT_TRACE, "01"));
    assert_ne!(id, AGENT_SPAN, "the upstream's parent is Airlock's span");
    assert_eq!(upstream.get_all("traceparent").iter().count(), 1);
    assert_eq!(upstream.get("tracestate").unwrap(), "vendor=a1");

    span.end(&event(Kind::Llm, "chat.completions"), &config());
    let spans = kept.0.lock().unwrap();
    let [s] = &spans[..] else { panic!("{spans:?}") };
    assert_eq!(
        s.span_context.trace_id(),
        TraceId::from_hex(AGENT_TRACE).unwrap()
    );
    assert_eq!(s.parent_span_id, SpanId::from_hex(AGENT_SPAN).unwrap());
    assert!(s.parent_span_is_remote);
    assert_eq!(s.span_context.span_id().to_string(), id);
    assert_eq!(s.span_kind, SpanKind::Client);
}

#[test]
fn an_unusable_traceparent_starts_a_new_trace() {
    let zeros = "0".repeat(32);
    let bad = [
        format!("00-{zeros}-{AGENT_SPAN}-01"), // all-zero trace id
        format!("00-{AGENT_TRACE}-0000000000000000-01"), // all-zero span id
        format!("ff-{AGENT_TRACE}-{AGENT_SPAN}-01"), // version ff is invalid
        format!("00-{}-{AGENT_SPAN}-01", AGENT_TRACE.to_uppercase()), // ids are lowercase
        format!("00-{AGENT_TRACE}-{AGENT_SPAN}-01-extra"), // version 00 has four parts
        "garbage".to_string(),
    ];
    let (traces, kept) = traces();
    for header in &bad {
        let span = traces.open(&headers(&[("traceparent", header)]), None);
        span.end(&event(Kind::Egress, "GET"), &config());
    }
    let spans = kept.0.lock().unwrap();
    assert_eq!(spans.len(), bad.len());
    for (s, header) in spans.iter().zip(&bad) {
        assert_eq!(s.parent_span_id, SpanId::INVALID, "{header}");
        assert!(s.span_context.is_valid(), "{header}");
        assert_ne!(
            s.span_context.trace_id().to_string(),
            AGENT_TRACE,
            "{header}"
        );
    }
}

#[test]
fn a_later_version_is_read_by_its_first_four_fields() {
    let (traces, kept) = traces();
    let header = format!("01-{AGENT_TRACE}-{AGENT_SPAN}-01-more");
    traces
        .open(&headers(&[("traceparent", &header)]), None)
        .end(&event(Kind::Egress, "GET"), &config());
    let spans = kept.0.lock().unwrap();
    assert_eq!(
        spans[0].parent_span_id,
        SpanId::from_hex(AGENT_SPAN).unwrap()
    );
}

#[test]
fn an_unsampled_trace_is_not_recorded_and_stays_unsampled_upstream() {
    let (traces, kept) = traces();
    let header = format!("00-{AGENT_TRACE}-{AGENT_SPAN}-00");
    let span = traces.open(&headers(&[("traceparent", &header)]), None);
    let mut up = HeaderMap::new();
    span.upstream().unwrap().replace_headers(&mut up);
    let sent = up.get("traceparent").unwrap().to_str().unwrap().to_string();
    assert!(sent.starts_with(&format!("00-{AGENT_TRACE}-")) && sent.ends_with("-00"));
    assert!(up.get("tracestate").is_none());
    span.end(&event(Kind::Egress, "GET"), &config());
    assert!(kept.0.lock().unwrap().is_empty());
}

#[test]
fn mcp_meta_wins_over_the_headers_and_is_replaced_upstream() {
    let (traces, kept) = traces();
    let meta_trace = "0af7651916cd43dd8448eb211c80319c";
    let meta = json!({
        "traceparent": format!("00-{meta_trace}-b7ad6b7169203331-01"),
        "progressToken": 7,
    });
    let span = traces.open(
        &headers(&[("traceparent", &format!("00-{AGENT_TRACE}-{AGENT_SPAN}-01"))]),
        meta.as_object(),
    );
    let mut params = json!({"name": "echo", "_meta": meta});
    span.upstream().unwrap().replace_meta(&mut params);
    let sent = params["_meta"]["traceparent"].as_str().unwrap().to_string();
    assert!(sent.starts_with(&format!("00-{meta_trace}-")), "{sent}");
    assert!(!sent.contains("b7ad6b7169203331"));
    assert_eq!(
        params["_meta"]["progressToken"], 7,
        "the rest of _meta stays"
    );
    let mut bare = json!({"name": "echo"});
    span.upstream().unwrap().replace_meta(&mut bare);
    assert_eq!(bare["_meta"]["traceparent"], sent.as_str());

    span.end(&event(Kind::Mcp, "echo"), &config());
    let spans = kept.0.lock().unwrap();
    assert_eq!(
        spans[0].span_context.trace_id(),
        TraceId::from_hex(meta_trace).unwrap()
    );
}

#[test]
fn a_served_chat_is_a_genai_span_with_its_usage_and_cost() {
    let mut e = event(Kind::Llm, "chat.completions");
    e.model = Some("gpt-e2e".into());
    e.provider = Some("oa".into());
    e.target = Some("oa/chat-upstream".into());
    e.usage = Usage {
        input_tokens: 11,
        cached_input_tokens: 4,
        output_tokens: 3,
        ..Usage::default()
    };
    e.cost_nanos = 54_000;
    e.run_id = Some("run-1".into());
    let (traces, kept) = traces();
    traces.open(&HeaderMap::new(), None).end(&e, &config());
    let spans = kept.0.lock().unwrap();
    let s = &spans[0];
    assert_eq!(s.name, "chat gpt-e2e");
    assert_eq!(s.status, Status::Unset);
    let want: &[(&str, opentelemetry::Value)] = &[
        ("gen_ai.operation.name", "chat".into()),
        ("gen_ai.provider.name", "openai".into()),
        ("gen_ai.system", "openai".into()),
        ("gen_ai.request.model", "gpt-e2e".into()),
        ("gen_ai.usage.input_tokens", 11i64.into()),
        ("gen_ai.usage.output_tokens", 3i64.into()),
        ("gen_ai.usage.cache_read.input_tokens", 4i64.into()),
        ("airlock.agent", "bot".into()),
        ("airlock.team", "qa".into()),
        ("airlock.outcome", "served".into()),
        ("airlock.target", "oa/chat-upstream".into()),
        ("airlock.event_id", "ev_1".into()),
        ("airlock.run_id", "run-1".into()),
        ("airlock.cost_nanos", 54_000i64.into()),
        ("airlock.cost_usd", 0.000054.into()),
        ("http.response.status_code", 200i64.into()),
    ];
    for (key, value) in want {
        assert_eq!(attribute(s, key).as_ref(), Some(value), "{key}");
    }
    assert!(attribute(s, "error.type").is_none());
    let all = format!("{:?}", s.attributes);
    assert!(!all.contains("sk-secret-oa"), "{all}");
}

#[test]
fn a_refused_call_is_an_error_span_with_its_reason() {
    let mut e = event(Kind::Llm, "chat.completions");
    e.model = Some("secret-model".into());
    e.status = 403;
    e.outcome = Outcome::Denied;
    e.reason = Some("not_allowed".into());
    let d = attributes::describe(&e, &config());
    assert_eq!(d.name, "chat secret-model");
    assert_eq!(d.error.as_deref(), Some("not_allowed"));
    let has = |k: &str, v: opentelemetry::Value| {
        d.attributes
            .iter()
            .any(|kv| kv.key.as_str() == k && kv.value == v)
    };
    assert!(has("error.type", "not_allowed".into()));
    assert!(has("airlock.reason", "not_allowed".into()));
    assert!(has("http.response.status_code", 403i64.into()));
    assert!(
        !d.attributes
            .iter()
            .any(|kv| kv.key.as_str().starts_with("gen_ai.usage"))
    );
}

#[test]
fn each_kind_names_its_span_by_its_own_convention() {
    let config = config();
    let value = |d: &attributes::Described, k: &str| {
        d.attributes
            .iter()
            .find(|kv| kv.key.as_str() == k)
            .map(|kv| kv.value.to_string())
    };

    let mut tool = event(Kind::Mcp, "files__read");
    tool.target = Some("files/read".into());
    tool.extra = json!({"server": "files", "tool": "read", "is_error": true})
        .as_object()
        .unwrap()
        .clone();
    let d = attributes::describe(&tool, &config);
    assert_eq!(d.name, "tools/call read");
    assert_eq!(value(&d, "mcp.method.name").as_deref(), Some("tools/call"));
    assert_eq!(value(&d, "gen_ai.tool.name").as_deref(), Some("read"));
    assert_eq!(
        value(&d, "gen_ai.operation.name").as_deref(),
        Some("execute_tool")
    );
    assert_eq!(value(&d, "error.type").as_deref(), Some("tool_error"));
    assert_eq!(d.error.as_deref(), Some("tool_error"));

    let mut prompt = event(Kind::Mcp, "prompts/get");
    prompt.target = Some("files/summary".into());
    let d = attributes::describe(&prompt, &config);
    assert_eq!(d.name, "prompts/get summary");
    assert_eq!(value(&d, "gen_ai.prompt.name").as_deref(), Some("summary"));

    let mut send = event(Kind::A2a, "SendMessage");
    send.provider = Some("planner".into());
    send.extra = json!({"task_id": "t1", "task_state": "TASK_STATE_COMPLETED", "context_id": "c1"})
        .as_object()
        .unwrap()
        .clone();
    let d = attributes::describe(&send, &config);
    assert_eq!(d.name, "SendMessage planner");
    assert_eq!(value(&d, "gen_ai.agent.name").as_deref(), Some("planner"));
    assert_eq!(value(&d, "a2a.task.id").as_deref(), Some("t1"));
    assert_eq!(value(&d, "gen_ai.conversation.id").as_deref(), Some("c1"));

    let mut get = event(Kind::Egress, "GET");
    get.extra = json!({"host": "example.test", "port": 8080, "path": "/a/b?token=s3cret", "bytes_down": 12})
        .as_object()
        .unwrap()
        .clone();
    let d = attributes::describe(&get, &config);
    assert_eq!(d.name, "GET");
    assert_eq!(value(&d, "server.address").as_deref(), Some("example.test"));
    assert_eq!(value(&d, "server.port").as_deref(), Some("8080"));
    assert_eq!(
        value(&d, "url.full").as_deref(),
        Some("http://example.test:8080/a/b")
    );
    assert_eq!(value(&d, "http.response.body.size").as_deref(), Some("12"));
    assert!(!format!("{:?}", d.attributes).contains("s3cret"));

    let mut shadow = event(Kind::Llm, "CONNECT");
    shadow.provider = Some("openai".into());
    shadow.extra = json!({"host": "api.openai.com", "port": 443})
        .as_object()
        .unwrap()
        .clone();
    let d = attributes::describe(&shadow, &config);
    assert_eq!(d.name, "CONNECT");
    assert_eq!(value(&d, "gen_ai.provider.name").as_deref(), Some("openai"));
    assert_eq!(value(&d, "url.full"), None);

    let mut local = event(Kind::Llm, "embeddings");
    local.provider = Some("local".into());
    local.model = Some("nomic".into());
    let d = attributes::describe(&local, &config);
    assert_eq!(d.name, "embeddings nomic");
    assert_eq!(value(&d, "gen_ai.provider.name").as_deref(), Some("local"));
}
