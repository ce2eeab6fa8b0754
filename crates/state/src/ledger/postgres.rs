//! The shared ledger: one PostgreSQL database behind every replica of the gateway. Same
//! tables and answers as the SQLite store; schema changes are numbered migrations recorded
//! in `airlock_migrations`, applied under an advisory lock so replicas starting together
//! take turns.
//!
//! Connections are plain TCP (`NoTls`): TLS to the database is a follow-up.

use std::time::Duration;

use airlock_core::Event;
use airlock_core::keys::KeyDigest;
use postgres::error::Severity;
use postgres::types::ToSql;
use postgres::{Client, NoTls, Row};

use super::chain::ChainedRow;
use super::checkpoint::ChainHead;
use super::queries::{self, Dialect, Param};
use super::rollup;
use super::{
    AlertRecord, EventQuery, LedgerError, LedgerStore, SeenTool, StoredKey, Suspension, ToolPin,
    UsageQuery, UsageRow, event_from_columns,
};

mod append;
mod tool_pins;

/// Applied in order, each in the same transaction as its row in `airlock_migrations`. They
/// are numbered like SQLite's so a version means the same tables in both.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE events (
        id TEXT PRIMARY KEY,
        -- Insertion order: breaks ties between events of one millisecond, as SQLite's rowid.
        seq BIGINT GENERATED ALWAYS AS IDENTITY,
        ts_ms BIGINT NOT NULL,
        agent TEXT, team TEXT,
        kind TEXT NOT NULL,
        target TEXT, provider TEXT, model TEXT,
        operation TEXT NOT NULL,
        status INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        reason TEXT,
        input_tokens BIGINT NOT NULL, cached_input_tokens BIGINT NOT NULL,
        cache_write_tokens BIGINT NOT NULL, output_tokens BIGINT NOT NULL,
        reasoning_tokens BIGINT NOT NULL,
        cost_nanos BIGINT NOT NULL,
        latency_ms BIGINT NOT NULL, upstream_ms BIGINT,
        bytes_in BIGINT NOT NULL, bytes_out BIGINT NOT NULL,
        run_id TEXT,
        -- TEXT as in SQLite: it reads back exactly, and unlike JSONB it takes the escaped
        -- U+0000 an agent can put in a field (`extra::jsonb` still works for ad-hoc queries).
        extra TEXT
     );
     -- Newest-first listings walk the key backwards; usage over a time window reads only
     -- this index (an index-only scan): the INCLUDE columns are everything `usage` groups
     -- by (run_id for the per-run groups), filters on and sums.
     CREATE INDEX events_ts ON events (ts_ms, seq) INCLUDE (agent, team, kind, provider,
        model, run_id, outcome, input_tokens, cached_input_tokens, output_tokens,
        reasoning_tokens, cost_nanos);
     -- Listings filtered by agent or by kind, newest first.
     CREATE INDEX events_agent_ts ON events (agent, ts_ms, seq);
     CREATE INDEX events_kind_ts ON events (kind, ts_ms, seq);
     CREATE TABLE agent_keys (
        id TEXT PRIMARY KEY,
        agent TEXT NOT NULL,
        digest TEXT NOT NULL UNIQUE,
        created_ms BIGINT NOT NULL,
        revoked_ms BIGINT
     );",
    "CREATE TABLE suspensions (
        agent TEXT PRIMARY KEY,
        since_ms BIGINT NOT NULL,
        reason TEXT NOT NULL
     );",
    "CREATE TABLE alerts (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        ts_ms BIGINT NOT NULL,
        kind TEXT NOT NULL,
        agent TEXT NOT NULL,
        message TEXT NOT NULL,
        detail TEXT NOT NULL
     );
     CREATE INDEX alerts_ts ON alerts (ts_ms);",
    // Names sort bytewise ("C"), as in SQLite and Rust, whatever the database's locale.
    // `flags` is a JSON array of rule ids.
    "CREATE TABLE tool_pins (
        server TEXT COLLATE \"C\" NOT NULL,
        tool TEXT COLLATE \"C\" NOT NULL,
        approved_hash TEXT NOT NULL,
        approved_definition TEXT NOT NULL,
        pending_hash TEXT,
        pending_definition TEXT,
        flags TEXT NOT NULL,
        first_seen_ms BIGINT NOT NULL,
        last_seen_ms BIGINT NOT NULL,
        approved_ms BIGINT NOT NULL,
        PRIMARY KEY (server, tool)
     );",
    // The audit hash chain (see `chain`); the index finds the rows still to chain.
    "ALTER TABLE events ADD COLUMN prev_hash TEXT, ADD COLUMN hash TEXT;
     CREATE INDEX events_unchained ON events (seq) WHERE hash IS NULL;",
];

