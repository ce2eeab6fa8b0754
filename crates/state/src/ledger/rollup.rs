//! Usage rollups. `usage_hours` and `usage_days` hold, per UTC hour and per UTC day, and per
//! combination of the dimensions usage is grouped by, the sums over every event. The writer
//! adds every event past a watermark (`rollup_state.through`, an insertion position) and
//! moves it in the same transaction as its inserts — on PostgreSQL under the chain's lock,
//! which every replica's append takes — so they agree with `events`, the current hour and
//! day included. Events a binary without rollups wrote (an older replica mid-upgrade, or
//! every event before the upgrade) are past the watermark too, and are added by the next
//! append or when a store opens. A usage query reads whole days from `usage_days`, the whole hours
//! before them from `usage_hours`, and only the part-hour at the start of its window from
//! `events`: a month over a million events reads a month of day rows.
//!
//! The SQL here is written once for both stores: SQLite 3.24+ and PostgreSQL agree on
//! upserts, `CAST` and positional grouping.

use super::GroupBy;

pub const HOUR_MS: u64 = 3_600_000;
pub const DAY_MS: u64 = 86_400_000;

/// Each rollup table and the span of its rows.
pub const TABLES: [(&str, u64); 2] = [("usage_hours", HOUR_MS), ("usage_days", DAY_MS)];

/// The dimensions after the row's start (`start_ms`), as stored (`''` for a missing value,
/// so the primary key can match it: NULLs never conflict), and the expressions that fill
/// them from `events`.
const DIMENSIONS: [(&str, &str); 9] = [
    ("agent", "COALESCE(agent, '')"),
    ("team", "COALESCE(team, '')"),
    ("kind", "kind"),
    ("provider", "COALESCE(provider, '')"),
    ("model", "COALESCE(model, '')"),
    ("target", "COALESCE(target, '')"),
    ("route", ROUTE),
    ("outcome", "outcome"),
    ("reason", "COALESCE(reason, '')"),
];

/// The sums, named as in `events` (`requests` counts rows).
const MEASURES: [(&str, &str); 8] = [
    ("requests", "COUNT(*)"),
    ("input_tokens", "SUM(input_tokens)"),
    ("cached_input_tokens", "SUM(cached_input_tokens)"),
    ("cache_write_tokens", "SUM(cache_write_tokens)"),
    ("output_tokens", "SUM(output_tokens)"),
    ("reasoning_tokens", "SUM(reasoning_tokens)"),
    ("cost_nanos", "SUM(cost_nanos)"),
    ("latency_ms", "SUM(latency_ms)"),
];

/// How an LLM call reached its provider (see [`GroupBy::Route`]). `extra` is compact JSON
/// written by Airlock; an agent's text inside it is escaped, so it cannot spell
/// `"intercepted":true` with bare quotes.
pub const ROUTE: &str = "CASE WHEN kind <> 'llm' THEN kind
      WHEN extra LIKE '%\"intercepted\":true%' THEN 'intercepted'
      WHEN extra LIKE '%\"intercepted\":false%' THEN 'recognised'
      ELSE 'base_url' END";

/// Both tables, with the integer type each store names (`INTEGER`, `BIGINT`). Scans of
/// a time window walk the primary key; one agent's rows have an index of their own.
fn create_tables(int: &str) -> String {
    let dims: Vec<String> = DIMENSIONS
        .iter()
        .map(|(name, _)| format!("{name} TEXT NOT NULL"))
        .collect();
    let measures: Vec<String> = MEASURES
        .iter()
        .map(|(name, _)| format!("{name} {int} NOT NULL"))
        .collect();
    let key: Vec<&str> = DIMENSIONS.iter().map(|(name, _)| *name).collect();
    TABLES
        .iter()
        .map(|(table, _)| {
            format!(
                "CREATE TABLE {table} (start_ms {int} NOT NULL, {}, {}, PRIMARY KEY (start_ms, {}));
                 CREATE INDEX {table}_agent ON {table} (agent, start_ms);",
                dims.join(", "),
                measures.join(", "),
                key.join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A store's migrations, `earlier` and then one that makes the rollup tables (with the
/// integer type the store names), fills them from the events already there and adds
/// `indexes`.
pub fn after(earlier: &[&str], int: &str, indexes: &str) -> Vec<String> {
    let mut all: Vec<String> = earlier.iter().map(|m| m.to_string()).collect();
    all.push(format!(
        "{};
         CREATE TABLE rollup_state (id INTEGER PRIMARY KEY, through {int} NOT NULL);
         INSERT INTO rollup_state (id, through) VALUES (1, 0);
         {indexes}",
        create_tables(int),
    ));
    all
}

/// Adds every event past the watermark to both tables and moves the watermark to the last
/// event; `order` is the store's insertion-order column. SQLite's `rowid` makes
/// `rowid > watermark` a key range; PostgreSQL composes its own from the same parts (see
/// `postgres::roll_up`). Runs inside the writer's transaction after its inserts, and once
/// when a store opens.
pub fn catch_up(order: &str) -> String {
    format!(
        "{}
         UPDATE rollup_state SET through = (SELECT COALESCE(MAX({order}), 0) FROM events);",
        add_events(&format!("{order} > (SELECT through FROM rollup_state)"))
    )
}

/// Adds the events matching `filter` to both tables (the caller moves the watermark).
pub fn add_events(filter: &str) -> String {
    let mut columns = vec!["start_ms"];
    columns.extend(DIMENSIONS.iter().chain(&MEASURES).map(|(name, _)| *name));
    let key = columns[..=DIMENSIONS.len()].join(", ");
    let values: Vec<&str> = DIMENSIONS
        .iter()
        .chain(&MEASURES)
        .map(|(_, expr)| *expr)
        .collect();
    let positions: Vec<String> = (1..=DIMENSIONS.len() + 1).map(|i| i.to_string()).collect();
    TABLES
        .iter()
        .map(|(table, span)| {
            let sums: Vec<String> = MEASURES
                .iter()
                .map(|(name, _)| format!("{name} = {table}.{name} + excluded.{name}"))
                .collect();
            format!(
                "INSERT INTO {table} ({}) SELECT ts_ms - ts_ms % {span}, {} FROM events
                 WHERE {filter} GROUP BY {}
                 ON CONFLICT ({key}) DO UPDATE SET {};",
                columns.join(", "),
                values.join(", "),
                positions.join(", "),
                sums.join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A rollup row's UTC day, as grouping keys are text.
const DAY_OF_START: &str = "CAST(start_ms - start_ms % 86400000 AS TEXT)";

impl GroupBy {
    /// The grouping over a rollup table, or `None` when it needs what the rollups drop.
    pub(super) fn rollup_column(self) -> Option<&'static str> {
        Some(match self {
            GroupBy::Agent => "NULLIF(agent, '')",
            GroupBy::Model => "NULLIF(model, '')",
            GroupBy::Team => "NULLIF(team, '')",
            GroupBy::Kind => "kind",
            GroupBy::Provider => "NULLIF(provider, '')",
            GroupBy::Target => "NULLIF(target, '')",
            GroupBy::Outcome => "outcome",
            GroupBy::Reason => "NULLIF(reason, '')",
            GroupBy::Route => "route",
            GroupBy::Hour => "CAST(start_ms AS TEXT)",
            GroupBy::Day => DAY_OF_START,
            GroupBy::AgentRun | GroupBy::TeamRun => return None,
        })
    }
}
