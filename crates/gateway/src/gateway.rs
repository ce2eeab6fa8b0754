//! The state every request sees: the current config snapshot (swapped whole on reload,
//! never locked), the ledger, the counters, metrics and the upstream client.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use airlock_core::config::Agent;
use airlock_core::config::egress::CaFiles;
use airlock_core::{Config, Denial, Event, Reason};
use airlock_state::{Counters, EventSlot, Ledger, StoredKey, Suspension};
use arc_swap::ArcSwap;

use crate::alerts::{Alert, Alerts};
use crate::controls::now_ms;
use crate::durable::Commits;
use crate::egress::ca::Authority;
use crate::identity::KeyRing;
use crate::in_flight::{AgentPermit, InFlight};
use crate::metrics::Metrics;
use crate::traces::Traces;
use crate::upstream::{self, Client};

/// One immutable config snapshot and what is derived from it.
pub struct Runtime {
    pub config: Arc<Config>,
    pub keys: KeyRing,
}

pub struct Gateway {
    runtime: ArcSwap<Runtime>,
    /// Keys made at run time, as last read from the ledger.
    stored_keys: ArcSwap<Vec<StoredKey>>,
    pub(crate) ledger: Ledger,
    pub(crate) counters: Counters,
    pub(crate) metrics: Metrics,
    pub(crate) upstream: Client,
    /// Plain-HTTP egress, pooled per checked address.
    pub(crate) egress: upstream::EgressClient,
    pub(crate) alerts: Alerts,
    /// The span exporter, when `telemetry.otlp_endpoint` is set (read at start only).
    pub(crate) traces: Option<Traces>,
    pub(crate) mcp: crate::mcp::McpState,
    /// Remote agents' cards (A2A), kept briefly.
    pub(crate) a2a: crate::a2a::Cards,
    /// Becomes true when the gateway shuts down; long-lived work (tunnels) watches it.
    pub(crate) stopping: tokio::sync::watch::Sender<bool>,
    /// Becomes true when the shutdown grace period is over: calls still running are cut
    /// and recorded as cancelled with reason `shutdown`.
    pub(crate) cut: tokio::sync::watch::Sender<bool>,
    /// Agents' connections still open; shutdown waits for them to record their calls.
    pub(crate) connections: tokio::sync::watch::Sender<usize>,
    /// The agents' listener's bound address (its configured one until it is bound).
    listening: std::sync::OnceLock<std::net::SocketAddr>,
    /// Calls in flight per agent (`limits.max_concurrent_per_agent`).
    pub(crate) in_flight: Arc<InFlight>,
    /// Suspended agents as last seen (set at once here, re-read from the counters every
    /// second for other replicas' suspensions), so a suspended agent is refused before its
    /// body is read. The counters' atomic check at admission stays the authority.
    suspended: ArcSwap<HashSet<String>>,
    /// Every settled call as the admin API shows it, for live feeds (`/api/events/stream`);
    /// nothing is made when no one listens.
    pub(crate) live: tokio::sync::broadcast::Sender<Arc<serde_json::Value>>,
    /// Egress tunnels still open; shutdown waits for them to record their events.
    pub(crate) tunnels: tokio::sync::watch::Sender<usize>,
    /// The admin token's digest (`None` when empty: no token opens the API); the token
    /// itself is not kept.
    pub(crate) admin_token: Option<airlock_core::keys::KeyDigest>,
    /// Dashboard sign-ins.
    pub(crate) sessions: crate::admin::Sessions,
    /// The interception CA and the files it was read from: read (or made) at start when
    /// `egress.intercept` is set, and again when a reload names other files.
    ca: std::sync::Mutex<Option<(CaFiles, Arc<Authority>)>>,
    /// A rebuild of the counters from the ledger is running.
    pub(crate) rebuilding: AtomicBool,
    id_prefix: u32,
    id_counter: AtomicU64,
}

