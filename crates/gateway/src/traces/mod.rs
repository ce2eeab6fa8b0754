//! Traces over OTLP, when `telemetry.otlp_endpoint` is set: one span per call, opened when
//! the call arrives and ended when it settles, with the attributes of its [`Event`]
//! (GenAI, MCP, A2A and HTTP semantic conventions, plus Airlock's own).
//!
//! A span continues the agent's trace: its parent is the W3C `traceparent` the agent sent
//! (for MCP, the one in the message's `params._meta` first), and the context passed
//! upstream names Airlock's span instead, so a whole agent run is one trace. Without an
//! endpoint nothing here exists: [`Gateway`](crate::Gateway) holds no [`Traces`], calls
//! carry no span, and the agent's own trace headers travel as before.
//!
//! Spans leave in batches from the SDK's own thread ([`export`]); a collector that is slow
//! or away costs dropped spans and a warning a minute, never a call's time.

mod attributes;
mod export;

use std::time::{Duration, SystemTime};

use airlock_core::{Config, Event};
use http::{HeaderMap, HeaderValue};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{
    Span as _, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, Span};
use serde_json::{Map, Value};

use crate::upstream::Client;

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";
/// How long shutdown waits for the last spans to reach the collector.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// The exporter and the tracer calls' spans come from.
pub struct Traces {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

impl Traces {
    /// Starts exporting to `url` (the OTLP/HTTP traces URL). Needs a Tokio runtime: the
    /// exporter's requests run on it.
    pub fn start(url: &str, client: Client) -> Result<Traces, String> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| e.to_string())?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(export::OtlpClient::new(client, runtime, url))
            .with_endpoint(url)
            .build()
            .map_err(|e| e.to_string())?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource())
            .build();
        tracing::info!(%url, "exporting traces over OTLP/HTTP");
        Ok(Traces::with_provider(provider))
    }

    fn with_provider(provider: SdkTracerProvider) -> Traces {
        let tracer = provider.tracer("airlock");
        Traces { provider, tracer }
    }

    /// The span of a call arriving now: a child of the agent's trace context when it sent
    /// one (`meta`, MCP's `params._meta`, before the HTTP `headers`), else a new trace.
    pub fn open(&self, headers: &HeaderMap, meta: Option<&Map<String, Value>>) -> CallSpan {
        let propagator = TraceContextPropagator::new();
        let root = Context::new();
        let from_meta = meta
            .map(|m| propagator.extract_with_context(&root, &MetaCarrier(m)))
            .filter(|cx| cx.span().span_context().is_valid());
        let parent = from_meta.unwrap_or_else(|| {
            propagator.extract_with_context(&root, &opentelemetry_http::HeaderExtractor(headers))
        });
        let span = self
            .tracer
            .span_builder("airlock")
            .with_kind(SpanKind::Client)
            .with_start_time(SystemTime::now())
            .start_with_context(&self.tracer, &parent);
        let upstream = UpstreamContext::of(&span);
        CallSpan { span, upstream }
    }

    /// Sends what is still queued, within [`FLUSH_TIMEOUT`]; later spans are dropped.
    pub async fn shutdown(&self) {
        let provider = self.provider.clone();
        let flushed =
            tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(FLUSH_TIMEOUT))
                .await;
        if let Ok(Err(e)) = flushed {
            tracing::warn!(error = %e, "traces: the last spans may not have reached the collector");
        }
    }
}

/// `service.name` is `airlock` unless `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES`
/// name it (the SDK reads both, and the rest of `OTEL_RESOURCE_ATTRIBUTES`).
fn resource() -> Resource {
    let detected = Resource::builder().build();
    let named = detected
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .is_some_and(|n| !n.as_str().starts_with("unknown_service"));
    let builder = Resource::builder()
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    if named {
        builder.build()
    } else {
        builder.with_service_name("airlock").build()
    }
}

/// A call's span, from arrival to settlement.
pub struct CallSpan {
    span: Span,
    /// `None` for the empty span a stopped exporter gives.
    upstream: Option<UpstreamContext>,
}

impl CallSpan {
    /// The trace context upstream requests carry: this span as their parent.
    pub fn upstream(&self) -> Option<&UpstreamContext> {
        self.upstream.as_ref()
    }

    /// Adds what the event does not say (an MCP session, a JSON-RPC id…).
    pub fn annotate(&mut self, attribute: KeyValue) {
        self.span.set_attribute(attribute);
    }

    /// Names the span after the settled call, sets its attributes and status, and ends it
    /// (it joins the export queue; nothing waits).
    pub fn end(mut self, event: &Event, config: &Config) {
        if !self.span.is_recording() {
            return;
        }
        let described = attributes::describe(event, config);
        self.span.update_name(described.name);
        self.span.set_attributes(described.attributes);
        if let Some(reason) = described.error {
            self.span.set_status(Status::error(reason));
        }
        self.span.end();
    }
}

/// The W3C trace context of Airlock's span, ready to replace the agent's on the way up.
pub struct UpstreamContext {
    traceparent: HeaderValue,
    /// The agent's `tracestate`, which the span inherited; `None` when it is empty.
    tracestate: Option<HeaderValue>,
}

impl UpstreamContext {
    fn of(span: &Span) -> Option<UpstreamContext> {
        let cx = span.span_context();
        if !cx.is_valid() {
            return None;
        }
        let traceparent = format!(
            "00-{}-{}-{:02x}",
            cx.trace_id(),
            cx.span_id(),
            cx.trace_flags().to_u8()
        );
        let tracestate = Some(cx.trace_state().header())
            .filter(|s| !s.is_empty())
            .and_then(|s| HeaderValue::from_str(&s).ok());
        Some(UpstreamContext {
            traceparent: HeaderValue::from_str(&traceparent).expect("hex digits and dashes"),
            tracestate,
        })
    }

    /// Puts this context in an upstream request's headers, in place of any the agent sent.
    pub fn replace_headers(&self, headers: &mut HeaderMap) {
        headers.insert(TRACEPARENT, self.traceparent.clone());
        match &self.tracestate {
            Some(state) => headers.insert(TRACESTATE, state.clone()),
            None => headers.remove(TRACESTATE),
        };
    }

    /// Puts this context in a JSON-RPC request's `params._meta` (MCP's carrier for it), in
    /// place of the agent's.
    pub fn replace_meta(&self, params: &mut Value) {
        let Some(params) = params.as_object_mut() else {
            return;
        };
        let meta = params
            .entry("_meta")
            .or_insert_with(|| Value::Object(Map::new()));
        let Some(meta) = meta.as_object_mut() else {
            return;
        };
        let text = |v: &HeaderValue| Value::String(v.to_str().unwrap_or_default().to_string());
        meta.insert(TRACEPARENT.into(), text(&self.traceparent));
        match &self.tracestate {
            Some(state) => meta.insert(TRACESTATE.into(), text(state)),
            None => meta.remove(TRACESTATE),
        };
    }
}

/// The `traceparent` and `tracestate` strings of an MCP message's `_meta`.
struct MetaCarrier<'a>(&'a Map<String, Value>);

impl Extractor for MetaCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests;
