//! The audit hash chain. Each event's `hash` is SHA-256 over its predecessor's hash and the
//! event as it is stored, so an edited row no longer matches its hash and a deleted or
//! reordered one breaks the link of the row after it. Rows are chained in the writer's
//! transaction right after they are inserted, from what the database holds (so a value the
//! store rewrote, or a row it skipped as a repeat, cannot break the chain).

use airlock_core::Event;
use serde_json::json;
use sha2::{Digest, Sha256};

/// The predecessor of the first event.
pub const GENESIS: &str = "";

/// The hash of `event` after `prev`.
pub fn link(prev: &str, e: &Event) -> String {
    let fields = json!([
        e.id,
        e.ts_ms,
        e.agent,
        e.team,
        e.kind.as_str(),
        e.target,
        e.provider,
        e.model,
        e.operation,
        e.status,
        e.outcome.as_str(),
        e.reason,
        e.usage.input_tokens,
        e.usage.cached_input_tokens,
        e.usage.cache_write_tokens,
        e.usage.output_tokens,
        e.usage.reasoning_tokens,
        e.cost_nanos,
        e.latency_ms,
        e.upstream_ms,
        e.bytes_in,
        e.bytes_out,
        e.run_id,
        e.extra,
    ]);
    let mut hasher = Sha256::new();
    hasher.update(prev.as_bytes());
    hasher.update(b"\n");
    hasher.update(fields.to_string().as_bytes());
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One stored event with its links, in insertion order.
pub struct ChainedRow {
    pub event: Event,
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
}

/// Where the chain breaks first.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Break {
    /// The row's content no longer matches its hash: it was edited.
    Altered { id: String, position: u64 },
    /// The row does not follow the one before it: a row between was deleted, or rows
    /// were reordered or inserted by hand.
    Missing { before: String, position: u64 },
}

/// What `audit verify` found.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct AuditReport {
    /// Chained rows checked.
    pub checked: u64,
    /// Rows not chained yet (written by a version without the chain, before it first ran).
    pub unchained: u64,
    pub broken: Option<Break>,
}

/// Walks rows in insertion order, keeping where it is between pages.
#[derive(Default)]
pub struct Verifier {
    prev: String,
    pub report: AuditReport,
}

impl Verifier {
    /// Checks the next row; false once the chain is broken (nothing after it is checked).
    pub fn check(&mut self, row: &ChainedRow) -> bool {
        let Some(hash) = &row.hash else {
            self.report.unchained += 1;
            return true;
        };
        let position = self.report.checked + self.report.unchained + 1;
        if row.prev_hash.as_deref().unwrap_or(GENESIS) != self.prev {
            self.report.broken = Some(Break::Missing {
                before: row.event.id.clone(),
                position,
            });
            return false;
        }
        if &link(&self.prev, &row.event) != hash {
            self.report.broken = Some(Break::Altered {
                id: row.event.id.clone(),
                position,
            });
            return false;
        }
        self.report.checked += 1;
        self.prev = hash.clone();
        true
    }
}