impl Gateway {
    pub fn new(
        config: Config,
        ledger: Ledger,
        counters: Counters,
        stored_keys: Vec<StoredKey>,
        admin_token: String,
    ) -> Arc<Gateway> {
        let keys = KeyRing::build(&config, &stored_keys, now_ms());
        let upstream = upstream::client();
        let ca = config
            .egress
            .ca
            .as_ref()
            .and_then(|files| open_ca(files).ok().map(|ca| (files.clone(), ca)));
        let traces = config.otlp_traces.as_deref().and_then(|url| {
            Traces::start(url, upstream.clone())
                .inspect_err(|e| tracing::error!(%url, error = %e, "traces cannot be exported"))
                .ok()
        });
        let mut prefix = [0u8; 4];
        getrandom::fill(&mut prefix).expect("the OS random source is available");
        Arc::new(Gateway {
            runtime: ArcSwap::from_pointee(Runtime {
                config: Arc::new(config),
                keys,
            }),
            stored_keys: ArcSwap::from_pointee(stored_keys),
            ledger,
            counters,
            metrics: Metrics::default(),
            alerts: Alerts::start(upstream.clone()),
            traces,
            mcp: Default::default(),
            a2a: Default::default(),
            stopping: tokio::sync::watch::Sender::new(false),
            cut: tokio::sync::watch::Sender::new(false),
            connections: tokio::sync::watch::Sender::new(0),
            in_flight: Default::default(),
            listening: Default::default(),
            suspended: Default::default(),
            tunnels: tokio::sync::watch::Sender::new(0),
            live: tokio::sync::broadcast::Sender::new(LIVE_BACKLOG),
            upstream,
            egress: upstream::egress_client(),
            admin_token: (!admin_token.is_empty())
                .then(|| airlock_core::keys::KeyDigest::of(&admin_token)),
            sessions: Default::default(),
            ca: std::sync::Mutex::new(ca),
            rebuilding: AtomicBool::new(false),
            id_prefix: u32::from_le_bytes(prefix),
            id_counter: AtomicU64::new(0),
        })
    }

    /// The interception CA for `files`: the one already read, or those files read now (a
    /// reload named other ones), on the blocking pool.
    pub(crate) async fn authority(&self, files: &CaFiles) -> Result<Arc<Authority>, String> {
        let lock = || self.ca.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((loaded, ca)) = lock().as_ref()
            && loaded == files
        {
            return Ok(ca.clone());
        }
        let wanted = files.clone();
        let ca = tokio::task::spawn_blocking(move || open_ca(&wanted))
            .await
            .map_err(|e| e.to_string())??;
        *lock() = Some((files.clone(), ca.clone()));
        Ok(ca)
    }

    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    /// Swaps in a new config; calls in flight finish on the snapshot they started with.
    pub fn apply(&self, config: Config) {
        let keys = KeyRing::build(&config, &self.stored_keys.load(), now_ms());
        self.runtime.store(Arc::new(Runtime {
            config: Arc::new(config),
            keys,
        }));
    }

    /// Re-reads runtime keys from the ledger (new, rotated, revoked ones, also those made
    /// by other replicas) and rebuilds the key ring; grace periods that ended take effect.
    pub async fn refresh_keys(&self) {
        match self.ledger.keys().await {
            Ok(keys) => {
                self.stored_keys.store(Arc::new(keys));
                // Rebuild the key ring on whatever config is current, even if a reload
                // lands meanwhile (rcu retries), so a reload is never undone.
                let stored = self.stored_keys.load();
                self.runtime.rcu(|rt| Runtime {
                    config: rt.config.clone(),
                    keys: KeyRing::build(&rt.config, &stored, now_ms()),
                });
            }
            Err(e) => tracing::warn!(error = %e, "could not re-read agent keys from the ledger"),
        }
    }

    /// What an identified agent passes before its request body is read: it is not
    /// suspended, and it has a place among its calls in flight.
    pub(crate) fn enter(&self, agent: &Arc<Agent>, cap: u32) -> Result<AgentPermit, Denial> {
        if self.is_suspended(&agent.id) {
            return Err(suspended(&agent.id));
        }
        self.in_flight.acquire(agent, cap).ok_or_else(|| {
            let mut d = Denial::new(
                Reason::RateLimited,
                format!(
                    "agent `{}` already has {cap} calls in flight (limits.max_concurrent_per_agent)",
                    agent.id
                ),
            );
            d.retry_after(1);
            d
        })
    }

    /// Where agents reach this gateway: the bound address of its listener.
    pub(crate) fn listening(&self) -> std::net::SocketAddr {
        self.listening
            .get()
            .copied()
            .unwrap_or_else(|| self.runtime().config.listen.gateway)
    }

    pub(crate) fn bound(&self, addr: std::net::SocketAddr) {
        let _ = self.listening.set(addr);
    }

