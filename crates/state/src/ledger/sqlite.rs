//! The embedded ledger: one SQLite file in WAL mode, so the writer thread and readers
//! never block each other. Schema changes are numbered migrations keyed by `user_version`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::LazyLock;

use airlock_core::Event;
use airlock_core::keys::KeyDigest;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use super::chain::{ChainedRow, GENESIS, link};
use super::checkpoint::ChainHead;
use super::queries::{self, Dialect, Param};
use super::rollup;
use super::{
    AlertRecord, EventQuery, LedgerError, LedgerStore, SeenTool, StoredKey, Suspension, ToolPin,
    UsageQuery, UsageRow, event_from_columns,
};

mod tool_pins;

/// Applied in order; `user_version` records how many have run.
pub(super) const MIGRATIONS: &[&str] = &[
    "CREATE TABLE events (
        id TEXT PRIMARY KEY,
        ts_ms INTEGER NOT NULL,
        agent TEXT, team TEXT,
        kind TEXT NOT NULL,
        target TEXT, provider TEXT, model TEXT,
        operation TEXT NOT NULL,
        status INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        reason TEXT,
        input_tokens INTEGER NOT NULL, cached_input_tokens INTEGER NOT NULL,
        cache_write_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
        reasoning_tokens INTEGER NOT NULL,
        cost_nanos INTEGER NOT NULL,
        latency_ms INTEGER NOT NULL, upstream_ms INTEGER,
        bytes_in INTEGER NOT NULL, bytes_out INTEGER NOT NULL,
        run_id TEXT,
        extra TEXT
     );
     CREATE INDEX events_ts ON events (ts_ms);
     CREATE INDEX events_agent_ts ON events (agent, ts_ms);
     CREATE TABLE agent_keys (
        id TEXT PRIMARY KEY,
        agent TEXT NOT NULL,
        digest TEXT NOT NULL UNIQUE,
        created_ms INTEGER NOT NULL,
        revoked_ms INTEGER
     );",
    "CREATE TABLE suspensions (
        agent TEXT PRIMARY KEY,
        since_ms INTEGER NOT NULL,
        reason TEXT NOT NULL
     );",
    "CREATE TABLE alerts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts_ms INTEGER NOT NULL,
        kind TEXT NOT NULL,
        agent TEXT NOT NULL,
        message TEXT NOT NULL,
        detail TEXT NOT NULL
     );
     CREATE INDEX alerts_ts ON alerts (ts_ms);",
    // `flags` is a JSON array of rule ids.
    "CREATE TABLE tool_pins (
        server TEXT NOT NULL,
        tool TEXT NOT NULL,
        approved_hash TEXT NOT NULL,
        approved_definition TEXT NOT NULL,
        pending_hash TEXT,
        pending_definition TEXT,
        flags TEXT NOT NULL,
        first_seen_ms INTEGER NOT NULL,
        last_seen_ms INTEGER NOT NULL,
        approved_ms INTEGER NOT NULL,
        PRIMARY KEY (server, tool)
     );",
    // The audit hash chain (see `chain`); the index finds the rows still to chain.
    "ALTER TABLE events ADD COLUMN prev_hash TEXT;
     ALTER TABLE events ADD COLUMN hash TEXT;
     CREATE INDEX events_unchained ON events (ts_ms) WHERE hash IS NULL;",
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
        "INTEGER",
        "CREATE INDEX events_kind_ts ON events (kind, ts_ms);
         CREATE INDEX events_outcome_ts ON events (outcome, ts_ms);
         CREATE INDEX events_reason_ts ON events (reason, ts_ms);",
    )
    .into_iter()
    .chain(LATER.iter().map(|m| m.to_string()))
    .collect()
}

/// Rolls up the events past the watermark (see `rollup`).
static ROLL_UP: LazyLock<String> = LazyLock::new(|| rollup::catch_up("rowid"));

const DIALECT: Dialect = Dialect {
    placeholder: |n| format!("?{n}"),
    order: "rowid",
};

