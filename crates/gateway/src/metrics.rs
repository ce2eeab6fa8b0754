//! Prometheus metrics, fed from the same settled [`Event`] the ledger records, plus the
//! time Airlock itself added, so its overhead is visible apart from upstream time.

use std::time::Duration;

use airlock_core::{Config, Event};
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
    ledger_degraded: Counter,
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
        let ledger_degraded = Counter::default();

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
        registry.register(
            "airlock_ledger_degraded_events",
            "Events the ledger refused as written and stored in a degraded form (see the log)",
            ledger_degraded.clone(),
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
            ledger_degraded,
        }
    }
}

/// The `model` label for names neither config nor the price table knows.
const OTHER: &str = "other";

/// The `model` label of a call. The name is the agent's to choose and `/metrics` is open:
/// labelling every name seen let an agent grow the series without bound (3,000 made-up
/// names took it from 0.2 MB to 26 MB, for good). So only names from a bounded set are
/// labels: public names in `models:`, names `pricing:` lists, the built-in table's entries
/// (a snapshot such as `gpt-4o-mini-2024-07-18` is labelled by its entry, `gpt-4o-mini`);
/// everything else is `other`. The ledger keeps every call's exact name.
fn model_label<'a>(config: &Config, provider: &str, model: &'a str) -> &'a str {
    if model.is_empty()
        || config
            .models
            .as_ref()
            .is_some_and(|m| m.contains_key(model))
    {
        return model;
    }
    // `provider/model` written by the agent: priced under that provider.
    let (provider, name) = match model.split_once('/') {
        Some((p, name)) if config.providers.contains_key(p) => (p, name),
        _ => (provider, model),
    };
    match config.prices.entry_name(provider, name) {
        Some(entry) if entry == name => model,
        Some(entry) => entry,
        None => OTHER,
    }
}

impl Metrics {
    /// Counts a settled call. `config` (the current snapshot) bounds the labels.
    pub fn observe(&self, e: &Event, overhead: Option<Duration>, config: &Config) {
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        let agent = s(&e.agent);
        let provider = s(&e.provider);
        let model = model_label(config, &provider, e.model.as_deref().unwrap_or_default());
        let model = model.to_owned();
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

    /// The exposition; `ledger_degraded` is the ledger's own count so far.
    pub fn render(&self, ledger_degraded: u64) -> String {
        let seen = self.ledger_degraded.get();
        self.ledger_degraded
            .inc_by(ledger_degraded.saturating_sub(seen));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use airlock_core::{Event, Kind, Outcome, Usage};
    use serde_json::{Value, json};

    use super::*;

    /// The Grafana dashboard in the repo, which must only ask for what Airlock exports.
    const DASHBOARD: &str = include_str!("../../../deploy/grafana/airlock.json");

    fn event(outcome: Outcome, reason: Option<&str>) -> Event {
        Event {
            id: "e".into(),
            ts_ms: 0,
            agent: Some("bot".into()),
            team: None,
            kind: Kind::Llm,
            target: Some("openai/gpt-4o".into()),
            provider: Some("openai".into()),
            model: Some("gpt-4o".into()),
            operation: "chat.completions".into(),
            status: 200,
            outcome,
            reason: reason.map(str::to_owned),
            usage: Usage {
                input_tokens: 10,
                output_tokens: 5,
                ..Default::default()
            },
            cost_nanos: 100,
            latency_ms: 12,
            upstream_ms: Some(10),
            bytes_in: 1,
            bytes_out: 1,
            run_id: None,
            extra: json!({"dlp": [{"detector": "email", "path": "messages[0].content", "action": "redact"}]})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        }
    }

    fn config() -> Config {
        let yaml = "providers:
  openai: { kind: openai, base_url: http://127.0.0.1:9/v1 }
models:
  fast: { targets: [openai/gpt-4o-mini] }
pricing:
  openai/house-model: { input: 1, output: 1 }
";
        Config::parse(yaml, &|_| None).unwrap()
    }

    fn series(text: &str) -> usize {
        text.lines().filter(|l| !l.starts_with('#')).count()
    }

    fn asking_for(model: &str) -> Event {
        let mut e = event(Outcome::Served, None);
        e.model = Some(model.to_owned());
        e
    }

    #[test]
    fn made_up_model_names_do_not_grow_the_exposition() {
        let (config, one, many) = (config(), Metrics::default(), Metrics::default());
        one.observe(&asking_for("made-up-0"), None, &config);
        one.observe(&asking_for("gpt-4o-0"), None, &config);
        for i in 0..3_000 {
            many.observe(&asking_for(&format!("made-up-{i}")), None, &config);
            // Names a price table entry would match by prefix are no way around it.
            many.observe(&asking_for(&format!("gpt-4o-{i}")), None, &config);
        }
        many.observe(&asking_for("made-up-0"), None, &config);
        let (one, many) = (one.render(0), many.render(0));
        assert!(many.contains("model=\"other\""), "{many}");
        assert!(!many.contains("made-up"), "{many}");
        // `other` and the one table entry, `gpt-4o`, as after one name of each.
        assert_eq!(series(&many), series(&one), "{many}");
    }

    #[test]
    fn known_model_names_keep_their_label() {
        let config = config();
        for (asked, label) in [
            ("fast", "fast"),
            ("gpt-4o-mini", "gpt-4o-mini"),
            ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
            ("openai/gpt-4o", "openai/gpt-4o"),
            ("house-model", "house-model"),
            ("openai/house-model", "openai/house-model"),
            ("openai/made-up", "other"),
            ("nope/gpt-4o", "other"),
        ] {
            assert_eq!(model_label(&config, "openai", asked), label, "{asked}");
        }
    }

    /// Every series family the dashboard queries, with the labels it groups or filters by.
    fn queried() -> Vec<(String, BTreeSet<String>)> {
        let dashboard: Value = serde_json::from_str(DASHBOARD).unwrap();
        let metric = regex::Regex::new(r"airlock_[a-z_]+").unwrap();
        let labels = regex::Regex::new(r"by \(([a-z0-9_, ]+)\)|\{([a-z0-9_]+)=").unwrap();
        let mut out = Vec::new();
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"].as_str().unwrap();
                let used: BTreeSet<String> = labels
                    .captures_iter(expr)
                    .flat_map(|c| {
                        let group = c.get(1).or(c.get(2)).unwrap().as_str().to_owned();
                        group
                            .split(',')
                            .map(|l| l.trim().to_owned())
                            .collect::<Vec<_>>()
                    })
                    .filter(|l| l != "le")
                    .collect();
                for m in metric.find_iter(expr) {
                    out.push((m.as_str().to_owned(), used.clone()));
                }
            }
        }
        out
    }

    #[test]
    fn the_grafana_dashboard_asks_only_for_exported_series_and_labels() {
        let metrics = Metrics::default();
        let config = config();
        metrics.observe(
            &event(Outcome::Served, None),
            Some(Duration::from_millis(1)),
            &config,
        );
        metrics.observe(
            &event(Outcome::Denied, Some("budget_exceeded")),
            None,
            &config,
        );
        metrics.counters_failure();
        let text = metrics.render(0);
        let queried = queried();
        assert!(queried.len() >= 13, "{queried:?}");
        for (name, labels) in queried {
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
                .unwrap_or_else(|| {
                    panic!("the dashboard queries {name}, which /metrics lacks:\n{text}")
                });
            for label in labels {
                assert!(
                    line.contains(&format!("{label}=\"")),
                    "{name} has no label `{label}`: {line}"
                );
            }
        }
    }
}