/// Migrations after the rollups' (`rollup::after`).
const LATER: &[&str] = &[
    // Appends chain only the rows they insert, found by position: nothing looks for
    // unchained rows any more, and the index cost every insert an update.
    "DROP INDEX IF EXISTS events_unchained;",
];

/// [`MIGRATIONS`], then the rollups, with the indexes behind the dashboard's filtered
/// listings, then [`LATER`].
fn migrations() -> Vec<String> {
    rollup::after(
        MIGRATIONS,
        "BIGINT",
        // `seq` alone: the rollups read the events past their watermark.
        "CREATE INDEX events_outcome_ts ON events (outcome, ts_ms, seq);
         CREATE INDEX events_reason_ts ON events (reason, ts_ms, seq);
         CREATE UNIQUE INDEX events_seq ON events (seq);",
    )
    .into_iter()
    .chain(LATER.iter().map(|m| m.to_string()))
    .collect()
}

const DIALECT: Dialect = Dialect {
    placeholder: |n| format!("${n}"),
    order: "seq",
};

fn bind(params: Vec<Param>) -> Vec<Box<dyn ToSql + Sync>> {
    params
        .into_iter()
        .map(|p| -> Box<dyn ToSql + Sync> {
            match p {
                Param::Int(n) => Box::new(n),
                Param::Text(s) => Box::new(text(&s)),
            }
        })
        .collect()
}

/// The advisory lock that serialises migrations: "airlock" in ASCII.
const MIGRATION_LOCK: i64 = 0x0061_6972_6c6f_636b;
/// The advisory lock that serialises appends across replicas, so the chain has one order:
/// "airchain" in ASCII.
const CHAIN_LOCK: i64 = 0x6169_7263_6861_696e;

/// Event columns sent as one array each; `append` pushes values in this order.
const TEXT_COLUMNS: [&str; 12] = [
    "id",
    "agent",
    "team",
    "kind",
    "target",
    "provider",
    "model",
    "operation",
    "outcome",
    "reason",
    "run_id",
    "extra",
];
const INT_COLUMNS: [&str; 12] = [
    "ts_ms",
    "status",
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cost_nanos",
    "latency_ms",
    "upstream_ms",
    "bytes_in",
    "bytes_out",
];

