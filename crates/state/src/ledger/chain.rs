//! The audit hash chain. Each event's `hash` is SHA-256 over its predecessor's hash and the
//! event as it is stored, so an edited row no longer matches its hash and a deleted or
//! reordered one breaks the link of the row after it. Rows are chained in the writer's
//! transaction right after they are inserted, from what the database holds (so a value the
//! store rewrote, or a row it skipped as a repeat, cannot break the chain) — only the rows
//! that transaction inserted: a row found without a link is never taken in later, since
//! its content is no longer what the writer wrote. Rows deleted from the end leave a chain
//! that is still whole; the checkpoints (`checkpoint`) show those.

use airlock_core::Event;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::checkpoint::{CheckpointUse, Mark, Marks};

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
    /// The store's insertion position (SQLite's rowid, PostgreSQL's seq), which
    /// checkpoints name.
    pub position: i64,
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
    /// A row without a link after chained ones: its hash was removed. Only rows written
    /// before the chain existed, all before the first chained one, are left unchained.
    Unchained { id: String, position: u64 },
    /// The ledger ends before the row a checkpoint saw at `seq`: rows were deleted from
    /// its end.
    Truncated {
        seq: i64,
        ts_ms: u64,
        checkpoint: String,
        line: usize,
        /// The position of the ledger's last row, if it has any.
        last_seq: Option<i64>,
    },
    /// The row a checkpoint saw at `seq` is gone, or another row is there now.
    Diverged {
        seq: i64,
        ts_ms: u64,
        checkpoint: String,
        line: usize,
    },
}

/// What `audit verify` found.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct AuditReport {
    /// Chained rows checked.
    pub checked: u64,
    /// Rows written by a version without the chain, before it first ran.
    pub unchained: u64,
    pub broken: Option<Break>,
    /// The checkpoint files the chain was checked against; with none, rows deleted from
    /// the end cannot be told.
    pub checkpoints: Vec<CheckpointUse>,
}

/// Walks rows in insertion order, keeping where it is between pages.
pub struct Verifier {
    prev: String,
    last: Option<i64>,
    marks: Marks,
    report: AuditReport,
}

impl Verifier {
    /// A verifier that also checks the chain against `marks`, read from checkpoint files.
    pub fn new(marks: Vec<Mark>) -> Verifier {
        Verifier {
            prev: GENESIS.to_owned(),
            last: None,
            marks: Marks::new(marks),
            report: AuditReport::default(),
        }
    }

    /// Checks the next row; false once the chain is broken (nothing after it is checked).
    pub fn check(&mut self, row: &ChainedRow) -> bool {
        let position = self.report.checked + self.report.unchained + 1;
        let broken = match &row.hash {
            None if self.report.checked == 0 => {
                self.report.unchained += 1;
                return true;
            }
            None => Break::Unchained {
                id: row.event.id.clone(),
                position,
            },
            Some(_) if row.prev_hash.as_deref().unwrap_or(GENESIS) != self.prev => Break::Missing {
                before: row.event.id.clone(),
                position,
            },
            Some(hash) if &link(&self.prev, &row.event) != hash => Break::Altered {
                id: row.event.id.clone(),
                position,
            },
            Some(hash) => match self.marks.check(row.position, hash) {
                Some(broken) => broken,
                None => {
                    self.report.checked += 1;
                    self.prev = hash.clone();
                    self.last = Some(row.position);
                    return true;
                }
            },
        };
        self.report.broken = Some(broken);
        false
    }

    /// The report, once every row was checked (or the chain broke).
    pub fn finish(mut self) -> AuditReport {
        if self.report.broken.is_none() {
            self.report.broken = self.marks.finish(self.last);
        }
        self.report.checkpoints = self.marks.into_uses();
        self.report
    }
}
