//! The queue and the writer: admission waits only while the queue is over its capacity,
//! recording never waits, and no event is dropped — not for a database that is down for a
//! while, nor for a row it refuses, nor at a shutdown it never comes back for.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::super::chain::ChainedRow;
use super::super::checkpoint::ChainHead;
use super::*;

/// What a [`Scripted`] store does, shared with the test that scripts it.
#[derive(Clone, Default)]
pub(super) struct Script {
    /// While false, appends wait.
    open: Arc<(Mutex<bool>, Condvar)>,
    /// Appends still to fail as a database that is down does.
    down_for: Arc<AtomicUsize>,
    appends: Arc<AtomicUsize>,
    written: Arc<Mutex<Vec<Event>>>,
}

impl Script {
    fn open() -> Script {
        let script = Script::default();
        script.let_through();
        script
    }

    fn down_for(appends: usize) -> Script {
        let script = Script::open();
        script.down_for.store(appends, Ordering::SeqCst);
        script
    }

    fn let_through(&self) {
        let (open, changed) = &*self.open;
        *open.lock().unwrap() = true;
        changed.notify_all();
    }

    fn written(&self) -> Vec<Event> {
        self.written.lock().unwrap().clone()
    }

    /// A ledger writing to this store, admitting calls while fewer than `capacity` events
    /// are unwritten.
    fn ledger(&self, capacity: usize) -> Ledger {
        Ledger::with_capacity(
            Box::new(Scripted(self.clone())),
            Box::new(Scripted(Script::open())),
            capacity,
        )
    }
}

/// A store in memory whose appends wait, fail or refuse as its [`Script`] says. An event
/// with `poison` in `extra` makes its batch refused for its rows.
pub(super) struct Scripted(Script);

fn sqlite_error(code: std::os::raw::c_int, message: &str) -> LedgerError {
    LedgerError::Sqlite(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(code),
        Some(message.into()),
    ))
}

impl LedgerStore for Scripted {
    fn append(&mut self, events: &[Event]) -> Result<Option<ChainHead>, LedgerError> {
        let (open, changed) = &*self.0.open;
        let guard = open.lock().unwrap();
        drop(changed.wait_while(guard, |open| !*open).unwrap());
        self.0.appends.fetch_add(1, Ordering::SeqCst);
        let down = self.0.down_for.load(Ordering::SeqCst);
        if down > 0 {
            self.0.down_for.store(down - 1, Ordering::SeqCst);
            return Err(sqlite_error(
                rusqlite::ffi::SQLITE_BUSY,
                "database is locked",
            ));
        }
        if events.iter().any(|e| e.extra.contains_key("poison")) {
            return Err(sqlite_error(
                rusqlite::ffi::SQLITE_TOOBIG,
                "string or blob too big",
            ));
        }
        self.0.written.lock().unwrap().extend_from_slice(events);
        Ok(None)
    }
    fn events(&mut self, _: &EventQuery) -> Result<Vec<Event>, LedgerError> {
        Ok(Vec::new())
    }
    fn usage(&mut self, _: &UsageQuery) -> Result<Vec<UsageRow>, LedgerError> {
        Ok(Vec::new())
    }
    fn chained_page(&mut self, _: i64, _: u64, _: u32) -> Result<Vec<ChainedRow>, LedgerError> {
        Ok(Vec::new())
    }
    fn keys(&mut self) -> Result<Vec<StoredKey>, LedgerError> {
        Ok(Vec::new())
    }
    fn insert_key(&mut self, _: &StoredKey) -> Result<(), LedgerError> {
        Ok(())
    }
    fn revoke_key(&mut self, _: &str, _: u64) -> Result<bool, LedgerError> {
        Ok(false)
    }
    fn suspensions(&mut self) -> Result<Vec<Suspension>, LedgerError> {
        Ok(Vec::new())
    }
    fn set_suspension(&mut self, _: &str, _: Option<&Suspension>) -> Result<(), LedgerError> {
        Ok(())
    }
    fn record_alert(&mut self, _: &AlertRecord) -> Result<(), LedgerError> {
        Ok(())
    }
    fn alerts(&mut self, _: u32) -> Result<Vec<AlertRecord>, LedgerError> {
        Ok(Vec::new())
    }
    fn observe_tools(
        &mut self,
        _: &str,
        _: &[SeenTool],
        _: u64,
        _: bool,
    ) -> Result<Vec<ToolPin>, LedgerError> {
        Ok(Vec::new())
    }
    fn tool_pins(&mut self) -> Result<Vec<ToolPin>, LedgerError> {
        Ok(Vec::new())
    }
    fn approve_tool(&mut self, _: &str, _: &str, _: u64) -> Result<Option<ToolPin>, LedgerError> {
        Ok(None)
    }
}

fn call(i: usize) -> Event {
    event(&i.to_string(), 1_000, "bot", "m", Outcome::Served, 1)
}

fn ids(events: &[Event]) -> Vec<String> {
    events.iter().map(|e| e.id.clone()).collect()
}

fn numbered(n: usize) -> Vec<String> {
    (0..n).map(|i| i.to_string()).collect()
}

