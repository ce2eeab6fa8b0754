//! The stages every call passes, whatever its protocol:
//!
//! 1. **classify** — the adapter turns the request into a call (operation, model/target).
//! 2. **identify** — the agent key names an agent; no key, no call (401).
//! 3. **decide**   — allow lists (and, as they land, budgets, rate limits, guards) give
//!    allow or a [`Denial`]; pure and synchronous.
//! 4. **forward**  — the adapter sends it upstream with the real credentials.
//! 5. **settle**   — usage becomes cost, and one [`Event`] goes to metrics and the ledger.
//!
//! A [`CallGuard`] is opened on arrival and settles exactly once: explicitly when the
//! response ends, or on drop when the client went away first (499, `cancelled`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use airlock_core::admission::Plan;
use airlock_core::config::{Agent, Target};
use airlock_core::{Denial, Event, Kind, Outcome, Reason, Usage};
use airlock_state::EventSlot;
use http::HeaderMap;
use serde_json::{Map, Value};

use crate::controls;
use crate::durable::Commits;
use crate::gateway::{Gateway, Runtime};
use crate::http::{BodyLimits, ReadError, unread};
use crate::identity::presented_key;
use crate::in_flight::AgentPermit;
use crate::traces::{CallSpan, UpstreamContext};
use crate::unwind;

/// What is known about a call in flight.
pub struct Call {
    pub id: String,
    started: Instant,
    ts_ms: u64,
    pub kind: Kind,
    pub operation: String,
    pub agent: Option<Arc<Agent>>,
    pub model: Option<String>,
    /// The MCP tool called, as `<server><separator><tool>`.
    pub tool: Option<String>,
    /// The egress destination host.
    pub host: Option<String>,
    pub target: Option<Target>,
    /// The provider when there is no target: an AI provider reached through the egress
    /// proxy.
    pub provider: Option<String>,
    pub run_id: Option<String>,
    pub bytes_in: u64,
    /// Time spent waiting for upstream response headers, over every attempt.
    pub upstream_wait: Option<Duration>,
    /// When the response headers were handed to the client.
    responded: Option<Instant>,
    /// The admitted plan of counter charges, settled with the real cost.
    pub plan: Option<Plan>,
    pub extra: Map<String, Value>,
    /// The call's span, when traces are exported.
    span: Option<CallSpan>,
}

/// The longest run id kept, in characters: an agent names its runs, and a run id becomes
/// counter keys (per-run budgets, loop rules) and an indexed ledger column.
const MAX_RUN_CHARS: usize = 128;

/// A run id as Airlock keeps it: not empty, at most [`MAX_RUN_CHARS`] characters.
pub fn run_id(named: &str) -> Option<String> {
    (!named.is_empty()).then(|| named.chars().take(MAX_RUN_CHARS).collect())
}

impl Call {
    /// The trace context to send upstream in place of the agent's: this call's span. `None`
    /// when traces are not exported; the agent's own context then passes unchanged.
    pub fn upstream_trace(&self) -> Option<&UpstreamContext> {
        self.span.as_ref().and_then(CallSpan::upstream)
    }

    /// Adds a span attribute the event does not carry. The value is only made when the
    /// call has a span: with traces off this costs nothing.
    pub fn annotate<V: Into<opentelemetry::Value>>(
        &mut self,
        key: &'static str,
        value: impl FnOnce() -> V,
    ) {
        if let Some(span) = &mut self.span {
            span.annotate(opentelemetry::KeyValue::new(key, value()));
        }
    }
}

/// How a call ended.
pub struct Ending {
    pub status: u16,
    pub reason: Option<Reason>,
    pub usage: Usage,
    pub bytes_out: u64,
}

impl Ending {
    pub fn denied(d: &Denial) -> Ending {
        Ending {
            status: d.reason.status(),
            reason: Some(d.reason),
            usage: Usage::default(),
            bytes_out: 0,
        }
    }
}

/// Owns a call until it is settled; settles it as cancelled if dropped first.
pub struct CallGuard {
    call: Option<Call>,
    slot: Option<EventSlot>,
    /// The agent's place among its calls in flight, given back when the call settles.
    permit: Option<AgentPermit>,
    /// Under `state.durable`: the request's commits, which its response's end waits for.
    commits: Option<Commits>,
    gateway: Arc<Gateway>,
    runtime: Arc<Runtime>,
}

impl CallGuard {
    /// Opens a call, first taking its place in the ledger's queue (see [`EventSlot`]).
    pub async fn open(
        gateway: Arc<Gateway>,
        kind: Kind,
        operation: &str,
        headers: &HeaderMap,
    ) -> CallGuard {
        CallGuard::open_with_meta(gateway, kind, operation, headers, None).await
    }

