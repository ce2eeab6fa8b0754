use super::writer::BATCH;
use super::*;
use airlock_core::{Kind, Outcome, Usage};

mod backends;
mod chain;
mod postgres_only;
mod tool_pins;
mod usage;
mod writer;

use backends::TestDb;
use chain::*;
use tool_pins::*;
use usage::*;
use writer::*;

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
    worst_case_names_fit_every_index,
    a_huge_run_id_never_costs_the_batch,
    the_hash_chain_names_the_first_altered_or_missing_event,
    rows_whose_links_were_removed_are_never_chained_again,
    a_fresh_ledger_with_a_checkpoint_is_intact_and_names_it,
    deleting_the_last_rows_is_caught_by_the_checkpoint,
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
