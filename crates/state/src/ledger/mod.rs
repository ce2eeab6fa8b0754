//! The ledger handle: a queue in front of one writer thread, and a reader for queries.
//! Admission waits while the queue is over its capacity (backpressure); recording never
//! waits and nothing is dropped (`queue`, `writer`).

mod bounds;
pub mod chain;
pub mod checkpoint;
mod postgres;
mod queries;
mod queue;
mod rollup;
mod sqlite;
mod tool_pins;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use airlock_core::keys::KeyDigest;
use airlock_core::{Event, Kind, Outcome, Usage};
use tokio::sync::{mpsc, oneshot};

pub use bounds::{MAX_EXTRA_BYTES, MAX_EXTRA_STRING_BYTES, MAX_NAME_BYTES};
use checkpoint::ChainHead;
pub use postgres::PostgresStore;
pub use queue::EventSlot;
use queue::{Command, Queue};
pub use sqlite::SqliteStore;
pub use tool_pins::{PinStatus, SeenTool, ToolPin};

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Not `#[from]`: the source's detail goes into the message itself (`postgres_detail`).
    #[error("ledger database: {}", postgres_detail(.0))]
    Postgres(::postgres::Error),
    #[error("unsupported ledger URL `{0}` (this build supports sqlite://PATH and postgres://...)")]
    UnsupportedUrl(String),
    #[error("the ledger writer has stopped")]
    Closed,
    #[error("the event's batch was not committed (the gateway's log says why)")]
    NotCommitted,
    #[error("{events} events could not be written to the ledger; {}", match spill {
        Some(path) => format!("they are saved in {}", path.display()),
        None => "the spill file could not be written either: they are lost".into(),
    })]
    Unwritten {
        events: usize,
        spill: Option<PathBuf>,
    },
    #[error("checkpoint file {}: {source}", path.display())]
    Checkpoint {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl LedgerError {
    /// Whether a write failed for the database's state rather than its rows: unreachable,
    /// locked, full, read-only. Such a write is retried as it is; any other is split to
    /// find the rows at fault.
    fn is_transient(&self) -> bool {
        use rusqlite::ErrorCode::*;
        match self {
            LedgerError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                DatabaseBusy
                    | DatabaseLocked
                    | SystemIoFailure
                    | DiskFull
                    | CannotOpen
                    | ReadOnly
                    | OutOfMemory
                    | FileLockingProtocolFailed
            ),
            LedgerError::Postgres(e) => postgres::transient(e),
            LedgerError::Closed => true,
            _ => false,
        }
    }
}

impl From<::postgres::Error> for LedgerError {
    fn from(e: ::postgres::Error) -> LedgerError {
        LedgerError::Postgres(e)
    }
}

/// `postgres::Error` prints only its kind ("db error", "error connecting to server"); what
/// the server or the socket said is its source, which logs and API errors would not show.
fn postgres_detail(e: &::postgres::Error) -> String {
    match std::error::Error::source(e) {
        Some(source) => format!("{e}: {source}"),
        None => e.to_string(),
    }
}

/// The events after `after` (moved on past them), or `None` at the end.
fn next_page(
    store: &mut dyn LedgerStore,
    after: &mut i64,
    since_ms: u64,
) -> Result<Option<Vec<chain::ChainedRow>>, LedgerError> {
    let page = store.chained_page(*after, since_ms, 1000)?;
    let Some(last) = page.last() else {
        return Ok(None);
    };
    *after = last.position;
    Ok(Some(page))
}

/// How `/api/usage` groups rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GroupBy {
    #[default]
    Agent,
    Model,
    Team,
    Kind,
    Provider,
    /// How an LLM call reached its provider: `base_url` (sent to Airlock), `intercepted`
    /// (decrypted by the egress proxy), `recognised` (a tunnel to an AI host, unread); other
    /// kinds by their kind.
    Route,
    /// `provider/model`, `server/tool`, remote agent or host.
    Target,
    /// `served`, `denied`, `failed`, `cancelled`.
    Outcome,
    /// The reason code (`None` for served calls).
    Reason,
    /// The UTC hour, as its first unix millisecond.
    Hour,
    /// The UTC day, as its first unix millisecond.
    Day,
    /// `agent:run_id`, for rebuilding per-run budget counters.
    AgentRun,
    /// `team:run_id`, likewise.
    TeamRun,
}