pub struct PostgresStore {
    config: postgres::Config,
    /// `None` after the connection was lost, until the next call connects again.
    client: Option<Client>,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://…` or `postgresql://…`) and migrates the database.
    pub fn open(url: &str) -> Result<PostgresStore, LedgerError> {
        let mut config: postgres::Config = url.parse()?;
        // Without a timeout an unreachable server holds `airlock serve` at start-up, or the
        // writer on a reconnect, for as long as TCP keeps trying.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        // Lets an operator tell the gateway's sessions apart in `pg_stat_activity`.
        if config.get_application_name().is_none() {
            config.application_name("airlock");
        }
        let client = off_runtime(|| {
            let mut client = config.connect(NoTls)?;
            migrate(&mut client)?;
            // Events an earlier binary (or an older replica) wrote without rolling them up.
            let mut tx = client.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CHAIN_LOCK])?;
            append::roll_up(&mut tx)?;
            tx.commit()?;
            Ok::<_, LedgerError>(client)
        })?;
        Ok(PostgresStore {
            config,
            client: Some(client),
        })
    }

    /// Runs `f` on the connection. When that turns out to be gone (a server restart, a
    /// failover, a reset socket) the connection is dropped and, if `f` is safe to repeat,
    /// run once more on a new one; otherwise the next call connects anew. Only the writer
    /// thread and the blocking pool get here, where blocking is fine.
    fn run<T>(
        &mut self,
        repeatable: bool,
        mut f: impl FnMut(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, LedgerError> {
        let mut tries = if repeatable { 2 } else { 1 };
        loop {
            let mut client = match self.client.take() {
                Some(client) => client,
                None => self.config.connect(NoTls)?,
            };
            tries -= 1;
            match f(&mut client) {
                Err(e) if connection_lost(&e) => {
                    if tries == 0 {
                        return Err(e.into());
                    }
                }
                result => {
                    self.client = Some(client);
                    return Ok(result?);
                }
            }
        }
    }
}

/// Whether `e` means the connection is unusable: anything but an error the server
/// reported for one statement (a constraint, a bad query) while the session goes on.
fn connection_lost(e: &postgres::Error) -> bool {
    e.as_db_error().is_none_or(|db| {
        matches!(
            db.parsed_severity(),
            Some(Severity::Fatal | Severity::Panic)
        )
    })
}

/// Whether `e` is the database's state rather than the rows': the connection, or a
/// statement refused for a reason that passes (SQLSTATE classes 08 connection, 40
/// rollback — serialization, deadlock —, 53 insufficient resources, 57 operator
/// intervention; 25006 a read-only transaction, as on a standby after a failover).
pub(super) fn transient(e: &postgres::Error) -> bool {
    if connection_lost(e) {
        return true;
    }
    e.code().is_some_and(|state| {
        let code = state.code();
        ["08", "40", "53", "57"]
            .iter()
            .any(|class| code.starts_with(class))
            || code == "25006"
    })
}

/// `postgres::Client` drives its own tokio runtime and blocks on it to connect, to query
/// and to close, and tokio panics when that happens on an async worker. Queries only run
/// on the ledger's writer thread and the blocking pool, but `Ledger::open` and the drop of
/// the last `Ledger` clone are usually in async code: those run `f` on a thread of its own.
pub(super) fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(f)
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            off_runtime(move || drop(client));
        }
    }
}

