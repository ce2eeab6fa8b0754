//! The ledger's record of one call, whatever its protocol: who, what, how it ended,
//! what it used and cost.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::money::nanos_to_usd;
use crate::usage::Usage;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Llm,
    Mcp,
    A2a,
    Egress,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Llm => "llm",
            Kind::Mcp => "mcp",
            Kind::A2a => "a2a",
            Kind::Egress => "egress",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        [Kind::Llm, Kind::Mcp, Kind::A2a, Kind::Egress]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// How a call ended, from the agent's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Served,
    Denied,
    Failed,
    Cancelled,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Served => "served",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
            Outcome::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        [
            Outcome::Served,
            Outcome::Denied,
            Outcome::Failed,
            Outcome::Cancelled,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// One call as recorded in the ledger.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub id: String,
    /// Unix time in milliseconds when the call arrived.
    pub ts_ms: u64,
    pub agent: Option<String>,
    pub team: Option<String>,
    pub kind: Kind,
    /// provider/model, MCP server/tool, remote agent, or host.
    pub target: Option<String>,
    pub provider: Option<String>,
    /// The model name the agent asked for.
    pub model: Option<String>,
    pub operation: String,
    /// HTTP status sent to the agent (499 when it went away first).
    pub status: u16,
    pub outcome: Outcome,
    pub reason: Option<String>,
    pub usage: Usage,
    pub cost_nanos: u64,
    pub latency_ms: u64,
    /// Time to the upstream's response headers, when an upstream was reached.
    pub upstream_ms: Option<u64>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub run_id: Option<String>,
    /// Protocol-specific fields (`intercepted`, `is_error`, `task_id`, ...).
    pub extra: Map<String, Value>,
}

impl Event {
    /// The event as the admin API shows it.
    pub fn to_json(&self) -> Value {
        let ts = humantime::format_rfc3339_millis(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(self.ts_ms),
        )
        .to_string();
        let mut v = json!({
            "id": self.id,
            "ts": ts,
            "agent": self.agent,
            "team": self.team,
            "kind": self.kind.as_str(),
            "target": self.target,
            "provider": self.provider,
            "model": self.model,
            "operation": self.operation,
            "status": self.status,
            "outcome": self.outcome.as_str(),
            "reason": self.reason,
            "input_tokens": self.usage.input_tokens,
            "cached_input_tokens": self.usage.cached_input_tokens,
            "cache_write_tokens": self.usage.cache_write_tokens,
            "output_tokens": self.usage.output_tokens,
            "reasoning_tokens": self.usage.reasoning_tokens,
            "cost_nanos": self.cost_nanos,
            "cost_usd": nanos_to_usd(self.cost_nanos),
            "latency_ms": self.latency_ms,
            "upstream_ms": self.upstream_ms,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "run_id": self.run_id,
        });
        if let Value::Object(obj) = &mut v {
            for (k, val) in &self.extra {
                obj.entry(k.clone()).or_insert_with(|| val.clone());
            }
        }
        v
    }
}
