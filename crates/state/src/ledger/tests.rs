use super::*;
use airlock_core::{Kind, Outcome, Usage};

mod backends;
mod postgres_only;
mod tool_pins;
mod usage;

use backends::TestDb;
use tool_pins::*;
use usage::*;

/// Runs each test body once per backend, each against a fresh, empty ledger of its own:
/// `ledger::tests::sqlite::NAME` and `ledger::tests::postgres::NAME`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::TestDb::sqlite(stringify!($name))).await
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::TestDb::postgres()).await
            })*
        }
    };
}

on_both_backends!(
    events_round_trip_newest_first_and_filter,
    usage_groups_and_counts_denials,
    usage_tells_the_routes_of_llm_calls_apart,
    usage_over_hours_and_days_agrees_with_the_events,
    listings_filter_by_outcome_and_reason_and_page_by_keyset,
    events_a_binary_without_rollups_wrote_are_counted,
    an_agents_long_names_never_cost_the_batch,
    the_hash_chain_names_the_first_altered_or_missing_event,
    keys_are_stored_as_digests,
    revocations_and_suspensions_persist,
    a_batch_keeps_the_first_of_repeated_ids_and_insertion_order,
    alerts_are_kept_newest_first,
    first_sight_pins_a_tool_and_an_unchanged_one_stays_approved,
    a_changed_definition_waits_for_approval,
    auto_approve_takes_a_change_at_once,
    flags_are_stored_and_shown,
    approving_an_unknown_tool_finds_nothing,
);

async fn alerts_are_kept_newest_first(db: TestDb) {
    let ledger = Ledger::open(db.url()).unwrap();
    for (ts, kind) in [
        (1, "budget_threshold"),
        (3, "agent_suspended"),
        (2, "loop_detected"),
    ] {
        let alert = AlertRecord {
            ts_ms: ts,
            kind: kind.into(),
            agent: "a".into(),
            message: "m".into(),
            detail: "{}".into(),
        };
        ledger.record_alert(alert).await.unwrap();
    }
    let kinds: Vec<String> = ledger
        .alerts(2)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.kind)
        .collect();
    assert_eq!(kinds, ["agent_suspended", "loop_detected"]);
}

fn event(id: &str, ts_ms: u64, agent: &str, model: &str, outcome: Outcome, cost: u64) -> Event {
    Event {
        id: id.into(),
        ts_ms,
        agent: Some(agent.into()),
        team: Some("t".into()),
        kind: Kind::Llm,
        target: Some(format!("openai/{model}")),
        provider: Some("openai".into()),
        model: Some(model.into()),
        operation: "chat.completions".into(),
        status: 200,
        outcome,
        reason: None,
        usage: Usage {
            input_tokens: 10,
            cached_input_tokens: 4,
            cache_write_tokens: 0,
            output_tokens: 5,
            reasoning_tokens: 1,
        },
        cost_nanos: cost,
        latency_ms: 3,
        upstream_ms: Some(2),
        bytes_in: 100,
        bytes_out: 200,
        run_id: Some("run-1".into()),
        extra: serde_json::Map::from_iter([(
            "intercepted".to_string(),
            serde_json::Value::Bool(false),
        )]),
    }
}

