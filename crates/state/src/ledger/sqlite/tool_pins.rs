//! Tool pins in SQLite. Each change runs in an IMMEDIATE transaction: it takes the
//! write lock before reading, so two processes on one file apply their listings one after
//! the other instead of one overwriting what the other read.

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::super::tool_pins::{PIN_COLUMNS, by_tool, flags_text, observe_all, pin_from_columns};
use super::super::{LedgerError, SeenTool, ToolPin};

pub(super) fn observe(
    conn: &mut Connection,
    server: &str,
    seen: &[SeenTool],
    now_ms: u64,
    auto_approve: bool,
) -> Result<Vec<ToolPin>, LedgerError> {
    let seen = by_tool(seen);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO tool_pins (server, tool, approved_hash, approved_definition, flags,
                first_seen_ms, last_seen_ms, approved_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?6)
             ON CONFLICT (server, tool) DO NOTHING",
        )?;
        for s in seen.values() {
            insert.execute(params![
                server,
                s.tool,
                s.hash,
                s.definition,
                flags_text(&s.flags),
                now_ms as i64
            ])?;
        }
    }
    let mut pins = of_server(&tx, server)?;
    for pin in observe_all(&mut pins, &seen, now_ms, auto_approve) {
        save(&tx, pin)?;
    }
    tx.commit()?;
    Ok(pins)
}

pub(super) fn all(conn: &Connection) -> Result<Vec<ToolPin>, LedgerError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {PIN_COLUMNS} FROM tool_pins ORDER BY server, tool"
    ))?;
    let rows = stmt.query_map([], pin_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn approve(
    conn: &mut Connection,
    server: &str,
    tool: &str,
    now_ms: u64,
) -> Result<Option<ToolPin>, LedgerError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let pin = tx
        .query_row(
            &format!("SELECT {PIN_COLUMNS} FROM tool_pins WHERE server = ?1 AND tool = ?2"),
            [server, tool],
            pin_from_row,
        )
        .optional()?;
    let Some(mut pin) = pin else {
        return Ok(None);
    };
    if pin.approve(now_ms) {
        save(&tx, &pin)?;
    }
    tx.commit()?;
    Ok(Some(pin))
}

fn of_server(conn: &Connection, server: &str) -> Result<Vec<ToolPin>, LedgerError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {PIN_COLUMNS} FROM tool_pins WHERE server = ?1 ORDER BY tool"
    ))?;
    let rows = stmt.query_map([server], pin_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Writes back everything about a pin that a sight or an approval can change.
fn save(conn: &Connection, pin: &ToolPin) -> Result<(), LedgerError> {
    conn.prepare_cached(
        "UPDATE tool_pins SET approved_hash = ?3, approved_definition = ?4, pending_hash = ?5,
            pending_definition = ?6, flags = ?7, last_seen_ms = ?8, approved_ms = ?9
         WHERE server = ?1 AND tool = ?2",
    )?
    .execute(params![
        pin.server,
        pin.tool,
        pin.approved_hash,
        pin.approved_definition,
        pin.pending_hash,
        pin.pending_definition,
        flags_text(&pin.flags),
        pin.last_seen_ms as i64,
        pin.approved_ms as i64,
    ])?;
    Ok(())
}

fn pin_from_row(r: &Row) -> rusqlite::Result<ToolPin> {
    pin_from_columns(|i| r.get(i), |i| r.get(i))
}
