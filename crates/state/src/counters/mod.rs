//! Counters: budget reservations, rate windows, loop counts and suspensions. Each call's
//! admission is one atomic step over all its charges (all apply, or none and the first
//! refusal is reported), so concurrent calls can never overshoot a budget between a
//! check and an add.
//!
//! `memory` keeps them in this process; a shared store for replicas plugs in beside it.

mod memory;
mod redis_store;

use airlock_core::admission::Plan;

pub use memory::MemoryCounters;
pub use redis_store::RedisCounters;

#[derive(Debug, thiserror::Error)]
pub enum CountersError {
    #[error("counters store unavailable: {0}")]
    Unavailable(String),
    /// The store lost its data (Redis restarted without persistence): budget counters
    /// must be rebuilt from the ledger before decisions resume.
    #[error("the counters store is empty and must be rebuilt from the ledger")]
    Empty,
}

/// The store's answer to an admission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Every charge applied. `flagged`: charges (by index) over their limit in monitor
    /// mode; `recent`: the run's recent fingerprints, newest last, when the plan keeps them.
    Admitted {
        flagged: Vec<(usize, u64)>,
        recent: Vec<String>,
    },
    /// Charge `index` is over its limit (its counter stands at `current`); nothing applied.
    Refused { index: usize, current: u64 },
    /// The agent is suspended; nothing applied.
    Suspended,
}

/// The configured counters store.
pub enum Counters {
    Memory(MemoryCounters),
    Redis(RedisCounters),
}

impl Counters {
    pub fn open(url: &str) -> Result<Counters, CountersError> {
        match url {
            "memory" => Ok(Counters::Memory(MemoryCounters::default())),
            u if u.starts_with("redis://") || u.starts_with("rediss://") => {
                Ok(Counters::Redis(RedisCounters::open(u)?))
            }
            other => Err(CountersError::Unavailable(format!(
                "unsupported counters store `{other}`"
            ))),
        }
    }

    /// Applies `plan`'s charges for `agent` at `now_ms`, all or nothing; pushes
    /// `fingerprint` onto the run's history when the plan keeps one.
    pub async fn admit(
        &self,
        agent: &str,
        plan: &Plan,
        fingerprint: &str,
        now_ms: u64,
    ) -> Result<Decision, CountersError> {
        match self {
            Counters::Memory(m) => Ok(m.admit(agent, plan, fingerprint, now_ms)),
            Counters::Redis(r) => r.admit(agent, plan, fingerprint).await,
        }
    }

    /// Adds signed deltas (key, delta, ttl ms); returns each counter's new value.
    pub async fn adjust(
        &self,
        changes: &[(String, i64, u64)],
        now_ms: u64,
    ) -> Result<Vec<i64>, CountersError> {
        match self {
            Counters::Memory(m) => Ok(m.adjust(changes, now_ms)),
            Counters::Redis(r) => r.adjust(changes).await,
        }
    }

    pub async fn set_suspended(&self, agent: &str, suspended: bool) -> Result<(), CountersError> {
        match self {
            Counters::Memory(m) => {
                m.set_suspended(agent, suspended);
                Ok(())
            }
            Counters::Redis(r) => r.set_suspended(agent, suspended).await,
        }
    }

    /// Sets counter values rebuilt from the ledger and the suspensions, then lets
    /// decisions resume; `false` when a shared store was not empty (another replica
    /// rebuilt it, or it never lost its data): nothing changed.
    pub async fn restore(
        &self,
        values: &[(String, i64, u64)],
        suspended: &[String],
        now_ms: u64,
    ) -> Result<bool, CountersError> {
        match self {
            Counters::Memory(m) => {
                m.restore(values, suspended, now_ms);
                Ok(true)
            }
            Counters::Redis(r) => r.restore(values, suspended).await,
        }
    }

    pub async fn suspended(&self) -> Result<Vec<String>, CountersError> {
        match self {
            Counters::Memory(m) => Ok(m.suspended()),
            Counters::Redis(r) => r.suspended().await,
        }
    }
}
