//! Hourly usage rollups. `usage_hours` holds, per UTC hour and per combination of the
//! dimensions usage is grouped by, the sums over every event. The writer keeps it in the
//! same transaction as the events, from the rows that transaction inserted (the ones not
//! chained yet), so it always agrees with `events`. A usage query reads whole hours from
//! it and only the part-hour at the start of its window from `events`: a month over a
//! million events reads a few thousand rollup rows instead of a million events.
//!
//! The SQL here is written once for both stores: SQLite 3.24+ and PostgreSQL agree on
//! upserts, `CAST` and positional grouping.

use super::GroupBy;

pub const HOUR_MS: u64 = 3_600_000;

/// The dimensions, as stored (`''` for a missing value, so the primary key can match it:
/// NULLs never conflict), then the expressions that fill them from `events`.
const DIMENSIONS: [(&str, &str); 10] = [
    ("hour_ms", "ts_ms - ts_ms % 3600000"),
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

/// The table, with the integer type each store names (`INTEGER`, `BIGINT`). Whole-hour
/// scans walk the primary key; one agent's hours have an index of their own.
pub fn create_table(int: &str) -> String {
    let dims: Vec<String> = DIMENSIONS
        .iter()
        .map(|(name, _)| {
            let ty = if *name == "hour_ms" { int } else { "TEXT" };
            format!("{name} {ty} NOT NULL")
        })
        .collect();
    let measures: Vec<String> = MEASURES
        .iter()
        .map(|(name, _)| format!("{name} {int} NOT NULL"))
        .collect();
    let key: Vec<&str> = DIMENSIONS.iter().map(|(name, _)| *name).collect();
    format!(
        "CREATE TABLE usage_hours ({}, {}, PRIMARY KEY ({}));
         CREATE INDEX usage_hours_agent ON usage_hours (agent, hour_ms);",
        dims.join(", "),
        measures.join(", "),
        key.join(", ")
    )
}

/// Adds the events matching `filter` to their hours: in the writer, the rows it just
/// inserted (`hash IS NULL`); in the migration that made the table, all earlier ones.
pub fn add_events(filter: &str) -> String {
    let columns: Vec<&str> = DIMENSIONS
        .iter()
        .chain(&MEASURES)
        .map(|(name, _)| *name)
        .collect();
    let values: Vec<&str> = DIMENSIONS
        .iter()
        .chain(&MEASURES)
        .map(|(_, expr)| *expr)
        .collect();
    let positions: Vec<String> = (1..=DIMENSIONS.len()).map(|i| i.to_string()).collect();
    let key: Vec<&str> = DIMENSIONS.iter().map(|(name, _)| *name).collect();
    let sums: Vec<String> = MEASURES
        .iter()
        .map(|(name, _)| format!("{name} = usage_hours.{name} + excluded.{name}"))
        .collect();
    format!(
        "INSERT INTO usage_hours ({}) SELECT {} FROM events WHERE {filter} GROUP BY {}
         ON CONFLICT ({}) DO UPDATE SET {}",
        columns.join(", "),
        values.join(", "),
        positions.join(", "),
        key.join(", "),
        sums.join(", ")
    )
}

impl GroupBy {
    /// The grouping over `usage_hours`, or `None` when it needs what the rollup drops.
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
            GroupBy::Hour => "CAST(hour_ms AS TEXT)",
            GroupBy::Day => "CAST(hour_ms - hour_ms % 86400000 AS TEXT)",
            GroupBy::AgentRun | GroupBy::TeamRun => return None,
        })
    }
}
