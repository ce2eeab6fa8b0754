//! Every string an event carries is cut to a bound before it is stored, in bytes on a
//! character boundary. Agents choose most of them (a model, a tool, a resource URI, a run
//! id, the values inside `extra`), and one the database refuses would fail its whole
//! batch of everyone's events with it.

use airlock_core::Event;
use serde_json::{Map, Value};

use super::LedgerError;

/// The longest agent, team, provider, model, target, operation, reason or run id the
/// ledger keeps, in UTF-8 bytes, the `…` that marks a cut included.
///
/// PostgreSQL refuses an index entry over 2704 bytes (a third of an 8 KiB page), and wide
/// characters in no pattern do not compress below that. The widest entries hold six of
/// these names: each rollup's primary key (start_ms, then agent, team, kind, provider,
/// model, target, route, outcome, reason) — 6 × 400 = 2400 bytes, plus start_ms (8),
/// kind, route and outcome (under 16 each), ten 4-byte length headers (40) and the tuple
/// header (8): under 2504. `events_ts` (ts_ms, seq, then agent, team, kind, provider,
/// model, run_id, outcome and five BIGINTs) holds five: under 2200.
pub const MAX_NAME_BYTES: usize = 400;

/// The longest string inside `extra` (a value or a key at any depth), in bytes.
pub const MAX_EXTRA_STRING_BYTES: usize = 2048;

/// The most `extra` may take as JSON; past it, whole top-level entries are left out (in
/// order, from the first that does not fit) and `extra_cut` counts them.
pub const MAX_EXTRA_BYTES: usize = 16 * 1024;

/// How long each string of an event stored in its degraded form may be.
const DEGRADED_BYTES: usize = 64;

/// The longest database message kept in a degraded event.
const ERROR_BYTES: usize = 200;

const MARK: &str = "…";

/// `s` cut to at most `max` bytes, ending in `…` when it was cut.
fn cut(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let mut end = max.saturating_sub(MARK.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push_str(MARK);
}

/// Cuts every name to `max` bytes.
fn cut_names(e: &mut Event, max: usize) {
    let names = [
        &mut e.agent,
        &mut e.team,
        &mut e.target,
        &mut e.provider,
        &mut e.model,
        &mut e.reason,
        &mut e.run_id,
    ];
    for name in names.into_iter().flatten() {
        cut(name, max);
    }
    cut(&mut e.operation, max);
}

/// The event as the ledger stores it: every name within [`MAX_NAME_BYTES`], every string
/// of `extra` within [`MAX_EXTRA_STRING_BYTES`], and `extra` within [`MAX_EXTRA_BYTES`].
pub(super) fn bounded(mut e: Event) -> Event {
    cut_names(&mut e, MAX_NAME_BYTES);
    e.extra = bounded_extra(std::mem::take(&mut e.extra));
    e
}

fn bounded_extra(extra: Map<String, Value>) -> Map<String, Value> {
    let extra: Map<String, Value> = extra
        .into_iter()
        .map(|(k, v)| bounded_entry(k, v))
        .collect();
    if Value::Object(extra.clone()).to_string().len() <= MAX_EXTRA_BYTES {
        return extra;
    }
    // Room for `,"extra_cut":N`; each entry costs its JSON, a colon and a comma.
    let mut room = MAX_EXTRA_BYTES - 32;
    let mut kept = Map::new();
    let mut dropped = 0u64;
    for (key, value) in extra {
        let size = Value::String(key.clone()).to_string().len() + value.to_string().len() + 2;
        if dropped == 0 && size <= room {
            room -= size;
            kept.insert(key, value);
        } else {
            dropped += 1;
        }
    }
    kept.insert("extra_cut".into(), dropped.into());
    kept
}

fn bounded_entry(mut key: String, value: Value) -> (String, Value) {
    cut(&mut key, MAX_EXTRA_STRING_BYTES);
    (key, bounded_value(value))
}

fn bounded_value(value: Value) -> Value {
    match value {
        Value::String(mut s) => {
            cut(&mut s, MAX_EXTRA_STRING_BYTES);
            Value::String(s)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(bounded_value).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| bounded_entry(k, v)).collect())
        }
        other => other,
    }
}

/// The form in which an event its store refused on its own is stored, so that the call is
/// still recorded and chained: every string cut hard and `extra` replaced by what the
/// database said (its first line: a `DETAIL` may quote the row).
pub(super) fn degraded(e: &Event, why: &LedgerError) -> Event {
    let mut e = e.clone();
    cut(&mut e.id, DEGRADED_BYTES);
    cut_names(&mut e, DEGRADED_BYTES);
    e.extra = Map::from_iter([("ledger_error".to_string(), Value::String(error_line(why)))]);
    e
}

/// The first line of `e`, bounded: what logs and degraded events show of a refusal.
pub(super) fn error_line(e: &LedgerError) -> String {
    let mut line = e.to_string().lines().next().unwrap_or_default().to_owned();
    cut(&mut line, ERROR_BYTES);
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_ends_on_a_character_boundary_within_the_bound() {
        for (text, max) in [("𝄞𝄞𝄞𝄞", 9), ("ab𝄞", 5), ("short", 5), ("éééé", 6)] {
            let mut s = text.to_owned();
            cut(&mut s, max);
            assert!(s.len() <= max, "{s:?} over {max}");
            assert!(s == text || s.ends_with(MARK), "{s:?}");
        }
    }

    #[test]
    fn extra_is_bounded_at_every_depth_and_as_a_whole() {
        let long = "𝄞".repeat(MAX_EXTRA_STRING_BYTES);
        let mut extra = Map::new();
        extra.insert("intercepted".into(), true.into());
        extra.insert(
            long.clone(),
            serde_json::json!({"deep": [long.clone(), {"k": long}]}),
        );
        for i in 0..20 {
            extra.insert(format!("k{i}"), "x".repeat(1500).into());
        }
        let bounded = bounded_extra(extra);
        let json = Value::Object(bounded.clone()).to_string();
        assert!(json.len() <= MAX_EXTRA_BYTES, "{} bytes", json.len());
        assert_eq!(bounded["intercepted"], true, "the first entries stay");
        assert!(bounded["extra_cut"].as_u64().unwrap() > 0);
        fn longest(v: &Value) -> usize {
            match v {
                Value::String(s) => s.len(),
                Value::Array(a) => a.iter().map(longest).max().unwrap_or(0),
                Value::Object(m) => m
                    .iter()
                    .map(|(k, v)| k.len().max(longest(v)))
                    .max()
                    .unwrap_or(0),
                _ => 0,
            }
        }
        assert!(longest(&Value::Object(bounded)) <= MAX_EXTRA_STRING_BYTES);
    }
}
