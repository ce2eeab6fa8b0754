//! The listing and usage queries, written once for both stores; only the placeholders
//! (`?N`, `$N`) and the column that orders rows inserted in one millisecond (SQLite's
//! `rowid`, PostgreSQL's `seq`) differ.

use super::rollup::{DAY_MS, HOUR_MS};
use super::{EventQuery, GroupBy, UsageQuery};

/// How a store writes placeholder `n` and names its insertion-order column.
pub struct Dialect {
    pub placeholder: fn(usize) -> String,
    pub order: &'static str,
}

/// A query parameter, for either store to bind.
#[derive(Clone, Debug, PartialEq)]
pub enum Param {
    Int(i64),
    Text(String),
}

/// Collects parameters and writes their placeholders.
struct Params<'d> {
    dialect: &'d Dialect,
    list: Vec<Param>,
}

impl Params<'_> {
    fn push(&mut self, p: Param) -> String {
        self.list.push(p);
        (self.dialect.placeholder)(self.list.len())
    }
}

/// Events matching `q`, newest first. `before` continues a listing by keyset (the named
/// event's time and insertion order), so a deep page costs what the first one does.
pub fn events(q: &EventQuery, dialect: &Dialect) -> (String, Vec<Param>) {
    let order = dialect.order;
    let mut p = Params {
        dialect,
        list: Vec::new(),
    };
    let mut sql = String::from("SELECT * FROM events WHERE 1=1");
    for (column, value) in [
        ("id", &q.id),
        ("agent", &q.agent),
        ("kind", &q.kind),
        ("outcome", &q.outcome),
        ("reason", &q.reason),
    ] {
        if let Some(value) = value {
            let at = p.push(Param::Text(value.clone()));
            sql.push_str(&format!(" AND {column} = {at}"));
        }
    }
    if let Some(since) = q.since_ms {
        let at = p.push(Param::Int(since as i64));
        sql.push_str(&format!(" AND ts_ms >= {at}"));
    }
    if let Some(before) = &q.before {
        let at = p.push(Param::Text(before.clone()));
        sql.push_str(&format!(
            " AND (ts_ms, {order}) < (SELECT ts_ms, {order} FROM events WHERE id = {at})"
        ));
    }
    let at = p.push(Param::Int(i64::from(q.limit)));
    sql.push_str(&format!(" ORDER BY ts_ms DESC, {order} DESC LIMIT {at}"));
    (sql, p.list)
}

/// Usage over `q`'s window, grouped. Whole days come from the day rollup, whole hours
/// before them from the hour rollup, the part-hour before those from `events` (see
/// `rollup`); groupings the rollups can't answer (per run) read `events` alone.
pub fn usage(q: &UsageQuery, dialect: &Dialect) -> (String, Vec<Param>) {
    let mut p = Params {
        dialect,
        list: Vec::new(),
    };
    let since = p.push(Param::Int(q.since_ms as i64));
    let mut filters = String::new();
    for (column, value) in [("agent", &q.agent), ("kind", &q.kind)] {
        if let Some(value) = value {
            let at = p.push(Param::Text(value.clone()));
            filters.push_str(&format!(" AND {column} = {at}"));
        }
    }
    let from_events = |bound: &str| {
        format!(
            "SELECT {} AS key, COUNT(*) AS requests,
                SUM(CASE WHEN outcome = 'denied' THEN 1 ELSE 0 END) AS denied,
                SUM(input_tokens) AS input_tokens, SUM(cached_input_tokens) AS cached_input_tokens,
                SUM(output_tokens) AS output_tokens, SUM(reasoning_tokens) AS reasoning_tokens,
                SUM(cost_nanos) AS cost_nanos
             FROM events WHERE ts_ms >= {since}{bound}{filters} GROUP BY 1",
            q.group_by.column()
        )
    };
    let parts = match q.group_by.rollup_column() {
        None => from_events(""),
        Some(column) => {
            let hours_from = q.since_ms.div_ceil(HOUR_MS) * HOUR_MS;
            // Hour buckets can't come from day rows.
            let days_from = match q.group_by {
                GroupBy::Hour => None,
                _ => Some(q.since_ms.div_ceil(DAY_MS) * DAY_MS),
            };
            let hours_at = p.push(Param::Int(hours_from as i64));
            let days_at = days_from.map(|d| p.push(Param::Int(d as i64)));
            let rolled = |table: &str, window: &str| {
                format!(
                    "SELECT {column} AS key, SUM(requests) AS requests,
                        SUM(CASE WHEN outcome = 'denied' THEN requests ELSE 0 END) AS denied,
                        SUM(input_tokens), SUM(cached_input_tokens), SUM(output_tokens),
                        SUM(reasoning_tokens), SUM(cost_nanos)
                     FROM {table} WHERE {window}{filters} GROUP BY 1"
                )
            };
            let mut parts = vec![from_events(&format!(" AND ts_ms < {hours_at}"))];
            match days_at {
                None => parts.push(rolled("usage_hours", &format!("start_ms >= {hours_at}"))),
                Some(days_at) => {
                    parts.push(rolled(
                        "usage_hours",
                        &format!("start_ms >= {hours_at} AND start_ms < {days_at}"),
                    ));
                    parts.push(rolled("usage_days", &format!("start_ms >= {days_at}")));
                }
            }
            parts.join(" UNION ALL ")
        }
    };
    let sums: Vec<String> = [
        "requests",
        "denied",
        "input_tokens",
        "cached_input_tokens",
        "output_tokens",
        "reasoning_tokens",
        "cost_nanos",
    ]
    .iter()
    .map(|c| format!("CAST(SUM({c}) AS BIGINT)"))
    .collect();
    let sql = format!(
        "SELECT key, {} FROM ({parts}) AS u GROUP BY key
         ORDER BY SUM(cost_nanos) DESC, SUM(requests) DESC, key",
        sums.join(", ")
    );
    (sql, p.list)
}
