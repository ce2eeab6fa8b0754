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
