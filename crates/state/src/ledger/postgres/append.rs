//! What an append does after inserting its rows, in the same transaction and under the
//! chain's lock: the new rows are added to the rollups, then linked into the hash chain.
//! Opening a store does the same for rows an older binary left.

use std::sync::LazyLock;

use super::event_from_row;
use crate::ledger::chain::{GENESIS, link};
use crate::ledger::rollup;

/// Rolls the new rows up, then chains them: a row rolled up is never found unchained by
/// the next append, so it is never counted twice.
pub(super) fn settle_new_rows(tx: &mut postgres::Transaction) -> Result<(), postgres::Error> {
    roll_up(tx)?;
    chain_new_rows(tx)
}

/// Rolls up this batch's events: the ones not chained yet, found by the partial index.
static ROLL_UP_NEW: LazyLock<String> = LazyLock::new(|| rollup::add_events("hash IS NULL"));

/// Adds the events past the watermark to the rollups (see `rollup`) and moves it, in the
/// append's transaction before the new rows are chained. A `seq > watermark` scan would
/// read all the table: until autovacuum has analyzed it, the planner guesses a third of it
/// matches, walks every row each batch, and the writer slows with every event stored. So
/// this batch's rows come by the chain's partial index, and only rows an older replica
/// chained without rolling up — there are some when the last chained row is past the
/// watermark — by a range between the two known positions.
fn roll_up(tx: &mut postgres::Transaction) -> Result<(), postgres::Error> {
    let watermark: i64 = tx
        .query_one("SELECT through FROM rollup_state", &[])?
        .get(0);
    let chained: Option<i64> = tx
        .query_opt(
            "SELECT seq FROM events WHERE hash IS NOT NULL ORDER BY seq DESC LIMIT 1",
            &[],
        )?
        .map(|r| r.get(0));
    if let Some(last) = chained.filter(|&last| last > watermark) {
        tx.batch_execute(&rollup::add_events(&format!(
            "seq > {watermark} AND seq <= {last} AND hash IS NOT NULL"
        )))?;
    }
    tx.batch_execute(&ROLL_UP_NEW)?;
    tx.batch_execute("UPDATE rollup_state SET through = (SELECT COALESCE(MAX(seq), 0) FROM events)")
}

/// Links the rows this transaction inserted (and any left unchained) after the last
/// chained one, reading each back as stored.
fn chain_new_rows(tx: &mut postgres::Transaction) -> Result<(), postgres::Error> {
    let mut prev: String = tx
        .query_opt(
            "SELECT hash FROM events WHERE hash IS NOT NULL ORDER BY seq DESC LIMIT 1",
            &[],
        )?
        .map_or_else(|| GENESIS.to_owned(), |r| r.get(0));
    let rows = tx.query("SELECT * FROM events WHERE hash IS NULL ORDER BY seq", &[])?;
    let (mut seqs, mut prevs, mut hashes) = (Vec::new(), Vec::new(), Vec::new());
    for row in &rows {
        let hash = link(&prev, &event_from_row(row)?);
        seqs.push(row.try_get::<_, i64>("seq")?);
        prevs.push(std::mem::replace(&mut prev, hash.clone()));
        hashes.push(hash);
    }
    // One statement for the batch: a round trip per row held the chain's lock (and every
    // replica's appends) for as long as 512 round trips take.
    tx.execute(
        "UPDATE events SET prev_hash = u.prev_hash, hash = u.hash
         FROM UNNEST($1::bigint[], $2::text[], $3::text[]) AS u(seq, prev_hash, hash)
         WHERE events.seq = u.seq",
        &[&seqs, &prevs, &hashes],
    )?;
    Ok(())
}