const SOON: Duration = Duration::from_millis(100);

#[tokio::test]
async fn calls_in_flight_hold_no_room_in_the_queue() {
    // An agent that never sends its body holds its slot for as long as it likes; with
    // N + 100 such calls the next one is still admitted at once.
    const N: usize = 4;
    let script = Script::open();
    let ledger = script.ledger(N);
    let mut slots = Vec::new();
    for i in 0..N + 100 {
        let admitted = tokio::time::timeout(SOON, ledger.reserve()).await;
        slots.push(
            admitted
                .unwrap_or_else(|_| panic!("call {i} waited"))
                .unwrap(),
        );
    }
    for (i, slot) in slots.into_iter().enumerate() {
        slot.record(call(i));
    }
    ledger.flush().await.unwrap();
    assert_eq!(ids(&script.written()), numbered(N + 100));
}

#[tokio::test]
async fn admission_waits_while_the_queue_is_over_capacity_and_resumes_as_it_drains() {
    const N: usize = 4;
    let script = Script::default();
    let ledger = script.ledger(N);
    for i in 0..N {
        ledger.reserve().await.unwrap().record(call(i));
    }
    let next = tokio::spawn({
        let ledger = ledger.clone();
        async move { ledger.reserve().await.map(|slot| slot.record(call(N))) }
    });
    tokio::time::sleep(SOON).await;
    assert!(!next.is_finished(), "{N} events unwritten: admission waits");
    script.let_through();
    tokio::time::timeout(Duration::from_secs(5), next)
        .await
        .expect("admitted once the writer drained")
        .unwrap()
        .unwrap();
    ledger.flush().await.unwrap();
    assert_eq!(ids(&script.written()), numbered(N + 1));
}

#[tokio::test]
async fn a_database_down_for_a_while_loses_nothing() {
    let script = Script::down_for(3);
    let ledger = script.ledger(64);
    for i in 0..50 {
        ledger.reserve().await.unwrap().record(call(i));
    }
    ledger.flush().await.unwrap();
    assert_eq!(
        ids(&script.written()),
        numbered(50),
        "all of them, in order"
    );
    assert!(script.appends.load(Ordering::SeqCst) > 3);
    assert_eq!(
        ledger.degraded_events(),
        0,
        "a database down is no row's fault"
    );
}

#[tokio::test]
async fn a_row_the_store_refuses_is_stored_degraded_and_the_rest_written() {
    let script = Script::open();
    let ledger = script.ledger(64);
    let mut sent = Vec::new();
    for i in 0..20 {
        let mut e = call(i);
        if i == 13 {
            e.extra.insert("poison".into(), true.into());
            e.model = Some("𝄞".repeat(100));
        }
        sent.push(e.clone());
        ledger.reserve().await.unwrap().record(e);
    }
    ledger.flush().await.unwrap();
    let written = script.written();
    assert_eq!(ids(&written), numbered(20), "every row, in order");
    for (stored, sent) in written.iter().zip(&sent) {
        if stored.id != "13" {
            assert_eq!(stored, sent, "the others as they were");
        }
    }
    let degraded = &written[13];
    assert_eq!(
        serde_json::Value::Object(degraded.extra.clone()),
        serde_json::json!({"ledger_error": "ledger database: string or blob too big"})
    );
    assert!(degraded.model.as_ref().unwrap().len() <= 64);
    assert_eq!(ledger.degraded_events(), 1);
}

#[tokio::test]
async fn record_committed_resolves_only_after_the_commit() {
    let script = Script::default();
    let ledger = script.ledger(64);
    let committed = tokio::spawn(ledger.reserve().await.unwrap().record_committed(call(0)));
    tokio::time::sleep(SOON).await;
    assert!(!committed.is_finished(), "the store has not written it yet");
    script.let_through();
    tokio::time::timeout(Duration::from_secs(5), committed)
        .await
        .expect("resolved once committed")
        .unwrap()
        .unwrap();
    assert_eq!(
        ids(&script.written()),
        numbered(1),
        "after the append returned"
    );
}

#[tokio::test]
async fn a_flush_the_database_never_answers_spills_the_events_to_a_file() {
    let dir = std::env::temp_dir().join(format!("airlock-spill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let spill = dir.join("ledger.db.unwritten.jsonl");
    let script = Script::down_for(usize::MAX);
    let ledger = Ledger::start(
        Box::new(Scripted(script.clone())),
        Box::new(Scripted(Script::open())),
        64,
        (None, spill.clone()),
        Duration::from_millis(300),
    );
    let mut committed = Vec::new();
    for i in 0..5 {
        let slot = ledger.reserve().await.unwrap();
        committed.push(tokio::spawn(slot.record_committed(call(i))));
    }
    let err = ledger.flush().await.unwrap_err();
    assert!(
        matches!(&err, LedgerError::Unwritten { events: 5, spill: Some(path) } if *path == spill),
        "{err}"
    );
    assert!(err.to_string().contains(&spill.display().to_string()));
    let lines = std::fs::read_to_string(&spill).unwrap();
    let spilled: Vec<String> = lines
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(spilled, numbered(5));
    for waiter in committed {
        assert!(matches!(
            waiter.await.unwrap(),
            Err(LedgerError::NotCommitted)
        ));
    }
    tokio::time::timeout(SOON, ledger.reserve())
        .await
        .expect("spilled events take no room")
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Random characters 4 bytes wide in no pattern (what compresses worst), `bytes` long.
pub(super) fn wide_noise(seed: u64, bytes: usize) -> String {
    let mut x = 0x2545_F491_4F6C_DD1D ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..bytes / 4)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from_u32(0x2_0000 + (x % 0x1_0000) as u32).unwrap_or('x')
        })
        .collect()
}