    /// Re-reads which agents are suspended (also by other replicas) from the counters.
    pub(crate) async fn refresh_suspensions(&self) {
        match self.counters.suspended().await {
            Ok(agents) => self.suspended.store(Arc::new(agents.into_iter().collect())),
            Err(e) => tracing::debug!(error = %e, "could not re-read suspensions"),
        }
    }

    pub(crate) fn is_suspended(&self, agent: &str) -> bool {
        self.suspended.load().contains(agent)
    }

    fn mark_suspended(&self, agent: &str, suspended: bool) {
        self.suspended.rcu(|set| {
            let mut set = HashSet::clone(set);
            if suspended {
                set.insert(agent.to_owned());
            } else {
                set.remove(agent);
            }
            set
        });
    }

    /// The kill switch: every later call of `agent` is refused until it is resumed.
    pub async fn suspend(self: &Arc<Self>, agent: &str, reason: &str) {
        tracing::warn!(agent, reason, "agent suspended");
        self.mark_suspended(agent, true);
        if let Err(e) = self.counters.set_suspended(agent, true).await {
            tracing::error!(error = %e, agent, "could not set the suspension in the counters");
        }
        let record = Suspension {
            agent: agent.into(),
            since_ms: now_ms(),
            reason: reason.into(),
        };
        if let Err(e) = self
            .ledger
            .set_suspension(agent.into(), Some(record.clone()))
            .await
        {
            tracing::error!(error = %e, agent, "could not record the suspension in the ledger");
        }
        let alert = Alert {
            kind: "agent_suspended",
            agent: agent.into(),
            message: format!("agent `{agent}` was suspended: {reason}"),
            detail: serde_json::json!({ "reason": reason }),
        };
        self.alert(
            alert,
            format!("suspended:{agent}:{}", record.since_ms),
            60_000,
        );
    }

    pub async fn resume(&self, agent: &str) {
        tracing::info!(agent, "agent resumed");
        self.mark_suspended(agent, false);
        if let Err(e) = self.counters.set_suspended(agent, false).await {
            tracing::error!(error = %e, agent, "could not lift the suspension in the counters");
        }
        if let Err(e) = self.ledger.set_suspension(agent.into(), None).await {
            tracing::error!(error = %e, agent, "could not lift the suspension in the ledger");
        }
    }

    /// A unique event id: a random per-process prefix (so replicas never collide) and a
    /// counter, with no system call per request.
    pub(crate) fn next_id(&self) -> String {
        let n = self.id_counter.fetch_add(1, Ordering::Relaxed);
        format!("ev_{:08x}{n:012x}", self.id_prefix)
    }

    /// Records a finished call: metrics now, the ledger through the slot the call
    /// reserved on arrival.
    /// Under `state.durable`, `commits` is the request's: its response's end waits for this
    /// event's commit.
    pub(crate) fn settle(
        &self,
        event: Event,
        slot: Option<EventSlot>,
        commits: Option<Commits>,
        overhead: Option<Duration>,
    ) {
        self.metrics
            .observe(&event, overhead, &self.runtime.load().config);
        if self.live.receiver_count() > 0 {
            let _ = self.live.send(Arc::new(event.to_json()));
        }
        match (slot, commits) {
            (Some(slot), Some(commits)) => commits.add(slot.record_committed(event)),
            (Some(slot), None) => slot.record(event),
            (None, _) => {
                tracing::error!(id = %event.id, "the ledger is closed; event not recorded")
            }
        }
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }
}

/// The refusal of a suspended agent's call, wherever it is noticed.
pub(crate) fn suspended(agent: &str) -> Denial {
    Denial::new(
        Reason::Suspended,
        format!("agent `{agent}` is suspended; an operator must resume it"),
    )
}

/// Events a slow live-feed reader may fall behind by before it skips ahead.
const LIVE_BACKLOG: usize = 1024;

/// Reads (or first makes) the CA in `files`, saying so in the log; a failure is logged too.
fn open_ca(files: &CaFiles) -> Result<Arc<Authority>, String> {
    match Authority::open(files) {
        Ok((ca, made)) => {
            if made {
                tracing::info!(cert = %files.cert, key = %files.key, "made a new interception CA: agents must trust its certificate (see `airlock ca init`)");
            }
            Ok(Arc::new(ca))
        }
        Err(e) => {
            tracing::error!(error = %e, "the interception CA could not be loaded: intercepted hosts are refused");
            Err(e)
        }
    }
}
