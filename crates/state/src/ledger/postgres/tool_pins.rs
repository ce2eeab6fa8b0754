//! Tool pins in PostgreSQL, where every replica of the gateway observes the same upstream
//! servers at once. A listing is one transaction: new tools are inserted (`ON CONFLICT DO
//! NOTHING`, so the first replica's first sight stands), then the server's rows are read
//! `FOR UPDATE` and what changed is written back; a replica that comes second waits on
//! those row locks and applies its listing to the first one's result. Rows are always
//! inserted and locked in tool order, so two replicas wait for each other rather than
//! deadlock. Both changes are safe to repeat after a lost connection: applying the same
//! listing or approval twice gives the same pins.

use postgres::{Row, Transaction};

use super::super::tool_pins::{PIN_COLUMNS, by_tool, flags_text, observe_all, pin_from_columns};
use super::super::{LedgerError, SeenTool, ToolPin};
use super::{PostgresStore, text};

pub(super) fn observe(
    store: &mut PostgresStore,
    server: &str,
    seen: &[SeenTool],
    now_ms: u64,
    auto_approve: bool,
) -> Result<Vec<ToolPin>, LedgerError> {
    // Text PostgreSQL cannot hold (U+0000) is stored as U+FFFD, as in events.
    let server = text(server);
    let seen: Vec<SeenTool> = seen
        .iter()
        .map(|s| SeenTool {
            tool: text(&s.tool),
            hash: text(&s.hash),
            definition: text(&s.definition),
            flags: s.flags.clone(),
        })
        .collect();
    let seen = by_tool(&seen);
    let tools: Vec<&str> = seen.keys().copied().collect();
    let hashes: Vec<&str> = seen.values().map(|s| s.hash.as_str()).collect();
    let definitions: Vec<&str> = seen.values().map(|s| s.definition.as_str()).collect();
    let flags: Vec<String> = seen.values().map(|s| flags_text(&s.flags)).collect();
    let now = now_ms as i64;
    let select =
        format!("SELECT {PIN_COLUMNS} FROM tool_pins WHERE server = $1 ORDER BY tool FOR UPDATE");
    store.run(true, |c| {
        let mut tx = c.transaction()?;
        tx.execute(
            "INSERT INTO tool_pins (server, tool, approved_hash, approved_definition, flags,
                first_seen_ms, last_seen_ms, approved_ms)
             SELECT $1::text, u.tool, u.hash, u.definition, u.flags, $6::bigint, $6, $6
             FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[])
                WITH ORDINALITY AS u(tool, hash, definition, flags, n)
             ORDER BY u.n
             ON CONFLICT (server, tool) DO NOTHING",
            &[&server, &tools, &hashes, &definitions, &flags, &now],
        )?;
        let rows = tx.query(&select, &[&server])?;
        let mut pins = rows
            .iter()
            .map(pin_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        save(
            &mut tx,
            &server,
            &observe_all(&mut pins, &seen, now_ms, auto_approve),
        )?;
        tx.commit()?;
        Ok(pins)
    })
}

pub(super) fn all(store: &mut PostgresStore) -> Result<Vec<ToolPin>, LedgerError> {
    let sql = format!("SELECT {PIN_COLUMNS} FROM tool_pins ORDER BY server, tool");
    let rows = store.run(true, |c| c.query(&sql, &[]))?;
    Ok(rows.iter().map(pin_from_row).collect::<Result<_, _>>()?)
}

pub(super) fn approve(
    store: &mut PostgresStore,
    server: &str,
    tool: &str,
    now_ms: u64,
) -> Result<Option<ToolPin>, LedgerError> {
    let (server, tool) = (text(server), text(tool));
    let select =
        format!("SELECT {PIN_COLUMNS} FROM tool_pins WHERE server = $1 AND tool = $2 FOR UPDATE");
    store.run(true, |c| {
        let mut tx = c.transaction()?;
        let Some(row) = tx.query_opt(&select, &[&server, &tool])? else {
            return Ok(None);
        };
        let mut pin = pin_from_row(&row)?;
        if pin.approve(now_ms) {
            save(&mut tx, &server, &[&pin])?;
        }
        tx.commit()?;
        Ok(Some(pin))
    })
}

/// Writes back everything about `server`'s pins that a sight or an approval can change,
/// in one statement whatever their number.
fn save(tx: &mut Transaction, server: &str, pins: &[&ToolPin]) -> Result<(), postgres::Error> {
    if pins.is_empty() {
        return Ok(());
    }
    let tools: Vec<&str> = pins.iter().map(|p| p.tool.as_str()).collect();
    let approved_hashes: Vec<&str> = pins.iter().map(|p| p.approved_hash.as_str()).collect();
    let approved_definitions: Vec<&str> = pins
        .iter()
        .map(|p| p.approved_definition.as_str())
        .collect();
    let pending_hashes: Vec<Option<&str>> =
        pins.iter().map(|p| p.pending_hash.as_deref()).collect();
    let pending_definitions: Vec<Option<&str>> = pins
        .iter()
        .map(|p| p.pending_definition.as_deref())
        .collect();
    let flags: Vec<String> = pins.iter().map(|p| flags_text(&p.flags)).collect();
    let last_seen: Vec<i64> = pins.iter().map(|p| p.last_seen_ms as i64).collect();
    let approved_at: Vec<i64> = pins.iter().map(|p| p.approved_ms as i64).collect();
    tx.execute(
        "UPDATE tool_pins AS p SET approved_hash = u.approved_hash,
            approved_definition = u.approved_definition, pending_hash = u.pending_hash,
            pending_definition = u.pending_definition, flags = u.flags,
            last_seen_ms = u.last_seen_ms, approved_ms = u.approved_ms
         FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::bigint[], $9::bigint[])
            AS u(tool, approved_hash, approved_definition, pending_hash, pending_definition,
                flags, last_seen_ms, approved_ms)
         WHERE p.server = $1 AND p.tool = u.tool",
        &[
            &server,
            &tools,
            &approved_hashes,
            &approved_definitions,
            &pending_hashes,
            &pending_definitions,
            &flags,
            &last_seen,
            &approved_at,
        ],
    )?;
    Ok(())
}

fn pin_from_row(r: &Row) -> Result<ToolPin, postgres::Error> {
    pin_from_columns(|i| r.try_get(i), |i| r.try_get(i))
}
