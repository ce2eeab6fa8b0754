//! Airlock's state: the ledger, the append-only record of every call that is both the
//! audit log and the spend data, where runtime-made agent keys live (as digests), and
//! where the definitions of upstream MCP tools are pinned.
//!
//! Storage is behind [`ledger::LedgerStore`]; callers hold a [`Ledger`] handle whose
//! writes go through a queue to one writer thread (batched transactions, never on the
//! request path; admission waits while the queue is over capacity) and whose reads run on
//! the blocking pool.

pub mod counters;
pub mod ledger;

pub use counters::{Counters, CountersError, Decision, MemoryCounters};
pub use ledger::{
    AlertRecord, EventQuery, EventSlot, GroupBy, Ledger, LedgerError, LedgerFiles, PinStatus,
    SeenTool, StoredKey, Suspension, ToolPin, UsageQuery, UsageRow,
};