impl GroupBy {
    pub fn parse(s: &str) -> Option<GroupBy> {
        Some(match s {
            "agent" => GroupBy::Agent,
            "model" => GroupBy::Model,
            "team" => GroupBy::Team,
            "kind" => GroupBy::Kind,
            "provider" => GroupBy::Provider,
            "route" => GroupBy::Route,
            "target" => GroupBy::Target,
            "outcome" => GroupBy::Outcome,
            "reason" => GroupBy::Reason,
            "hour" => GroupBy::Hour,
            "day" => GroupBy::Day,
            _ => return None,
        })
    }

    fn column(self) -> &'static str {
        // `NULLIF`, as the rollups store a missing value as `''`: an empty name (a model an
        // agent sent as "") and a missing one group together either way.
        match self {
            GroupBy::Agent => "NULLIF(agent, '')",
            GroupBy::Model => "NULLIF(model, '')",
            GroupBy::Team => "NULLIF(team, '')",
            GroupBy::Kind => "kind",
            GroupBy::Provider => "NULLIF(provider, '')",
            GroupBy::Route => rollup::ROUTE,
            GroupBy::Target => "NULLIF(target, '')",
            GroupBy::Outcome => "outcome",
            GroupBy::Reason => "NULLIF(reason, '')",
            GroupBy::Hour => "CAST(ts_ms - ts_ms % 3600000 AS TEXT)",
            GroupBy::Day => "CAST(ts_ms - ts_ms % 86400000 AS TEXT)",
            GroupBy::AgentRun => "agent || ':' || run_id",
            GroupBy::TeamRun => "team || ':' || run_id",
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct EventQuery {
    pub limit: u32,
    /// Only the event of this id.
    pub id: Option<String>,
    pub agent: Option<String>,
    pub kind: Option<String>,
    pub outcome: Option<String>,
    pub reason: Option<String>,
    pub since_ms: Option<u64>,
    /// Only events older than this one (by id): the next page of a listing.
    pub before: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct UsageQuery {
    pub group_by: GroupBy,
    pub since_ms: u64,
    /// Only this agent's calls.
    pub agent: Option<String>,
    /// Only calls of this kind.
    pub kind: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct UsageRow {
    pub key: Option<String>,
    pub requests: u64,
    pub denied: u64,
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub output_tokens: u64,
    pub reasoning_tokens: u64,
    pub cost_nanos: u64,
}

/// An agent key made at run time; only its digest is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredKey {
    pub id: String,
    pub agent: String,
    pub digest: KeyDigest,
    pub created_ms: u64,
    pub revoked_ms: Option<u64>,
}

/// What a ledger backend must do. Methods block: the [`Ledger`] handle calls them from
/// its writer thread or the blocking pool, never from an async task.
pub trait LedgerStore: Send + 'static {
    /// Inserts the events (skipping ids already stored), rolls them up and chains them, in
    /// one transaction; returns the last row it chained, if it inserted any.
    fn append(&mut self, events: &[Event]) -> Result<Option<ChainHead>, LedgerError>;
    fn events(&mut self, q: &EventQuery) -> Result<Vec<Event>, LedgerError>;
    fn usage(&mut self, q: &UsageQuery) -> Result<Vec<UsageRow>, LedgerError>;
    /// Up to `limit` events of `since_ms` or later with their links, in insertion order,
    /// after the one at position `after` (SQLite's rowid, PostgreSQL's seq).
    fn chained_page(
        &mut self,
        after: i64,
        since_ms: u64,
        limit: u32,
    ) -> Result<Vec<chain::ChainedRow>, LedgerError>;
    fn keys(&mut self) -> Result<Vec<StoredKey>, LedgerError>;
    fn insert_key(&mut self, key: &StoredKey) -> Result<(), LedgerError>;
    /// Sets when key `id` stops working; `false` when there is no such key.
    fn revoke_key(&mut self, id: &str, at_ms: u64) -> Result<bool, LedgerError>;
    fn suspensions(&mut self) -> Result<Vec<Suspension>, LedgerError>;
    fn record_alert(&mut self, alert: &AlertRecord) -> Result<(), LedgerError>;
    /// The newest `limit` alerts, newest first.
    fn alerts(&mut self, limit: u32) -> Result<Vec<AlertRecord>, LedgerError>;
    /// Records a suspension, or with `None` lifts the one on `agent`.
    fn set_suspension(
        &mut self,
        agent: &str,
        suspension: Option<&Suspension>,
    ) -> Result<(), LedgerError>;
    /// Takes in one listing of `server`'s tools, in one transaction: a tool seen for the
    /// first time is pinned as approved; a known one whose hash differs from the approved
    /// one becomes pending (or, with `auto_approve`, approved at once); one back at its
    /// approved hash has nothing pending. Returns every pin of `server`, by tool.
    fn observe_tools(
        &mut self,
        server: &str,
        seen: &[SeenTool],
        now_ms: u64,
        auto_approve: bool,
    ) -> Result<Vec<ToolPin>, LedgerError>;
    /// Every pin, by server and tool.
    fn tool_pins(&mut self) -> Result<Vec<ToolPin>, LedgerError>;
    /// Makes the pending definition of `server`'s `tool` the approved one (a pin with
    /// nothing pending is left as it is); `None` when the tool was never seen.
    fn approve_tool(
        &mut self,
        server: &str,
        tool: &str,
        now_ms: u64,
    ) -> Result<Option<ToolPin>, LedgerError>;
    /// After a flush: whatever the store keeps outside its main file (SQLite's write-ahead
    /// log) is folded into it, so a copy of that file alone (a backup, `audit verify` on
    /// it) holds every committed event.
    fn fold_log(&mut self) -> Result<(), LedgerError> {
        Ok(())
    }
}

/// An alert as sent to the webhooks, kept in the ledger beside the calls that caused it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AlertRecord {
    pub ts_ms: u64,
    /// `budget_threshold`, `loop_detected`, `velocity_tripped`, `agent_suspended`.
    pub kind: String,
    pub agent: String,
    pub message: String,
    /// The alert's details as JSON text.
    pub detail: String,
}

/// An agent refused until an operator resumes it, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Suspension {
    pub agent: String,
    pub since_ms: u64,
    pub reason: String,
}

