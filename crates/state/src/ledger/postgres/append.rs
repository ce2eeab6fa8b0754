//! What an append does after inserting its rows, in the same transaction and under the
//! chain's lock: the new rows are added to the rollups, then linked into the hash chain.
//! Opening a store rolls up the rows an older binary left.

use super::event_from_row;
use crate::ledger::chain::{GENESIS, link};
use crate::ledger::checkpoint::ChainHead;
use crate::ledger::rollup;

/// Rolls up the rows this transaction inserted (at `inserted`, ascending) and any an
/// older binary left, then chains the inserted ones; returns the last one's link.
pub(super) fn settle_new_rows(
    tx: &mut postgres::Transaction,
    inserted: &[i64],
) -> Result<Option<ChainHead>, postgres::Error> {
    roll_up(tx)?;
    chain_new_rows(tx, inserted)
}

/// Adds the events past the watermark to the rollups (see `rollup`) and moves it to the
/// last event. The scan is a range with both ends known (`seq > watermark AND seq <=
/// last`): with one end only, until autovacuum has analyzed the table the planner guesses
/// a third of it matches and walks every row each batch, so the writer slows with every
/// event stored; a closed range it estimates small and reads by the `events_seq` index.
pub(super) fn roll_up(tx: &mut postgres::Transaction) -> Result<(), postgres::Error> {
    let watermark: i64 = tx
        .query_one("SELECT through FROM rollup_state", &[])?
        .get(0);
    let last: Option<i64> = tx.query_one("SELECT MAX(seq) FROM events", &[])?.get(0);
    let Some(last) = last.filter(|&last| last > watermark) else {
        return Ok(());
    };
    tx.batch_execute(&rollup::add_events(&format!(
        "seq > {watermark} AND seq <= {last}"
    )))?;
    tx.execute("UPDATE rollup_state SET through = $1", &[&last])?;
    Ok(())
}

/// Links the rows at `inserted` (this transaction's, ascending) after the last chained
/// one, reading each back as stored. Only these: a row found without a link is never
/// taken in later (see `chain`).
fn chain_new_rows(
    tx: &mut postgres::Transaction,
    inserted: &[i64],
) -> Result<Option<ChainHead>, postgres::Error> {
    let Some(&last) = inserted.last() else {
        return Ok(None);
    };
    let mut prev: String = tx
        .query_opt(
            "SELECT hash FROM events WHERE hash IS NOT NULL ORDER BY seq DESC LIMIT 1",
            &[],
        )?
        .map_or_else(|| GENESIS.to_owned(), |r| r.get(0));
    let rows = tx.query(
        "SELECT * FROM events WHERE seq = ANY($1) ORDER BY seq",
        &[&inserted],
    )?;
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
    Ok(Some(ChainHead {
        position: last,
        hash: prev,
    }))
}
