//! Counters: budget reservations, rate windows, loop counts and suspensions. Each call's
//! admission is one atomic step over all its charges (all apply, or none and the first
//! refusal is reported), so concurrent calls can never overshoot a budget between a
//! check and an add.
//!
//! `memory` keeps them in this process; a shared store for replicas plugs in beside it.

mod memory;

use airlock_core::admission::Plan;

pub use memory::MemoryCounters;

#[derive(Debug, thiserror::Error)]
pub enum CountersError {
    #[error("counters store unavailable: {0}")]
    Unavailable(String),
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
}

impl Counters {
    pub fn open(url: &str) -> Result<Counters, CountersError> {
        match url {
            "memory" => Ok(Counters::Memory(MemoryCounters::default())),
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
        }
    }

    pub async fn set_suspended(&self, agent: &str, suspended: bool) -> Result<(), CountersError> {
        match self {
            Counters::Memory(m) => {
                m.set_suspended(agent, suspended);
                Ok(())
            }
        }
    }

    pub async fn suspended(&self) -> Result<Vec<String>, CountersError> {
        match self {
            Counters::Memory(m) => Ok(m.suspended()),
        }
    }
}