/// Every string at its worst: 4-byte characters, far past every bound, in every field.
pub(super) async fn worst_case_names_fit_every_index(db: TestDb) {
    let ledger = Ledger::open(db.url()).unwrap();
    let mut wide = event("wide", 1_000, "bot", "m", Outcome::Denied, 1);
    let names = [
        &mut wide.agent,
        &mut wide.team,
        &mut wide.target,
        &mut wide.provider,
        &mut wide.model,
        &mut wide.reason,
        &mut wide.run_id,
    ];
    for (seed, name) in names.into_iter().enumerate() {
        *name = Some(wide_noise(seed as u64, 4 * MAX_NAME_BYTES));
    }
    wide.operation = wide_noise(9, 4 * MAX_NAME_BYTES);
    wide.extra.insert(
        "note".into(),
        wide_noise(10, 3 * MAX_EXTRA_STRING_BYTES).into(),
    );
    wide.extra.insert(
        wide_noise(11, 3 * MAX_EXTRA_STRING_BYTES),
        serde_json::json!([{ "deep": wide_noise(12, 3 * MAX_EXTRA_STRING_BYTES) }]),
    );
    for i in 0..20 {
        wide.extra.insert(
            format!("z{i}"),
            wide_noise(20 + i, MAX_EXTRA_STRING_BYTES).into(),
        );
    }
    ledger.reserve().await.unwrap().record(wide);
    ledger.reserve().await.unwrap().record(call(1));
    ledger.flush().await.unwrap();

    let all = ledger
        .events(EventQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&all), ["1", "wide"], "both written");
    let kept = &all[1];
    let names = [
        &kept.agent,
        &kept.team,
        &kept.target,
        &kept.provider,
        &kept.model,
        &kept.reason,
        &kept.run_id,
    ];
    for name in names.into_iter().flatten().chain([&kept.operation]) {
        assert!(
            name.len() <= MAX_NAME_BYTES && name.ends_with('…'),
            "{} bytes",
            name.len()
        );
    }
    let extra = serde_json::Value::Object(kept.extra.clone()).to_string();
    assert!(extra.len() <= MAX_EXTRA_BYTES, "{} bytes", extra.len());
    assert!(kept.extra.contains_key("extra_cut"));
    assert_eq!(ledger.audit(vec![]).await.unwrap().broken, None);
    let q = UsageQuery {
        group_by: GroupBy::Reason,
        ..Default::default()
    };
    assert_eq!(ledger.usage(q).await.unwrap().len(), 2, "rolled up too");
}

/// The regression behind the bound on every name: on PostgreSQL a 12 KB run id made an
/// index entry too big ("index row requires 12112 bytes") and the whole batch was lost.
pub(super) async fn a_huge_run_id_never_costs_the_batch(db: TestDb) {
    let ledger = Ledger::open(db.url()).unwrap();
    for i in 0..100 {
        let mut e = call(i);
        if i == 50 {
            e.run_id = Some(wide_noise(50, 12 * 1024));
        }
        ledger.reserve().await.unwrap().record(e);
    }
    ledger.flush().await.unwrap();
    let q = EventQuery {
        limit: 1000,
        ..Default::default()
    };
    let all = ledger.events(q).await.unwrap();
    assert_eq!(all.len(), 100, "every event of the batch");
    let huge = all.iter().find(|e| e.id == "50").unwrap();
    assert!(huge.run_id.as_ref().unwrap().len() <= MAX_NAME_BYTES);
}

#[tokio::test]
async fn a_flush_folds_the_write_ahead_log_into_the_ledger_file() {
    let db = TestDb::sqlite("fold_log");
    let ledger = Ledger::open(db.url()).unwrap();
    for i in 0..20 {
        ledger.reserve().await.unwrap().record(call(i));
    }
    ledger.flush().await.unwrap();
    let file = db.url().trim_start_matches("sqlite://").to_owned();
    let wal = std::fs::metadata(format!("{file}-wal")).map_or(0, |m| m.len());
    assert_eq!(wal, 0, "the -wal file still holds committed events");
    // A copy of the main file alone (a backup) holds every event.
    let copy = format!("{file}.copy");
    std::fs::copy(&file, &copy).unwrap();
    let mut store = SqliteStore::open(&copy).unwrap();
    let query = EventQuery {
        limit: 100,
        ..Default::default()
    };
    assert_eq!(store.events(&query).unwrap().len(), 20);
}