/// Reads an event from a result row through two column readers (text and integer), so
/// every store maps the `events` columns the same way.
fn event_from_columns<E>(
    text: impl Fn(&str) -> Result<Option<String>, E>,
    int: impl Fn(&str) -> Result<Option<i64>, E>,
) -> Result<Event, E> {
    let n = |name: &str| -> Result<u64, E> { Ok(int(name)?.unwrap_or(0).max(0) as u64) };
    let s = |name: &str| -> Result<String, E> { Ok(text(name)?.unwrap_or_default()) };
    Ok(Event {
        id: s("id")?,
        ts_ms: n("ts_ms")?,
        agent: text("agent")?,
        team: text("team")?,
        kind: Kind::parse(&s("kind")?).unwrap_or(Kind::Llm),
        target: text("target")?,
        provider: text("provider")?,
        model: text("model")?,
        operation: s("operation")?,
        status: n("status")? as u16,
        outcome: Outcome::parse(&s("outcome")?).unwrap_or(Outcome::Failed),
        reason: text("reason")?,
        usage: Usage {
            input_tokens: n("input_tokens")?,
            cached_input_tokens: n("cached_input_tokens")?,
            cache_write_tokens: n("cache_write_tokens")?,
            output_tokens: n("output_tokens")?,
            reasoning_tokens: n("reasoning_tokens")?,
        },
        cost_nanos: n("cost_nanos")?,
        latency_ms: n("latency_ms")?,
        upstream_ms: int("upstream_ms")?.map(|v| v.max(0) as u64),
        bytes_in: n("bytes_in")?,
        bytes_out: n("bytes_out")?,
        run_id: text("run_id")?,
        extra: text("extra")?
            .and_then(|e| serde_json::from_str(&e).ok())
            .unwrap_or_default(),
    })
}

fn open_store(url: &str) -> Result<Box<dyn LedgerStore>, LedgerError> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        Ok(Box::new(SqliteStore::open(path)?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Box::new(PostgresStore::open(url)?))
    } else {
        Err(LedgerError::UnsupportedUrl(url.to_string()))
    }
}

/// Events unwritten past which admission waits.
const QUEUE: usize = 8192;

/// Files the ledger keeps outside its database.
#[derive(Clone, Debug, Default)]
pub struct LedgerFiles {
    /// Where a checkpoint is appended after each committed batch (`state.checkpoint`);
    /// none are written without it.
    pub checkpoint: Option<PathBuf>,
    /// Where a flush that the database keeps refusing writes the unwritten events; by
    /// default beside the SQLite file, else beside the checkpoint, else in the working
    /// directory (see [`LedgerFiles::spill_for`]).
    pub spill: Option<PathBuf>,
}

