//! The listing and usage queries, written once for both stores; only the placeholders
//! (`?N`, `$N`) and the column that orders rows inserted in one millisecond (SQLite's
//! `rowid`, PostgreSQL's `seq`) differ.

use super::rollup::HOUR_MS;
use super::{EventQuery, UsageQuery};

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

/// Usage over `q`'s window, grouped. Whole hours come from the rollup, the part-hour
/// before them from `events`; groupings the rollup can't answer (per run) read `events`
/// alone.
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
            let whole_hours = q.since_ms.div_ceil(HOUR_MS) * HOUR_MS;
            let cut = p.push(Param::Int(whole_hours as i64));
            format!(
                "{}
                 UNION ALL
                 SELECT {column} AS key, SUM(requests) AS requests,
                    SUM(CASE WHEN outcome = 'denied' THEN requests ELSE 0 END) AS denied,
                    SUM(input_tokens), SUM(cached_input_tokens), SUM(output_tokens),
                    SUM(reasoning_tokens), SUM(cost_nanos)
                 FROM usage_hours WHERE hour_ms >= {cut}{filters} GROUP BY 1",
                from_events(&format!(" AND ts_ms < {cut}"))
            )
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