    /// [`open`](Self::open) for a JSON-RPC request whose `params._meta` may carry the
    /// agent's trace context (MCP's place for it), which then wins over the headers'.
    pub async fn open_with_meta(
        gateway: Arc<Gateway>,
        kind: Kind,
        operation: &str,
        headers: &HeaderMap,
        meta: Option<&Map<String, Value>>,
    ) -> CallGuard {
        // The span starts on arrival, before any wait for the ledger.
        let span = gateway.traces.as_ref().map(|t| t.open(headers, meta));
        let slot = gateway.ledger.reserve().await.ok();
        let runtime = gateway.runtime();
        // Header bytes past ASCII are taken as UTF-8: a run named in another script is
        // still a run (its limits must hold).
        let run_id = headers
            .get("x-airlock-run")
            .and_then(|v| run_id(&String::from_utf8_lossy(v.as_bytes())));
        let call = Call {
            id: gateway.next_id(),
            started: Instant::now(),
            ts_ms: controls::now_ms(),
            kind,
            operation: operation.to_string(),
            agent: None,
            model: None,
            tool: None,
            host: None,
            target: None,
            provider: None,
            run_id,
            bytes_in: 0,
            upstream_wait: None,
            responded: None,
            plan: None,
            extra: Map::new(),
            span,
        };
        CallGuard {
            call: Some(call),
            slot,
            permit: None,
            commits: Commits::current(),
            gateway,
            runtime,
        }
    }

    pub fn call(&mut self) -> &mut Call {
        self.call.as_mut().expect("a call is only settled once")
    }

    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }

    /// Stage 2: the agent behind the presented key.
    pub fn identify(&mut self, headers: &HeaderMap) -> Result<Arc<Agent>, Denial> {
        let Some(key) = presented_key(headers) else {
            return Err(Denial::new(
                Reason::Unauthorized,
                "no Airlock key: send it as `Authorization: Bearer <key>` or `x-api-key`",
            ));
        };
        self.identify_key(key)
    }

    /// Stage 2 with a key that came some other way (an intercepted connection's proxy key).
    pub fn identify_key(&mut self, key: &str) -> Result<Arc<Agent>, Denial> {
        let agent = self
            .runtime
            .keys
            .identify(key)
            .ok_or_else(|| Denial::new(Reason::Unauthorized, "the Airlock key is not valid"))?;
        self.enter(agent.clone())?;
        Ok(agent)
    }

    /// The call is `agent`'s, which must pass [`Gateway::enter`] (not suspended, under its
    /// cap of calls in flight) before anything of its request body is read.
    pub fn enter(&mut self, agent: Arc<Agent>) -> Result<(), Denial> {
        let cap = self.runtime.config.limits.max_concurrent_per_agent;
        let permit = self.gateway.enter(&agent, cap);
        self.call().agent = Some(agent);
        self.permit = Some(permit?);
        Ok(())
    }

    /// The call is `agent`'s, which passed [`Gateway::enter`] before the call was opened
    /// (adapters that read a message before knowing it is a call: MCP, A2A, egress).
    pub fn admitted(&mut self, agent: Arc<Agent>, permit: AgentPermit) {
        self.call().agent = Some(agent);
        self.permit = Some(permit);
    }

    /// Why a request body could not be read, as the call's denial. A body that broke off
    /// because Airlock cut the connection at shutdown is the shutdown's doing, not the
    /// client's.
    pub fn unread(&self, e: ReadError, limits: BodyLimits) -> Denial {
        if matches!(e, ReadError::Broken) && *self.gateway.cut.borrow() {
            return Denial::new(
                Reason::Shutdown,
                "Airlock shut down before the request body arrived",
            );
        }
        unread(e, limits)
    }

    /// Settles a call that did not run to its end: the client went away (499), Airlock
    /// cut it at shutdown (`shutdown`, with the status already sent, else 503), or a bug
    /// was caught while serving it (500 `internal`). `sent` is the status the client got.
    pub fn cut_short(mut self, sent: Option<u16>, usage: Usage, bytes_out: u64) {
        if let Some(call) = self.call.take() {
            let ending = self.unfinished(sent, usage, bytes_out);
            self.settle(call, ending);
        }
    }

    fn unfinished(&self, sent: Option<u16>, usage: Usage, bytes_out: u64) -> Ending {
        let (status, reason) = if unwind::dropping_after_panic() {
            (500, Reason::Internal)
        } else if *self.gateway.cut.borrow() {
            (sent.unwrap_or(503), Reason::Shutdown)
        } else {
            (499, Reason::ClientClosed)
        };
        Ending {
            status,
            reason: Some(reason),
            usage,
            bytes_out,
        }
    }

    /// Marks the moment the response starts, to separate Airlock's overhead from upstream time.
    pub fn responding(&mut self) {
        self.call().responded = Some(Instant::now());
    }

    /// Stage 5: prices the usage and records the event.
    pub fn finish(mut self, ending: Ending) {
        if let Some(call) = self.call.take() {
            self.settle(call, ending);
        }
    }

    /// Every ending's settlement: the cost, the counters corrected, the event recorded.
    fn settle(&mut self, mut call: Call, ending: Ending) {
        let (gateway, runtime) = (&self.gateway, &self.runtime);
        let priced = call
            .target
            .as_ref()
            .and_then(|t| runtime.config.prices.resolve(&t.provider, &t.model));
        let cost_nanos = priced.map_or(0, |(p, _)| p.cost(&ending.usage));
        if let Some((_, source)) = priced
            && call.kind == Kind::Llm
        {
            call.extra
                .insert("price_source".into(), source.as_str().into());
        }
        let outcome = match ending.reason {
            None => Outcome::Served,
            Some(_) if ending.status == 499 => Outcome::Cancelled,
            Some(r) => r.outcome(),
        };
        if let (Some(plan), Some(agent)) = (call.plan.take(), call.agent.as_ref()) {
            let tokens = ending.usage.input_tokens + ending.usage.output_tokens;
            let failed = outcome == Outcome::Failed;
            controls::settled(
                gateway.clone(),
                agent.id.clone(),
                plan,
                cost_nanos,
                tokens,
                failed,
            );
        }
        if call.host.is_some() {
            // Egress events name their bytes by direction; a tunnel sets both itself.
            call.extra
                .entry("bytes_down")
                .or_insert(ending.bytes_out.into());
        }
        let span = call.span.take();
        let overhead = call
            .responded
            .map(|r| (r - call.started).saturating_sub(call.upstream_wait.unwrap_or_default()));
        let event = Event {
            id: call.id,
            ts_ms: call.ts_ms,
            agent: call.agent.as_ref().map(|a| a.id.clone()),
            team: call.agent.as_ref().and_then(|a| a.team.clone()),
            kind: call.kind,
            target: call.target.as_ref().map(Target::to_string),
            provider: call
                .target
                .as_ref()
                .map(|t| t.provider.clone())
                .or(call.provider),
            model: call.model,
            operation: call.operation,
            status: ending.status,
            outcome,
            reason: ending.reason.map(|r| r.code().to_string()),
            usage: ending.usage,
            cost_nanos,
            latency_ms: call.started.elapsed().as_millis() as u64,
            upstream_ms: call.upstream_wait.map(|d| d.as_millis() as u64),
            bytes_in: call.bytes_in,
            bytes_out: ending.bytes_out,
            run_id: call.run_id,
            extra: call.extra,
        };
        if let Some(span) = span {
            span.end(&event, &runtime.config);
        }
        gateway.settle(event, self.slot.take(), self.commits.take(), overhead);
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            let ending = self.unfinished(None, Usage::default(), 0);
            self.settle(call, ending);
        }
    }
}