impl LedgerFiles {
    /// The spill file for the ledger at `url`: `<sqlite path>.unwritten.jsonl`, or
    /// `<checkpoint>.unwritten.jsonl`, or `airlock-ledger.unwritten.jsonl`.
    pub fn spill_for(&self, url: &str) -> PathBuf {
        let beside = |path: &Path| {
            let mut name = path.as_os_str().to_owned();
            name.push(".unwritten.jsonl");
            PathBuf::from(name)
        };
        match (&self.spill, url.strip_prefix("sqlite://"), &self.checkpoint) {
            (Some(spill), _, _) => spill.clone(),
            (None, Some(path), _) => beside(Path::new(path)),
            (None, None, Some(checkpoint)) => beside(checkpoint),
            (None, None, None) => PathBuf::from("airlock-ledger.unwritten.jsonl"),
        }
    }
}

/// A cloneable handle on the ledger.
#[derive(Clone)]
pub struct Ledger {
    tx: mpsc::UnboundedSender<Command>,
    queue: Arc<Queue>,
    reader: Arc<Mutex<Box<dyn LedgerStore>>>,
}

impl Ledger {
    /// Opens the ledger at `url` (`sqlite://PATH`, or `postgres://…`/`postgresql://…` for
    /// one shared by replicas), creating and migrating it as needed. The writer and the
    /// reader get a connection each.
    /// Writes no checkpoints; see [`Ledger::open_with`].
    pub fn open(url: &str) -> Result<Ledger, LedgerError> {
        Ledger::open_with(url, LedgerFiles::default())
    }

    /// As [`Ledger::open`], keeping `files` beside the database.
    pub fn open_with(url: &str, files: LedgerFiles) -> Result<Ledger, LedgerError> {
        let writer = open_store(url)?;
        let reader = open_store(url)?;
        let spill = files.spill_for(url);
        let files = (files.checkpoint, spill);
        Ok(Ledger::start(
            writer,
            reader,
            QUEUE,
            files,
            writer::FLUSH_PATIENCE,
        ))
    }

    pub fn with_stores(writer: Box<dyn LedgerStore>, reader: Box<dyn LedgerStore>) -> Ledger {
        Ledger::with_capacity(writer, reader, QUEUE)
    }

    /// As [`Ledger::with_stores`], admitting calls while fewer than `capacity` events are
    /// unwritten.
    pub fn with_capacity(
        writer: Box<dyn LedgerStore>,
        reader: Box<dyn LedgerStore>,
        capacity: usize,
    ) -> Ledger {
        let files = (None, LedgerFiles::default().spill_for(""));
        Ledger::start(writer, reader, capacity, files, writer::FLUSH_PATIENCE)
    }

    /// `files`: the checkpoint file, if any, and the spill file.
    fn start(
        store: Box<dyn LedgerStore>,
        reader: Box<dyn LedgerStore>,
        capacity: usize,
        (checkpoint, spill): (Option<PathBuf>, PathBuf),
        flush_patience: std::time::Duration,
    ) -> Ledger {
        let (tx, rx) = mpsc::unbounded_channel();
        let queue = Arc::new(Queue::new(capacity));
        let writer = writer::Writer {
            store,
            rx,
            queue: queue.clone(),
            checkpoint: checkpoint.map(checkpoint::CheckpointWriter::new),
            spill,
            flush_patience,
            backlog: Default::default(),
        };
        std::thread::Builder::new()
            .name("airlock-ledger".into())
            .spawn(move || writer.run())
            .expect("spawn ledger writer thread");
        Ledger {
            tx,
            queue,
            reader: Arc::new(Mutex::new(reader)),
        }
    }

    /// Admits a call to the ledger, waiting while more events are unwritten than the
    /// queue's capacity: a ledger that falls behind slows admission of new calls
    /// (backpressure). The slot holds no capacity: a call that takes long, or never sends
    /// its body, keeps nobody else out, and recording never waits or drops.
    pub async fn reserve(&self) -> Result<EventSlot, LedgerError> {
        self.queue.admit(&self.tx).await
    }

