//! What only the PostgreSQL store has to get right: replicas migrating at once, text it
//! cannot hold, and connections that go away.

use super::super::*;
use super::backends::{TestDb, admin};
use super::event;
use airlock_core::Outcome;

#[test]
fn replicas_starting_together_migrate_once() {
    let db = TestDb::postgres();
    let opened: Vec<_> = std::thread::scope(|s| {
        let opens: Vec<_> = (0..4)
            .map(|_| s.spawn(|| PostgresStore::open(db.url()).map(drop)))
            .collect();
        opens.into_iter().map(|t| t.join().unwrap()).collect()
    });
    for result in opened {
        result.unwrap();
    }
    let TestDb::Postgres { schema, .. } = &db else {
        unreachable!()
    };
    let sql = format!("SELECT COUNT(*), MAX(version) FROM {schema}.airlock_migrations");
    let row = admin(|c| c.query_one(&sql, &[])).unwrap();
    let (count, max): (i64, i32) = (row.get(0), row.get(1));
    assert_eq!(count, i64::from(max), "every migration ran once");
}

#[test]
fn a_nul_in_a_field_does_not_lose_the_batch() {
    let db = TestDb::postgres();
    let mut store = PostgresStore::open(db.url()).unwrap();
    let mut hostile = event("x", 2, "bot", "gpt\0-4", Outcome::Served, 1);
    hostile
        .extra
        .insert("note".into(), serde_json::Value::String("a\0b".into()));
    store
        .append(&[
            event("a", 1, "bot", "m", Outcome::Served, 1),
            hostile.clone(),
        ])
        .unwrap();
    let all = store
        .events(&EventQuery {
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].model.as_deref(), Some("gpt\u{FFFD}-4"));
    assert_eq!(
        all[0].extra, hostile.extra,
        "escaped in JSON, kept as it is"
    );
}

#[test]
fn a_dropped_connection_is_made_again() {
    let db = TestDb::postgres();
    let url = format!("{}&application_name={}", db.url(), "airlock_reconnect_test");
    let mut store = PostgresStore::open(&url).unwrap();
    let killed: i64 = admin(|c| {
        c.query_one(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE application_name = 'airlock_reconnect_test'",
            &[],
        )
    })
    .unwrap()
    .get(0);
    assert_eq!(killed, 1);
    // Reads are safe to repeat: the call that finds the connection gone makes a new one.
    assert_eq!(store.keys().unwrap(), vec![]);
    assert_eq!(store.suspensions().unwrap(), vec![], "and keeps using it");
}

#[test]
fn replicas_observing_tools_at_once_do_not_fail() {
    use super::tool_pins::seen;
    let db = TestDb::postgres();
    PostgresStore::open(db.url()).unwrap();
    const ROUNDS: usize = 40;
    let start = std::sync::Barrier::new(2);
    std::thread::scope(|s| {
        for replica in 0..2 {
            let (db, start) = (&db, &start);
            s.spawn(move || {
                let mut store = PostgresStore::open(db.url()).unwrap();
                start.wait();
                for round in 0..ROUNDS {
                    // Each round brings a tool neither replica has pinned yet; the two list
                    // them in opposite orders and see different versions of one of them.
                    let mut listing: Vec<SeenTool> = (round..round + 5)
                        .map(|t| seen(&format!("t{t:03}"), "v1", &[]))
                        .collect();
                    listing.push(seen("shared", &format!("v{replica}"), &[]));
                    if replica == 1 {
                        listing.reverse();
                    }
                    let pins = store
                        .observe_tools("gh", &listing, round as u64, false)
                        .unwrap_or_else(|e| panic!("replica {replica}, round {round}: {e}"));
                    assert!(pins.len() >= 6);
                    store.approve_tool("gh", "shared", round as u64).unwrap();
                }
            });
        }
    });
    let pins = PostgresStore::open(db.url()).unwrap().tool_pins().unwrap();
    assert_eq!(pins.len(), ROUNDS + 4 + 1, "each tool pinned once");
}

#[test]
fn a_row_postgresql_refuses_is_stored_degraded_and_the_batch_written() {
    // Straight to the writer, past the bounds `EventSlot::record` applies: the row
    // PostgreSQL refuses ("index row requires 12112 bytes") must cost only itself.
    use super::super::queue::{Command, Queue};
    use super::super::writer::{FLUSH_PATIENCE, Writer};
    let db = TestDb::postgres();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..100 {
        let mut e = event(
            &format!("e{i:03}"),
            1_000 + i,
            "bot",
            "m",
            Outcome::Served,
            1,
        );
        if i == 50 {
            e.run_id = Some(super::writer::wide_noise(50, 12 * 1024));
        }
        let event = Box::new(e);
        tx.send(Command::Append {
            event,
            committed: None,
        })
        .unwrap();
    }
    drop(tx);
    let writer = Writer {
        store: Box::new(PostgresStore::open(db.url()).unwrap()),
        rx,
        queue: std::sync::Arc::new(Queue::new(1000)),
        checkpoint: None,
        spill: std::env::temp_dir().join("unused.unwritten.jsonl"),
        flush_patience: FLUSH_PATIENCE,
        backlog: Default::default(),
    };
    // Returns once the channel is empty and closed.
    writer.run();

    let mut store = PostgresStore::open(db.url()).unwrap();
    let all = store
        .events(&EventQuery {
            limit: 1000,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(all.len(), 100, "every event of the batch");
    let degraded = all.iter().find(|e| e.id == "e050").unwrap();
    let error = degraded.extra["ledger_error"].as_str().unwrap();
    assert!(error.contains("index row"), "{error}");
    assert!(degraded.run_id.as_ref().unwrap().len() <= 64);
    let mut verifier = super::super::chain::Verifier::new(vec![]);
    for row in store.chained_page(0, 0, 1000).unwrap() {
        assert!(verifier.check(&row), "chained like the rest");
    }
    assert_eq!(verifier.finish().checked, 100);
}
