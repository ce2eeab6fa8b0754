//! Prometheus metrics, fed from the same settled [`Event`] the ledger records, plus the
//! time Airlock itself added, so its overhead is visible apart from upstream time.

use std::time::Duration;

use airlock_core::Event;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    agent: String,
    kind: String,
    provider: String,
    model: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    agent: String,
    kind: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    agent: String,
    provider: String,
    model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    agent: String,
    provider: String,
    model: String,
    r#type: &'static str,
}

/// A content guard's finding: a DLP detector or an injection rule, and what was done.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FindingLabels {
    agent: String,
    kind: String,
    guard: &'static str,
    name: String,
    action: String,
}

fn seconds_histogram() -> Histogram {
    // 50µs .. ~100s: Airlock's overhead lives at the bottom, upstream time at the top.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 22))
}

pub struct Metrics {
    registry: Registry,
    requests: Family<CallLabels, Counter>,
    errors: Family<ReasonLabels, Counter>,
    tokens: Family<TokenLabels, Counter>,
    cost: Family<ModelLabels, Counter>,
    duration: Family<ModelLabels, Histogram, fn() -> Histogram>,
    upstream: Family<ModelLabels, Histogram, fn() -> Histogram>,
    overhead: Family<ModelLabels, Histogram, fn() -> Histogram>,
    counters_failures: Counter,
    findings: Family<FindingLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = Family::default();
        let errors = Family::default();
        let tokens = Family::default();
        let cost = Family::default();
        let duration: Family<_, _, fn() -> Histogram> =
            Family::new_with_constructor(seconds_histogram);
        let upstream: Family<_, _, fn() -> Histogram> =
            Family::new_with_constructor(seconds_histogram);
        let overhead: Family<_, _, fn() -> Histogram> =
            Family::new_with_constructor(seconds_histogram);
        let counters_failures = Counter::default();
        let findings = Family::default();

        let mut registry = Registry::default();
        registry.register(
            "airlock_requests",
            "Calls by agent, kind, provider, model and outcome",
            requests.clone(),
        );
        registry.register(
            "airlock_errors",
            "Denied or failed calls by reason code",
            errors.clone(),
        );
        registry.register(
            "airlock_tokens",
            "Tokens metered from provider usage reports",
            tokens.clone(),
        );
        registry.register(
            "airlock_cost_nanos",
            "Cost in nano-dollars (1e-9 USD)",
            cost.clone(),
        );
        registry.register(
            "airlock_request_duration_seconds",
            "Whole call, arrival to last byte",
            duration.clone(),
        );
        registry.register(
            "airlock_upstream_seconds",
            "Upstream time to response headers",
            upstream.clone(),
        );
        registry.register(
            "airlock_overhead_seconds",
            "Time Airlock added before the response started (total minus upstream wait)",
            overhead.clone(),
        );
        registry.register(
            "airlock_counters_failures",
            "Decisions or settlements the counters store could not serve",
            counters_failures.clone(),
        );
        registry.register(
            "airlock_content_findings",
            "What the content guards found (DLP detectors, injection rules) and the action taken",
            findings.clone(),
        );
        Metrics {
            registry,
            requests,
            errors,
            tokens,
            cost,
            duration,
            upstream,
            overhead,
            counters_failures,
            findings,
        }
    }
}

impl Metrics {
    pub fn observe(&self, e: &Event, overhead: Option<Duration>) {
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        let agent = s(&e.agent);
        let (provider, model) = (s(&e.provider), s(&e.model));
        self.requests
            .get_or_create(&CallLabels {
                agent: agent.clone(),
                kind: e.kind.as_str().into(),
                provider: provider.clone(),
                model: model.clone(),
                outcome: e.outcome.as_str().into(),
            })
            .inc();
        if let Some(reason) = &e.reason {
            self.errors
                .get_or_create(&ReasonLabels {
                    agent: agent.clone(),
                    kind: e.kind.as_str().into(),
                    reason: reason.clone(),
                })
                .inc();
        }
        self.observe_findings(e, &agent);
        let labels = ModelLabels {
            agent,
            provider,
            model,
        };
        for (kind, n) in [
            ("input", e.usage.input_tokens),
            ("cached_input", e.usage.cached_input_tokens),
            ("cache_write", e.usage.cache_write_tokens),
            ("output", e.usage.output_tokens),
            ("reasoning", e.usage.reasoning_tokens),
        ] {
            if n > 0 {
                let l = TokenLabels {
                    agent: labels.agent.clone(),
                    provider: labels.provider.clone(),
                    model: labels.model.clone(),
                    r#type: kind,
                };
                self.tokens.get_or_create(&l).inc_by(n);
            }
        }
        if e.cost_nanos > 0 {
            self.cost.get_or_create(&labels).inc_by(e.cost_nanos);
        }
        self.duration
            .get_or_create(&labels)
            .observe(e.latency_ms as f64 / 1000.0);
        if let Some(up) = e.upstream_ms {
            self.upstream
                .get_or_create(&labels)
                .observe(up as f64 / 1000.0);
        }
        if let Some(o) = overhead {
            self.overhead
                .get_or_create(&labels)
                .observe(o.as_secs_f64());
        }
    }

    /// Counts the findings the call's event lists (see `guards::outbound` and
    /// `guards::injection` for their shape).
    fn observe_findings(&self, e: &Event, agent: &str) {
        let text = |v: &serde_json::Value, key: &str| v[key].as_str().unwrap_or("").to_owned();
        let injection_action = e.extra.get("injection_action").and_then(|v| v.as_str());
        for (guard, key, name) in [
            ("dlp", "dlp", "detector"),
            ("injection", "injection", "rule"),
        ] {
            let Some(serde_json::Value::Array(listed)) = e.extra.get(key) else {
                continue;
            };
            for finding in listed {
                let action = match guard {
                    "dlp" => text(finding, "action"),
                    _ => injection_action.unwrap_or("monitor").to_owned(),
                };
                self.findings
                    .get_or_create(&FindingLabels {
                        agent: agent.to_owned(),
                        kind: e.kind.as_str().into(),
                        guard,
                        name: text(finding, name),
                        action,
                    })
                    .inc();
            }
        }
    }

    pub fn counters_failure(&self) {
        self.counters_failures.inc();
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