    /// Waits until every event recorded before this call is written. If the database
    /// refuses every write for `FLUSH_PATIENCE` (10 s) meanwhile, the unwritten events are
    /// written to the spill file instead and the error says how many and where.
    pub async fn flush(&self) -> Result<(), LedgerError> {
        let (ack, done) = oneshot::channel();
        let since = Instant::now();
        self.tx
            .send(Command::Flush { ack, since })
            .map_err(|_| LedgerError::Closed)?;
        done.await.map_err(|_| LedgerError::Closed)?
    }

    /// Events stored in their degraded form since start: each one the database refused
    /// as it was (its log line names it).
    pub fn degraded_events(&self) -> u64 {
        self.queue
            .degraded
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn LedgerStore) -> Result<T, LedgerError> + Send + 'static,
    ) -> Result<T, LedgerError> {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let mut store = reader.lock().unwrap_or_else(|p| p.into_inner());
            f(store.as_mut())
        })
        .await
        .map_err(|_| LedgerError::Closed)?
    }

    pub async fn events(&self, q: EventQuery) -> Result<Vec<Event>, LedgerError> {
        self.read(move |s| s.events(&q)).await
    }

    /// Checks the whole hash chain, and that it reaches every checkpoint in `marks`
    /// (`airlock audit verify`).
    pub async fn audit(
        &self,
        marks: Vec<checkpoint::Mark>,
    ) -> Result<chain::AuditReport, LedgerError> {
        self.read(|s| {
            let mut verifier = chain::Verifier::new(marks);
            let mut after = 0;
            while let Some(page) = next_page(s, &mut after, 0)? {
                if !page.iter().all(|row| verifier.check(row)) {
                    break;
                }
            }
            Ok(verifier.finish())
        })
        .await
    }

    /// Every event since `since_ms` with its links, oldest first, handed to `each` a page
    /// at a time (`airlock audit export`).
    pub async fn export(
        &self,
        since_ms: u64,
        mut each: impl FnMut(&[chain::ChainedRow]) -> Result<(), LedgerError> + Send + 'static,
    ) -> Result<(), LedgerError> {
        self.read(move |s| {
            let mut after = 0;
            while let Some(page) = next_page(s, &mut after, since_ms)? {
                each(&page)?;
            }
            Ok(())
        })
        .await
    }

    pub async fn usage(&self, q: UsageQuery) -> Result<Vec<UsageRow>, LedgerError> {
        self.read(move |s| s.usage(&q)).await
    }

    pub async fn keys(&self) -> Result<Vec<StoredKey>, LedgerError> {
        self.read(|s| s.keys()).await
    }

    pub async fn insert_key(&self, key: StoredKey) -> Result<(), LedgerError> {
        self.read(move |s| s.insert_key(&key)).await
    }

    pub async fn revoke_key(&self, id: String, at_ms: u64) -> Result<bool, LedgerError> {
        self.read(move |s| s.revoke_key(&id, at_ms)).await
    }

    pub async fn suspensions(&self) -> Result<Vec<Suspension>, LedgerError> {
        self.read(|s| s.suspensions()).await
    }

    pub async fn set_suspension(
        &self,
        agent: String,
        suspension: Option<Suspension>,
    ) -> Result<(), LedgerError> {
        self.read(move |s| s.set_suspension(&agent, suspension.as_ref()))
            .await
    }

    pub async fn record_alert(&self, alert: AlertRecord) -> Result<(), LedgerError> {
        self.read(move |s| s.record_alert(&alert)).await
    }

    pub async fn alerts(&self, limit: u32) -> Result<Vec<AlertRecord>, LedgerError> {
        self.read(move |s| s.alerts(limit)).await
    }

    /// See [`LedgerStore::observe_tools`].
    pub async fn observe_tools(
        &self,
        server: String,
        seen: Vec<SeenTool>,
        now_ms: u64,
        auto_approve: bool,
    ) -> Result<Vec<ToolPin>, LedgerError> {
        self.read(move |s| s.observe_tools(&server, &seen, now_ms, auto_approve))
            .await
    }

    pub async fn tool_pins(&self) -> Result<Vec<ToolPin>, LedgerError> {
        self.read(|s| s.tool_pins()).await
    }

    /// See [`LedgerStore::approve_tool`].
    pub async fn approve_tool(
        &self,
        server: String,
        tool: String,
        now_ms: u64,
    ) -> Result<Option<ToolPin>, LedgerError> {
        self.read(move |s| s.approve_tool(&server, &tool, now_ms))
            .await
    }
}

#[cfg(test)]
mod tests;
