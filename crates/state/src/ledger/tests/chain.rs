//! The hash chain and the checkpoints: what `airlock audit verify` finds after someone
//! edits, unlinks or deletes rows behind the gateway's back.

use super::super::chain::{AuditReport, Break};
use super::super::checkpoint::{self, MarkSeen};
use super::*;

/// Records each batch and waits for it to be written.
async fn write(ledger: &Ledger, batches: &[&[&str]]) {
    for batch in batches {
        for id in *batch {
            let e = event(id, 5_000, "bot", "m", Outcome::Served, 7);
            ledger.reserve().await.unwrap().record(e);
        }
        ledger.flush().await.unwrap();
    }
}

fn with_checkpoint(db: &TestDb) -> Ledger {
    let files = LedgerFiles {
        checkpoint: Some(db.checkpoint()),
        spill: None,
    };
    Ledger::open_with(db.url(), files).unwrap()
}

pub(super) async fn the_hash_chain_names_the_first_altered_or_missing_event(db: TestDb) {
    let ledger = Ledger::open(db.url()).unwrap();
    write(&ledger, &[&["a", "b", "b"], &["c", "d", "e"]]).await;
    let intact = ledger.audit(vec![]).await.unwrap();
    assert_eq!(
        intact,
        AuditReport {
            checked: 5,
            unchained: 0,
            broken: None,
            checkpoints: vec![],
        },
        "a repeated id is skipped without breaking the chain"
    );

    db.tamper("UPDATE events SET cost_nanos = 0 WHERE id = 'c'");
    let report = ledger.audit(vec![]).await.unwrap();
    assert_eq!(
        report.broken,
        Some(Break::Altered {
            id: "c".into(),
            position: 3
        })
    );
    assert_eq!(report.checked, 2, "nothing after the break is vouched for");

    db.tamper("UPDATE events SET cost_nanos = 7 WHERE id = 'c'; DELETE FROM events WHERE id = 'b'");
    let report = ledger.audit(vec![]).await.unwrap();
    assert_eq!(
        report.broken,
        Some(Break::Missing {
            before: "c".into(),
            position: 2
        })
    );
}

pub(super) async fn rows_whose_links_were_removed_are_never_chained_again(db: TestDb) {
    let ledger = Ledger::open(db.url()).unwrap();
    write(&ledger, &[&["a", "b", "c"]]).await;
    // Someone lowers two costs and removes the links that would show it...
    db.tamper(
        "UPDATE events SET cost_nanos = 0, hash = NULL, prev_hash = NULL WHERE id IN ('b', 'c')",
    );
    // ...and the next write must not vouch for the rows as they are now.
    write(&ledger, &[&["d"]]).await;
    let report = ledger.audit(vec![]).await.unwrap();
    assert_eq!(
        report.broken,
        Some(Break::Unchained {
            id: "b".into(),
            position: 2
        }),
        "{report:?}"
    );
}

pub(super) async fn a_fresh_ledger_with_a_checkpoint_is_intact_and_names_it(db: TestDb) {
    let ledger = with_checkpoint(&db);
    write(&ledger, &[&["a", "b"], &["c"]]).await;
    let marks = checkpoint::read(&db.checkpoint()).unwrap();
    assert_eq!(marks.len(), 2, "one checkpoint a batch");
    let last = marks[1].checkpoint.clone();
    let report = ledger.audit(marks).await.unwrap();
    assert_eq!(report.broken, None);
    assert_eq!(report.checked, 3);
    let [used] = &report.checkpoints[..] else {
        panic!("{report:?}")
    };
    assert_eq!(used.file, db.checkpoint().display().to_string());
    assert_eq!(used.checkpoints, 2);
    assert_eq!(
        used.latest,
        Some(MarkSeen {
            seq: last.seq,
            ts_ms: last.ts_ms,
            line: 2
        })
    );
}

pub(super) async fn deleting_the_last_rows_is_caught_by_the_checkpoint(db: TestDb) {
    let ledger = with_checkpoint(&db);
    write(&ledger, &[&["a", "b", "c"], &["d", "e"]]).await;
    db.tamper("DELETE FROM events WHERE id IN ('d', 'e')");
    let without = ledger.audit(vec![]).await.unwrap();
    assert_eq!(without.broken, None, "the chain alone cannot tell");

    let marks = checkpoint::read(&db.checkpoint()).unwrap();
    let end = marks[1].checkpoint.clone();
    let report = ledger.audit(marks).await.unwrap();
    let Some(Break::Truncated {
        seq,
        ts_ms,
        checkpoint,
        line,
        last_seq,
    }) = report.broken
    else {
        panic!("{report:?}")
    };
    assert_eq!((seq, ts_ms, line), (end.seq, end.ts_ms, 2));
    assert_eq!(checkpoint, db.checkpoint().display().to_string());
    assert!(last_seq.is_some_and(|last| last < seq));

    // The gateway writes on after the deletion: the chain goes on from `c`, whole, but
    // the checkpoint still names a row that is not there.
    write(&ledger, &[&["f"]]).await;
    let marks = checkpoint::read(&db.checkpoint()).unwrap();
    let report = ledger.audit(marks).await.unwrap();
    assert!(
        matches!(
            &report.broken,
            Some(Break::Truncated { seq, .. } | Break::Diverged { seq, .. }) if *seq == end.seq
        ),
        "{report:?}"
    );
}
