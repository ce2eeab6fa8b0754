//! The state every request sees: the current config snapshot (swapped whole on reload,
//! never locked), the ledger, metrics and the upstream client.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use airlock_core::{Config, Event};
use airlock_state::{EventSlot, Ledger, StoredKey};
use arc_swap::ArcSwap;

use crate::identity::KeyRing;
use crate::metrics::Metrics;
use crate::upstream::{self, Client};

/// One immutable config snapshot and what is derived from it.
pub struct Runtime {
    pub config: Config,
    pub keys: KeyRing,
}

pub struct Gateway {
    runtime: ArcSwap<Runtime>,
    stored_keys: Vec<StoredKey>,
    pub(crate) ledger: Ledger,
    pub(crate) metrics: Metrics,
    pub(crate) upstream: Client,
    pub(crate) admin_token: String,
    id_prefix: u32,
    id_counter: AtomicU64,
}

impl Gateway {
    pub fn new(
        config: Config,
        ledger: Ledger,
        stored_keys: Vec<StoredKey>,
        admin_token: String,
    ) -> Arc<Gateway> {
        let keys = KeyRing::build(&config, &stored_keys);
        let mut prefix = [0u8; 4];
        getrandom::fill(&mut prefix).expect("the OS random source is available");
        Arc::new(Gateway {
            runtime: ArcSwap::from_pointee(Runtime { config, keys }),
            stored_keys,
            ledger,
            metrics: Metrics::default(),
            upstream: upstream::client(),
            admin_token,
            id_prefix: u32::from_le_bytes(prefix),
            id_counter: AtomicU64::new(0),
        })
    }

    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    /// Swaps in a new config; calls in flight finish on the snapshot they started with.
    pub fn apply(&self, config: Config) {
        let keys = KeyRing::build(&config, &self.stored_keys);
        self.runtime.store(Arc::new(Runtime { config, keys }));
    }

    /// A unique event id: a random per-process prefix (so replicas never collide) and a
    /// counter, with no system call per request.
    pub(crate) fn next_id(&self) -> String {
        let n = self.id_counter.fetch_add(1, Ordering::Relaxed);
        format!("ev_{:08x}{n:012x}", self.id_prefix)
    }

    /// Records a finished call: metrics now, the ledger through the slot the call
    /// reserved on arrival.
    pub(crate) fn settle(&self, event: Event, slot: Option<EventSlot>, overhead: Option<Duration>) {
        self.metrics.observe(&event, overhead);
        match slot {
            Some(slot) => slot.record(event),
            None => tracing::error!(id = %event.id, "the ledger is closed; event not recorded"),
        }
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }
}