fn migrate(client: &mut Client) -> Result<(), LedgerError> {
    let mut tx = client.transaction()?;
    // Held until commit: a second replica waits here, then finds the work done.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS airlock_migrations (
            version INTEGER PRIMARY KEY,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )?;
    let done: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM airlock_migrations",
            &[],
        )?
        .get(0);
    for (i, sql) in migrations().iter().enumerate().skip(done as usize) {
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO airlock_migrations (version) VALUES ($1)",
            &[&(i as i32 + 1)],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// PostgreSQL text cannot hold U+0000, which an agent can put in a model name; rather
/// than fail the whole batch it is stored as U+FFFD (SQLite keeps it as it is).
fn text(s: &str) -> String {
    s.replace('\0', "\u{FFFD}")
}

fn chained_row(r: &Row) -> Result<ChainedRow, postgres::Error> {
    Ok(ChainedRow {
        position: r.try_get("seq")?,
        event: event_from_row(r)?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

fn event_from_row(r: &Row) -> Result<Event, postgres::Error> {
    // `status` is an INTEGER column, every other number a BIGINT.
    let int = |c: &str| match c {
        "status" => r.try_get::<_, Option<i32>>(c).map(|v| v.map(i64::from)),
        _ => r.try_get::<_, Option<i64>>(c),
    };
    event_from_columns(|c| r.try_get(c), int)
}

impl LedgerStore for PostgresStore {
    fn append(&mut self, events: &[Event]) -> Result<Option<ChainHead>, LedgerError> {
        if events.is_empty() {
            return Ok(None);
        }
        // One array per column and one INSERT … SELECT FROM UNNEST: the batch is a single
        // statement (so a single transaction) whose text and 24 parameters are the same
        // whatever its size, where a VALUES list would need 24 parameters per row.
        let mut texts: [Vec<Option<String>>; 12] = Default::default();
        let mut ints: [Vec<Option<i64>>; 12] = Default::default();
        for e in events {
            let extra = (!e.extra.is_empty())
                .then(|| serde_json::Value::Object(e.extra.clone()).to_string());
            let row_texts = [
                Some(e.id.as_str()),
                e.agent.as_deref(),
                e.team.as_deref(),
                Some(e.kind.as_str()),
                e.target.as_deref(),
                e.provider.as_deref(),
                e.model.as_deref(),
                Some(e.operation.as_str()),
                Some(e.outcome.as_str()),
                e.reason.as_deref(),
                e.run_id.as_deref(),
                extra.as_deref(),
            ];
            let row_ints = [
                Some(e.ts_ms as i64),
                Some(e.status as i64),
                Some(e.usage.input_tokens as i64),
                Some(e.usage.cached_input_tokens as i64),
                Some(e.usage.cache_write_tokens as i64),
                Some(e.usage.output_tokens as i64),
                Some(e.usage.reasoning_tokens as i64),
                Some(e.cost_nanos as i64),
                Some(e.latency_ms as i64),
                e.upstream_ms.map(|v| v as i64),
                Some(e.bytes_in as i64),
                Some(e.bytes_out as i64),
            ];
            for (column, value) in texts.iter_mut().zip(row_texts) {
                column.push(value.map(text));
            }
            for (column, value) in ints.iter_mut().zip(row_ints) {
                column.push(value);
            }
        }
        let arrays = (1..=12)
            .map(|i| format!("${i}::text[]"))
            .chain((13..=24).map(|i| format!("${i}::bigint[]")))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO events ({}, {}) SELECT * FROM UNNEST({arrays}) ON CONFLICT (id) DO NOTHING
             RETURNING seq",
            TEXT_COLUMNS.join(", "),
            INT_COLUMNS.join(", "),
        );
        let params: Vec<&(dyn ToSql + Sync)> = texts
            .iter()
            .map(|c| c as &(dyn ToSql + Sync))
            .chain(ints.iter().map(|c| c as &(dyn ToSql + Sync)))
            .collect();
        // Safe to repeat after a lost connection: rows a lost commit did write are skipped.
        // One transaction: the rows, then their links, under the chain's lock.
        let head = self.run(true, |c| {
            let mut tx = c.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CHAIN_LOCK])?;
            let mut inserted: Vec<i64> = tx
                .query(&sql, &params)?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?;
            inserted.sort_unstable();
            let head = append::settle_new_rows(&mut tx, &inserted)?;
            tx.commit()?;
            Ok(head)
        })?;
        Ok(head)
    }

    fn chained_page(
        &mut self,
        after: i64,
        since_ms: u64,
        limit: u32,
    ) -> Result<Vec<ChainedRow>, LedgerError> {
        let rows = self.run(true, |c| {
            c.query(
                "SELECT * FROM events WHERE seq > $1 AND ts_ms >= $2 ORDER BY seq LIMIT $3",
                &[&after, &(since_ms as i64), &i64::from(limit)],
            )
        })?;
        let page = rows
            .iter()
            .map(chained_row)
            .collect::<Result<Vec<_>, postgres::Error>>()?;
        Ok(page)
    }

    fn events(&mut self, q: &EventQuery) -> Result<Vec<Event>, LedgerError> {
        let (sql, params) = queries::events(q, &DIALECT);
        let args = bind(params);
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_ref()).collect();
        let rows = self.run(true, |c| c.query(&sql, &params))?;
        Ok(rows.iter().map(event_from_row).collect::<Result<_, _>>()?)
    }

    fn usage(&mut self, q: &UsageQuery) -> Result<Vec<UsageRow>, LedgerError> {
        let (sql, params) = queries::usage(q, &DIALECT);
        let args = bind(params);
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_ref()).collect();
        let rows = self.run(true, |c| c.query(&sql, &params))?;
        rows.iter()
            .map(|r| {
                let n = |i: usize| -> Result<u64, postgres::Error> {
                    Ok(r.try_get::<_, i64>(i)? as u64)
                };
                Ok(UsageRow {
                    key: r.try_get(0)?,
                    requests: n(1)?,
                    denied: n(2)?,
                    input_tokens: n(3)?,
                    cached_input_tokens: n(4)?,
                    output_tokens: n(5)?,
                    reasoning_tokens: n(6)?,
                    cost_nanos: n(7)?,
                })
            })
            .collect()
    }

    fn keys(&mut self) -> Result<Vec<StoredKey>, LedgerError> {
        let rows = self.run(true, |c| {
            c.query(
                "SELECT id, agent, digest, created_ms, revoked_ms FROM agent_keys",
                &[],
            )
        })?;
        let mut out = Vec::new();
        for r in rows {
            let digest: String = r.try_get(2)?;
            // A row this build cannot read is skipped rather than failing every lookup.
            if let Ok(digest) = KeyDigest::parse(&digest) {
                out.push(StoredKey {
                    id: r.try_get(0)?,
                    agent: r.try_get(1)?,
                    digest,
                    created_ms: r.try_get::<_, i64>(3)? as u64,
                    revoked_ms: r.try_get::<_, Option<i64>>(4)?.map(|v| v as u64),
                });
            }
        }
        Ok(out)
    }

    fn insert_key(&mut self, key: &StoredKey) -> Result<(), LedgerError> {
        let digest = key.digest.to_string();
        // Not repeated: if the lost attempt did commit, a second would fail on the id and
        // report a stored key as not made.
        self.run(false, |c| {
            c.execute(
                "INSERT INTO agent_keys (id, agent, digest, created_ms, revoked_ms)
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &key.id,
                    &key.agent,
                    &digest,
                    &(key.created_ms as i64),
                    &key.revoked_ms.map(|v| v as i64),
                ],
            )
        })?;
        Ok(())
    }

    fn revoke_key(&mut self, id: &str, at_ms: u64) -> Result<bool, LedgerError> {
        // An earlier revocation stands: rotating a key twice never extends its life.
        // LEAST skips a NULL, so a key not yet revoked takes `at_ms`.
        let n = self.run(true, |c| {
            c.execute(
                "UPDATE agent_keys SET revoked_ms = LEAST(revoked_ms, $2) WHERE id = $1",
                &[&id, &(at_ms as i64)],
            )
        })?;
        Ok(n > 0)
    }

    fn suspensions(&mut self) -> Result<Vec<Suspension>, LedgerError> {
        let rows = self.run(true, |c| {
            c.query(
                "SELECT agent, since_ms, reason FROM suspensions ORDER BY agent",
                &[],
            )
        })?;
        rows.iter()
            .map(|r| {
                Ok(Suspension {
                    agent: r.try_get(0)?,
                    since_ms: r.try_get::<_, i64>(1)? as u64,
                    reason: r.try_get(2)?,
                })
            })
            .collect()
    }

    fn set_suspension(
        &mut self,
        agent: &str,
        suspension: Option<&Suspension>,
    ) -> Result<(), LedgerError> {
        self.run(true, |c| match suspension {
            // The first suspension stands: its time and reason are what an operator sees.
            Some(s) => c.execute(
                "INSERT INTO suspensions (agent, since_ms, reason) VALUES ($1, $2, $3)
                 ON CONFLICT (agent) DO NOTHING",
                &[&agent, &(s.since_ms as i64), &s.reason],
            ),
            None => c.execute("DELETE FROM suspensions WHERE agent = $1", &[&agent]),
        })?;
        Ok(())
    }

    fn record_alert(&mut self, a: &AlertRecord) -> Result<(), LedgerError> {
        self.run(false, |c| {
            c.execute(
                "INSERT INTO alerts (ts_ms, kind, agent, message, detail) VALUES ($1, $2, $3, $4, $5)",
                &[&(a.ts_ms as i64), &a.kind, &a.agent, &a.message, &a.detail],
            )
        })?;
        Ok(())
    }

    fn alerts(&mut self, limit: u32) -> Result<Vec<AlertRecord>, LedgerError> {
        let rows = self.run(true, |c| {
            c.query(
                "SELECT ts_ms, kind, agent, message, detail FROM alerts ORDER BY ts_ms DESC, id DESC LIMIT $1",
                &[&i64::from(limit)],
            )
        })?;
        rows.iter()
            .map(|r| {
                Ok(AlertRecord {
                    ts_ms: r.try_get::<_, i64>(0)? as u64,
                    kind: r.try_get(1)?,
                    agent: r.try_get(2)?,
                    message: r.try_get(3)?,
                    detail: r.try_get(4)?,
                })
            })
            .collect()
    }

    fn observe_tools(
        &mut self,
        server: &str,
        seen: &[SeenTool],
        now_ms: u64,
        auto_approve: bool,
    ) -> Result<Vec<ToolPin>, LedgerError> {
        tool_pins::observe(self, server, seen, now_ms, auto_approve)
    }

    fn tool_pins(&mut self) -> Result<Vec<ToolPin>, LedgerError> {
        tool_pins::all(self)
    }

    fn approve_tool(
        &mut self,
        server: &str,
        tool: &str,
        now_ms: u64,
    ) -> Result<Option<ToolPin>, LedgerError> {
        tool_pins::approve(self, server, tool, now_ms)
    }
}