/// Stage 3 for model calls: the targets of `model` this agent may use (its allow and deny
/// lists, see `Agent::may_use`), in order; none is a refusal. With no targets (a name that
/// resolves to nothing), whether the name itself may be used.
pub fn decide_model(agent: &Agent, model: &str, targets: &[Target]) -> Result<Vec<Target>, Denial> {
    let permitted: Vec<Target> = targets
        .iter()
        .filter(|t| agent.may_use(model, t))
        .cloned()
        .collect();
    let refused = if targets.is_empty() {
        !agent.may_name(model)
    } else {
        permitted.is_empty()
    };
    if refused {
        return Err(Denial::new(
            Reason::NotAllowed,
            format!("agent `{}` may not use model `{model}`", agent.id),
        ));
    }
    Ok(permitted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denied_targets_are_skipped_in_order_and_all_denied_is_refused() {
        let config = airlock_core::Config::parse(
            "agents:\n  - id: a\n    deny: { models: [\"down/*\", gpt-test] }\n",
            &|_| None,
        )
        .unwrap();
        let agent = &config.agents[0];
        let t = |s: &str| Target::parse(s).unwrap();
        let kept = decide_model(agent, "any", &[t("down/x"), t("mock/x"), t("down/y")]).unwrap();
        assert_eq!(kept, vec![t("mock/x")]);
        let refused = decide_model(agent, "gpt-test", &[t("mock/gpt-test")]).unwrap_err();
        assert_eq!(refused.reason, Reason::NotAllowed);
        assert!(decide_model(agent, "any", &[t("down/x")]).is_err());
        assert!(decide_model(agent, "Gpt-Test", &[]).is_err());
        assert!(decide_model(agent, "unknown", &[]).unwrap().is_empty());
    }

    #[test]
    fn a_run_id_is_bounded_and_never_empty() {
        // An A2A contextId of 12 KB once failed a whole PostgreSQL batch as a run id.
        let huge = "é".repeat(12 * 1024);
        let kept = run_id(&huge).unwrap();
        assert_eq!(kept.chars().count(), MAX_RUN_CHARS);
        assert_eq!(run_id(""), None);
        assert_eq!(run_id("run-1").as_deref(), Some("run-1"));
    }
}