fn bind(params: Vec<Param>) -> impl Iterator<Item = rusqlite::types::Value> {
    params.into_iter().map(|p| match p {
        Param::Int(n) => n.into(),
        Param::Text(s) => s.into(),
    })
}

pub struct SqliteStore {
    conn: Connection,
}

impl SqliteStore {
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, LedgerError> {
        let mut conn = Connection::open(path)?;
        // WAL lets readers run beside the writer; NORMAL sync is durable across process
        // crashes (not power loss) and keeps batched commits cheap.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate(&conn)?;
        // Events an earlier binary wrote without rolling them up.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(&ROLL_UP)?;
        tx.commit()?;
        Ok(SqliteStore { conn })
    }
}

fn migrate(conn: &Connection) -> Result<(), LedgerError> {
    let done: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in migrations().iter().enumerate().skip(done as usize) {
        // Two processes may open a fresh file at once: the IMMEDIATE lock serialises them
        // and the version is re-read inside it.
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let now: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if now as usize <= i {
            conn.execute_batch(sql)?;
            conn.pragma_update(None, "user_version", (i + 1) as i64)?;
        }
        conn.execute_batch("COMMIT")?;
    }
    Ok(())
}

/// Links the rows this transaction inserted (at `rowids`, in order) after the last chained
/// one, reading each back as stored; returns the last one's link. Only these: a row found
/// without a link is never taken in later (see `chain`).
fn chain_new_rows(
    tx: &rusqlite::Transaction,
    rowids: &[i64],
) -> Result<Option<ChainHead>, LedgerError> {
    let (Some(&first), Some(&last)) = (rowids.first(), rowids.last()) else {
        return Ok(None);
    };
    let mut prev: String = tx
        .query_row(
            "SELECT hash FROM events WHERE hash IS NOT NULL ORDER BY rowid DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or_else(|| GENESIS.to_owned());
    // The writer holds the database's write lock, so the range holds this transaction's
    // rows only; they are still matched against `rowids` one by one.
    let rows = {
        let mut stmt = tx.prepare_cached(
            "SELECT rowid, * FROM events WHERE rowid BETWEEN ?1 AND ?2 ORDER BY rowid",
        )?;
        let cols = Columns::of(&stmt);
        stmt.query_map([first, last], |r| Ok((r.get::<_, i64>(0)?, cols.event(r)?)))?
            .collect::<Result<Vec<_>, _>>()?
    };
    let mut update =
        tx.prepare_cached("UPDATE events SET prev_hash = ?1, hash = ?2 WHERE rowid = ?3")?;
    let mut head = None;
    for (rowid, event) in rows {
        if rowids.binary_search(&rowid).is_err() {
            continue;
        }
        let hash = link(&prev, &event);
        update.execute(params![prev, hash, rowid])?;
        prev = hash.clone();
        head = Some(ChainHead {
            position: rowid,
            hash,
        });
    }
    Ok(head)
}

/// Where each column of a statement's rows is, read once per statement: rusqlite finds a
/// column by name by comparing it with every name, case-insensitively, for each value read
/// — a tenth of the writer's time when it reads back a batch to chain it.
struct Columns(HashMap<String, usize>);

impl Columns {
    fn of(stmt: &rusqlite::Statement) -> Columns {
        let names = stmt.column_names().map(str::to_owned);
        Columns(names.enumerate().map(|(i, name)| (name, i)).collect())
    }

    fn at(&self, name: &str) -> rusqlite::Result<usize> {
        self.0
            .get(name)
            .copied()
            .ok_or_else(|| rusqlite::Error::InvalidColumnName(name.to_owned()))
    }

    fn event(&self, r: &Row) -> rusqlite::Result<Event> {
        event_from_columns(|c| r.get(self.at(c)?), |c| r.get(self.at(c)?))
    }

    fn chained(&self, r: &Row) -> rusqlite::Result<ChainedRow> {
        Ok(ChainedRow {
            position: r.get(self.at("rowid")?)?,
            event: self.event(r)?,
            prev_hash: r.get(self.at("prev_hash")?)?,
            hash: r.get(self.at("hash")?)?,
        })
    }
}

impl LedgerStore for SqliteStore {
    fn fold_log(&mut self) -> Result<(), LedgerError> {
        // TRUNCATE also empties the -wal file. A reader still busy makes it fold what it
        // can (SQLite reports that as a result row, not an error); the next flush folds the
        // rest.
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    fn append(&mut self, events: &[Event]) -> Result<Option<ChainHead>, LedgerError> {
        let tx = self.conn.transaction()?;
        let mut inserted = Vec::with_capacity(events.len());
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR IGNORE INTO events (id, ts_ms, agent, team, kind, target, provider, model,
                    operation, status, outcome, reason, input_tokens, cached_input_tokens,
                    cache_write_tokens, output_tokens, reasoning_tokens, cost_nanos, latency_ms,
                    upstream_ms, bytes_in, bytes_out, run_id, extra)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                    ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)",
            )?;
            for e in events {
                let extra = (!e.extra.is_empty())
                    .then(|| serde_json::Value::Object(e.extra.clone()).to_string());
                let changed = stmt.execute(params![
                    e.id,
                    e.ts_ms as i64,
                    e.agent,
                    e.team,
                    e.kind.as_str(),
                    e.target,
                    e.provider,
                    e.model,
                    e.operation,
                    e.status as i64,
                    e.outcome.as_str(),
                    e.reason,
                    e.usage.input_tokens as i64,
                    e.usage.cached_input_tokens as i64,
                    e.usage.cache_write_tokens as i64,
                    e.usage.output_tokens as i64,
                    e.usage.reasoning_tokens as i64,
                    e.cost_nanos as i64,
                    e.latency_ms as i64,
                    e.upstream_ms.map(|v| v as i64),
                    e.bytes_in as i64,
                    e.bytes_out as i64,
                    e.run_id,
                    extra,
                ])?;
                // A repeated id is ignored: no row, nothing to chain.
                if changed > 0 {
                    inserted.push(tx.last_insert_rowid());
                }
            }
        }
        tx.execute_batch(&ROLL_UP)?;
        let head = chain_new_rows(&tx, &inserted)?;
        tx.commit()?;
        Ok(head)
    }

    fn chained_page(
        &mut self,
        after: i64,
        since_ms: u64,
        limit: u32,
    ) -> Result<Vec<ChainedRow>, LedgerError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT rowid, * FROM events WHERE rowid > ?1 AND ts_ms >= ?2 ORDER BY rowid LIMIT ?3",
        )?;
        let cols = Columns::of(&stmt);
        let page = stmt
            .query_map(params![after, since_ms as i64, limit], |r| cols.chained(r))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page)
    }

    fn events(&mut self, q: &EventQuery) -> Result<Vec<Event>, LedgerError> {
        let (sql, params) = queries::events(q, &DIALECT);
        let mut stmt = self.conn.prepare(&sql)?;
        let cols = Columns::of(&stmt);
        let rows = stmt.query_map(params_from_iter(bind(params)), |r| cols.event(r))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn usage(&mut self, q: &UsageQuery) -> Result<Vec<UsageRow>, LedgerError> {
        let (sql, params) = queries::usage(q, &DIALECT);
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(bind(params)), |r| {
            let n = |i: usize| -> rusqlite::Result<u64> {
                Ok(r.get::<_, Option<i64>>(i)?.unwrap_or(0) as u64)
            };
            Ok(UsageRow {
                key: r.get(0)?,
                requests: n(1)?,
                denied: n(2)?,
                input_tokens: n(3)?,
                cached_input_tokens: n(4)?,
                output_tokens: n(5)?,
                reasoning_tokens: n(6)?,
                cost_nanos: n(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn keys(&mut self) -> Result<Vec<StoredKey>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, agent, digest, created_ms, revoked_ms FROM agent_keys")?;
        let rows = stmt.query_map([], |r| {
            let digest: String = r.get(2)?;
            Ok((
                r.get(0)?,
                r.get(1)?,
                digest,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<i64>>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, agent, digest, created, revoked): (String, String, String, i64, Option<i64>) =
                row?;
            // A row this build cannot read is skipped rather than failing every lookup.
            if let Ok(digest) = KeyDigest::parse(&digest) {
                out.push(StoredKey {
                    id,
                    agent,
                    digest,
                    created_ms: created as u64,
                    revoked_ms: revoked.map(|v| v as u64),
                });
            }
        }
        Ok(out)
    }

    fn insert_key(&mut self, key: &StoredKey) -> Result<(), LedgerError> {
        self.conn.execute(
            "INSERT INTO agent_keys (id, agent, digest, created_ms, revoked_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![key.id, key.agent, key.digest.to_string(), key.created_ms as i64, key.revoked_ms.map(|v| v as i64)],
        )?;
        Ok(())
    }

    fn revoke_key(&mut self, id: &str, at_ms: u64) -> Result<bool, LedgerError> {
        // An earlier revocation stands: rotating a key twice never extends its life.
        let n = self.conn.execute(
            "UPDATE agent_keys SET revoked_ms = MIN(COALESCE(revoked_ms, ?2), ?2) WHERE id = ?1",
            params![id, at_ms as i64],
        )?;
        Ok(n > 0)
    }

    fn suspensions(&mut self) -> Result<Vec<Suspension>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare("SELECT agent, since_ms, reason FROM suspensions ORDER BY agent")?;
        let rows = stmt.query_map([], |r| {
            Ok(Suspension {
                agent: r.get(0)?,
                since_ms: r.get::<_, i64>(1)? as u64,
                reason: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn set_suspension(
        &mut self,
        agent: &str,
        suspension: Option<&Suspension>,
    ) -> Result<(), LedgerError> {
        match suspension {
            Some(s) => self.conn.execute(
                "INSERT INTO suspensions (agent, since_ms, reason) VALUES (?1, ?2, ?3)
                 ON CONFLICT (agent) DO NOTHING",
                params![agent, s.since_ms as i64, s.reason],
            )?,
            None => self
                .conn
                .execute("DELETE FROM suspensions WHERE agent = ?1", [agent])?,
        };
        Ok(())
    }

    fn record_alert(&mut self, a: &AlertRecord) -> Result<(), LedgerError> {
        self.conn.execute(
            "INSERT INTO alerts (ts_ms, kind, agent, message, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![a.ts_ms as i64, a.kind, a.agent, a.message, a.detail],
        )?;
        Ok(())
    }

    fn alerts(&mut self, limit: u32) -> Result<Vec<AlertRecord>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare("SELECT ts_ms, kind, agent, message, detail FROM alerts ORDER BY ts_ms DESC, id DESC LIMIT ?1")?;
        let rows = stmt.query_map([limit as i64], |r| {
            Ok(AlertRecord {
                ts_ms: r.get::<_, i64>(0)? as u64,
                kind: r.get(1)?,
                agent: r.get(2)?,
                message: r.get(3)?,
                detail: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn observe_tools(
        &mut self,
        server: &str,
        seen: &[SeenTool],
        now_ms: u64,
        auto_approve: bool,
    ) -> Result<Vec<ToolPin>, LedgerError> {
        tool_pins::observe(&mut self.conn, server, seen, now_ms, auto_approve)
    }

    fn tool_pins(&mut self) -> Result<Vec<ToolPin>, LedgerError> {
        tool_pins::all(&self.conn)
    }

    fn approve_tool(
        &mut self,
        server: &str,
        tool: &str,
        now_ms: u64,
    ) -> Result<Option<ToolPin>, LedgerError> {
        tool_pins::approve(&mut self.conn, server, tool, now_ms)
    }
}