async fn events_round_trip_newest_first_and_filter(db: TestDb) {
    let ledger = Ledger::open(db.url()).unwrap();
    ledger
        .reserve()
        .await
        .unwrap()
        .record(event("a", 1_000, "bot", "m1", Outcome::Served, 7));
    ledger
        .reserve()
        .await
        .unwrap()
        .record(event("b", 2_000, "bot", "m2", Outcome::Denied, 0));
    ledger
        .reserve()
        .await
        .unwrap()
        .record(event("c", 3_000, "other", "m1", Outcome::Served, 9));
    ledger.flush().await.unwrap();

    let all = ledger
        .events(EventQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["c", "b", "a"]
    );
    assert_eq!(
        all[2],
        event("a", 1_000, "bot", "m1", Outcome::Served, 7),
        "every field survives"
    );

    let bot = ledger
        .events(EventQuery {
            limit: 1,
            agent: Some("bot".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(bot.len(), 1);
    assert_eq!(bot[0].id, "b");
    let mcp = ledger
        .events(EventQuery {
            limit: 10,
            kind: Some("mcp".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(mcp.is_empty());
}

async fn usage_groups_and_counts_denials(db: TestDb) {
    let ledger = Ledger::open(db.url()).unwrap();
    for (i, (agent, outcome, cost)) in [
        ("bot", Outcome::Served, 7),
        ("bot", Outcome::Denied, 0),
        ("other", Outcome::Served, 9),
    ]
    .into_iter()
    .enumerate()
    {
        let slot = ledger.reserve().await.unwrap();
        slot.record(event(&i.to_string(), 5_000, agent, "m", outcome, cost));
    }
    ledger
        .reserve()
        .await
        .unwrap()
        .record(event("old", 10, "bot", "m", Outcome::Served, 1_000));
    ledger.flush().await.unwrap();

    let rows = ledger
        .usage(UsageQuery {
            group_by: GroupBy::Agent,
            since_ms: 1_000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].key.as_deref(), Some("other"), "ordered by spend");
    let bot = &rows[1];
    assert_eq!((bot.requests, bot.denied, bot.cost_nanos), (2, 1, 7));
    assert_eq!(
        (
            bot.input_tokens,
            bot.cached_input_tokens,
            bot.output_tokens,
            bot.reasoning_tokens
        ),
        (20, 8, 10, 2)
    );
}

async fn usage_tells_the_routes_of_llm_calls_apart(db: TestDb) {
    let ledger = Ledger::open(db.url()).unwrap();
    let routes = [Some(true), Some(true), Some(false), None];
    for (i, intercepted) in routes.into_iter().enumerate() {
        let mut e = event(&format!("r{i}"), 5_000, "bot", "m", Outcome::Served, 1);
        e.extra.clear();
        if let Some(flag) = intercepted {
            e.extra.insert("intercepted".into(), flag.into());
        }
        ledger.reserve().await.unwrap().record(e);
    }
    let mut tunnel = event("t", 5_000, "bot", "m", Outcome::Served, 0);
    tunnel.kind = Kind::Egress;
    tunnel
        .extra
        .insert("path".into(), r#"/x?"intercepted":true"#.into());
    ledger.reserve().await.unwrap().record(tunnel);
    ledger.flush().await.unwrap();
    let rows = ledger
        .usage(UsageQuery {
            group_by: GroupBy::Route,
            since_ms: 0,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut got: Vec<(String, u64)> = rows
        .into_iter()
        .map(|r| (r.key.unwrap_or_default(), r.requests))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("base_url".to_string(), 1),
            ("egress".to_string(), 1),
            ("intercepted".to_string(), 2),
            ("recognised".to_string(), 1),
        ]
    );
    assert_eq!(GroupBy::parse("route"), Some(GroupBy::Route));
}

async fn the_hash_chain_names_the_first_altered_or_missing_event(db: TestDb) {
    use super::chain::{AuditReport, Break};
    let ledger = Ledger::open(db.url()).unwrap();
    for batch in [["a", "b", "b"], ["c", "d", "e"]] {
        for id in batch {
            let e = event(id, 5_000, "bot", "m", Outcome::Served, 7);
            ledger.reserve().await.unwrap().record(e);
        }
        ledger.flush().await.unwrap();
    }
    let intact = ledger.audit().await.unwrap();
    assert_eq!(
        intact,
        AuditReport {
            checked: 5,
            unchained: 0,
            broken: None
        },
        "a repeated id is skipped without breaking the chain"
    );

    db.tamper("UPDATE events SET cost_nanos = 0 WHERE id = 'c'");
    let report = ledger.audit().await.unwrap();
    assert_eq!(
        report.broken,
        Some(Break::Altered {
            id: "c".into(),
            position: 3
        })
    );
    assert_eq!(report.checked, 2, "nothing after the break is vouched for");

    db.tamper("UPDATE events SET cost_nanos = 7 WHERE id = 'c'; DELETE FROM events WHERE id = 'b'");
    let report = ledger.audit().await.unwrap();
    assert_eq!(
        report.broken,
        Some(Break::Missing {
            before: "c".into(),
            position: 2
        })
    );
}

async fn keys_are_stored_as_digests(db: TestDb) {
    let ledger = Ledger::open(db.url()).unwrap();
    let key = StoredKey {
        id: "k1".into(),
        agent: "local".into(),
        digest: KeyDigest::of("al-secret"),
        created_ms: 1,
        revoked_ms: None,
    };
    ledger.insert_key(key.clone()).await.unwrap();
    assert_eq!(ledger.keys().await.unwrap(), vec![key]);
    assert!(!db.stores("al-secret"), "the key itself is never written");
    // A second open of the same ledger (another replica, a restart) sees the same state.
    assert_eq!(
        Ledger::open(db.url()).unwrap().keys().await.unwrap().len(),
        1
    );
}

async fn revocations_and_suspensions_persist(db: TestDb) {
    let ledger = Ledger::open(db.url()).unwrap();
    let key = StoredKey {
        id: "k1".into(),
        agent: "a".into(),
        digest: KeyDigest::of("al-x"),
        created_ms: 1,
        revoked_ms: None,
    };
    ledger.insert_key(key).await.unwrap();
    assert!(ledger.revoke_key("k1".into(), 500).await.unwrap());
    assert!(ledger.revoke_key("k1".into(), 900).await.unwrap());
    assert_eq!(
        ledger.keys().await.unwrap()[0].revoked_ms,
        Some(500),
        "a later rotation never extends a key"
    );
    assert!(!ledger.revoke_key("nope".into(), 1).await.unwrap());

    let s = Suspension {
        agent: "a".into(),
        since_ms: 7,
        reason: "velocity".into(),
    };
    ledger
        .set_suspension("a".into(), Some(s.clone()))
        .await
        .unwrap();
    let later = Suspension {
        since_ms: 9,
        reason: "budget".into(),
        ..s.clone()
    };
    ledger
        .set_suspension("a".into(), Some(later))
        .await
        .unwrap();
    assert_eq!(
        Ledger::open(db.url()).unwrap().suspensions().await.unwrap(),
        vec![s],
        "the first suspension stands"
    );
    ledger.set_suspension("a".into(), None).await.unwrap();
    assert!(ledger.suspensions().await.unwrap().is_empty());
}

async fn a_batch_keeps_the_first_of_repeated_ids_and_insertion_order(db: TestDb) {
    // Straight to the store, so the batch is exactly this one: a full writer batch in
    // which every id comes twice, all in the same millisecond. Stores block, so off the
    // async runtime, as the ledger's writer and readers are.
    let url = db.url().to_string();
    let all = tokio::task::spawn_blocking(move || {
        let mut store = open_store(&url).unwrap();
        let batch: Vec<Event> = (0..BATCH)
            .map(|i| {
                let id = (i % (BATCH / 2)).to_string();
                event(&id, 1_000, "bot", &format!("m{i}"), Outcome::Served, 1)
            })
            .collect();
        store.append(&batch).unwrap();
        store.append(&batch[..1]).unwrap();
        store
            .events(&EventQuery {
                limit: 10_000,
                ..Default::default()
            })
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(all.len(), BATCH / 2);
    assert_eq!(
        (all[0].id.as_str(), all.last().unwrap().id.as_str()),
        ((BATCH / 2 - 1).to_string().as_str(), "0"),
        "same millisecond: the last inserted comes first"
    );
    assert_eq!(
        all.last().unwrap().model.as_deref(),
        Some("m0"),
        "the first copy is kept"
    );
}

#[test]
fn unsupported_urls_are_named() {
    assert!(matches!(
        Ledger::open("mysql://x"),
        Err(LedgerError::UnsupportedUrl(_))
    ));
}

/// A store whose writes wait until the test lets them through.
struct Gated {
    open: std::sync::mpsc::Receiver<()>,
    written: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl LedgerStore for Gated {
    fn append(&mut self, events: &[Event]) -> Result<(), LedgerError> {
        for _ in events {
            self.open.recv().map_err(|_| LedgerError::Closed)?;
        }
        self.written
            .fetch_add(events.len(), std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
    fn events(&mut self, _: &EventQuery) -> Result<Vec<Event>, LedgerError> {
        Ok(Vec::new())
    }
    fn usage(&mut self, _: &UsageQuery) -> Result<Vec<UsageRow>, LedgerError> {
        Ok(Vec::new())
    }
    fn chained_page(
        &mut self,
        _: i64,
        _: u64,
        _: u32,
    ) -> Result<Vec<(i64, super::chain::ChainedRow)>, LedgerError> {
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

#[tokio::test]
async fn a_full_queue_holds_new_calls_back_instead_of_dropping_events() {
    let (open, gate) = std::sync::mpsc::channel();
    let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writer = Gated {
        open: gate,
        written: written.clone(),
    };
    let (_, reader_gate) = std::sync::mpsc::channel();
    let reader = Gated {
        open: reader_gate,
        written: Default::default(),
    };
    let ledger = Ledger::with_capacity(Box::new(writer), Box::new(reader), 2);

    // The stuck writer takes what it can into its batch; then the queue fills up and
    // the next call has to wait for room.
    let mut recorded = 0;
    let waiting = loop {
        assert!(recorded < 20, "the queue never filled up");
        let ledger = ledger.clone();
        let id = recorded.to_string();
        let reserve = tokio::spawn(async move {
            ledger
                .reserve()
                .await
                .map(|slot| slot.record(event(&id, 1, "a", "m", Outcome::Served, 0)))
        });
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        recorded += 1;
        if !reserve.is_finished() {
            break reserve;
        }
    };
    for _ in 0..recorded {
        open.send(()).unwrap();
    }
    waiting.await.unwrap().unwrap();
    ledger.flush().await.unwrap();
    assert_eq!(
        written.load(std::sync::atomic::Ordering::SeqCst),
        recorded,
        "nothing was dropped"
    );
}
