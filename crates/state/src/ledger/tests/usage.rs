//! Usage from the rollups against the events they sum, and the listings behind the
//! dashboard's events table.

use std::collections::BTreeMap;

use super::*;

const H: u64 = 3_600_000;
const D: u64 = 24 * H;

/// Usage reads whole days from the day rollup, whole hours before them from the hour
/// rollup and the part-hour before those from the events. For windows starting anywhere
/// (inside an hour, on an hour, on a day, at 0, in the future), every grouping, filter and
/// sum must be what the events say.
pub(super) async fn usage_over_hours_and_days_agrees_with_the_events(db: TestDb) {
    let ledger = Ledger::open(db.url()).unwrap();
    let mut all = Vec::new();
    for i in 0..40u64 {
        // Every 47 minutes from 14:00 on day 0, over a day boundary, in two batches.
        let ts = D - 10 * H + i * 47 * 60_000;
        let agent = ["bot", "other"][(i % 2) as usize];
        let outcome = if i % 5 == 0 {
            Outcome::Denied
        } else {
            Outcome::Served
        };
        let mut e = event(&format!("e{i}"), ts, agent, "m", outcome, i + 1);
        // Each sum its own values, so a column read in the wrong place shows.
        e.usage = Usage {
            input_tokens: 100 + i,
            cached_input_tokens: i % 7,
            cache_write_tokens: 0,
            output_tokens: 3 * i + 1,
            reasoning_tokens: i % 3,
        };
        if outcome == Outcome::Denied {
            e.reason = Some(["budget_exceeded", "not_allowed"][(i % 10 / 5) as usize].into());
        }
        if i % 3 == 0 {
            e.kind = Kind::Mcp;
            e.target = Some(format!("fs/tool{}", i % 2));
        }
        if i % 4 == 1 {
            e.extra.insert("intercepted".into(), true.into());
        }
        all.push(e.clone());
        ledger.reserve().await.unwrap().record(e);
        if i == 20 {
            ledger.flush().await.unwrap();
        }
    }
    // A repeated id is not counted twice, in the events or in the rollups.
    ledger.reserve().await.unwrap().record(all[7].clone());
    ledger.flush().await.unwrap();

    type Sums = (u64, u64, u64, u64, u64, u64, u64);
    let want =
        |since: u64, key: &dyn Fn(&Event) -> Option<String>, keep: &dyn Fn(&Event) -> bool| {
            let mut rows: BTreeMap<Option<String>, Sums> = BTreeMap::new();
            for e in all.iter().filter(|e| e.ts_ms >= since && keep(e)) {
                let r = rows.entry(key(e)).or_default();
                r.0 += 1;
                r.1 += u64::from(e.outcome == Outcome::Denied);
                r.2 += e.usage.input_tokens;
                r.3 += e.usage.cached_input_tokens;
                r.4 += e.usage.output_tokens;
                r.5 += e.usage.reasoning_tokens;
                r.6 += e.cost_nanos;
            }
            rows
        };
    let got = |q: UsageQuery| {
        let ledger = ledger.clone();
        async move {
            let rows = ledger.usage(q).await.unwrap();
            rows.into_iter()
                .map(|r| {
                    let sums = (
                        r.requests,
                        r.denied,
                        r.input_tokens,
                        r.cached_input_tokens,
                        r.output_tokens,
                        r.reasoning_tokens,
                        r.cost_nanos,
                    );
                    (r.key, sums)
                })
                .collect::<BTreeMap<_, _>>()
        }
    };
    let hour = |e: &Event| Some((e.ts_ms - e.ts_ms % H).to_string());
    let day = |e: &Event| Some((e.ts_ms - e.ts_ms % D).to_string());
    let route = |e: &Event| {
        Some(match (e.kind, e.extra.get("intercepted")) {
            (Kind::Llm, Some(v)) if v == true => "intercepted".to_string(),
            (Kind::Llm, Some(_)) => "recognised".to_string(),
            (Kind::Llm, None) => "base_url".to_string(),
            (kind, _) => kind.as_str().to_string(),
        })
    };
    type Key<'a> = &'a dyn Fn(&Event) -> Option<String>;
    let cases: Vec<(GroupBy, Key)> = vec![
        (GroupBy::Agent, &|e| e.agent.clone()),
        (GroupBy::Hour, &hour),
        (GroupBy::Day, &day),
        (GroupBy::Reason, &|e| e.reason.clone()),
        (GroupBy::Outcome, &|e| Some(e.outcome.as_str().to_string())),
        (GroupBy::Target, &|e| e.target.clone()),
        (GroupBy::Kind, &|e| Some(e.kind.as_str().to_string())),
        (GroupBy::Route, &route),
    ];
    // Inside an hour, on an hour, on the day boundary, everything, the future.
    for since in [D - 8 * H + H / 2, D - 5 * H, D, 0, 5 * D] {
        for (group_by, key) in &cases {
            let q = UsageQuery {
                group_by: *group_by,
                since_ms: since,
                ..Default::default()
            };
            assert_eq!(
                got(q).await,
                want(since, key, &|_| true),
                "{group_by:?} since {since}"
            );
        }
    }
    let since = D - 8 * H + H / 2;
    let q = UsageQuery {
        group_by: GroupBy::Target,
        since_ms: since,
        agent: Some("bot".into()),
        kind: Some("mcp".into()),
    };
    let bot_tools = want(since, &|e| e.target.clone(), &|e| {
        e.agent.as_deref() == Some("bot") && e.kind == Kind::Mcp
    });
    assert!(!bot_tools.is_empty());
    assert_eq!(got(q).await, bot_tools);
}

/// Events written behind the rollups' back — by an older replica mid-upgrade — are past
/// the watermark: the next write counts them, as does opening the ledger.
pub(super) async fn events_a_binary_without_rollups_wrote_are_counted(db: TestDb) {
    // `hash`: NULL as a binary from before the chain writes it, or set as one with the
    // chain but without the rollups does.
    let insert = |id: &str, hash: &str| {
        format!(
            "INSERT INTO events (id, ts_ms, agent, kind, operation, status, outcome, input_tokens,
                cached_input_tokens, cache_write_tokens, output_tokens, reasoning_tokens,
                cost_nanos, latency_ms, bytes_in, bytes_out, hash)
             VALUES ('{id}', 5000, 'bot', 'llm', 'chat', 200, 'served', 1, 0, 0, 1, 0, 10, 1, 0, 0,
                {hash})"
        )
    };
    let spend = |ledger: Ledger| async move {
        let q = UsageQuery {
            group_by: GroupBy::Agent,
            since_ms: 0,
            ..Default::default()
        };
        let rows = ledger.usage(q).await.unwrap();
        rows.iter()
            .fold((0, 0), |(n, c), r| (n + r.requests, c + r.cost_nanos))
    };
    let ledger = Ledger::open(db.url()).unwrap();
    ledger
        .reserve()
        .await
        .unwrap()
        .record(event("a", 1_000, "bot", "m", Outcome::Served, 7));
    ledger.flush().await.unwrap();
    db.tamper(&insert("old-1", "NULL"));
    ledger
        .reserve()
        .await
        .unwrap()
        .record(event("b", 9_000, "bot", "m", Outcome::Served, 7));
    ledger.flush().await.unwrap();
    assert_eq!(
        spend(ledger.clone()).await,
        (3, 24),
        "counted by the next write"
    );
    db.tamper(&insert("old-2", "NULL"));
    let reopened = Ledger::open(db.url()).unwrap();
    assert_eq!(spend(reopened.clone()).await, (4, 34), "and at open");
    reopened
        .reserve()
        .await
        .unwrap()
        .record(event("c", 9_500, "bot", "m", Outcome::Served, 7));
    reopened.flush().await.unwrap();
    assert_eq!(spend(reopened.clone()).await, (5, 41), "each counted once");
    db.tamper(&insert("old-3", "'chained-by-an-older-replica'"));
    reopened
        .reserve()
        .await
        .unwrap()
        .record(event("d", 9_600, "bot", "m", Outcome::Served, 7));
    reopened.flush().await.unwrap();
    assert_eq!(
        spend(reopened).await,
        (7, 58),
        "a row chained elsewhere too"
    );
}

/// A model or tool name is the agent's to choose; a huge one is kept shortened, and the
/// batch it came in (other agents' calls too) is still written.
pub(super) async fn an_agents_long_names_never_cost_the_batch(db: TestDb) {
    // Wide characters in no pattern: an index entry of them can't be compressed small.
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut noise = || {
        (0..4000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from_u32(0x100 + (x % 0x3000) as u32).unwrap_or('x')
            })
            .collect::<String>()
    };
    let ledger = Ledger::open(db.url()).unwrap();
    let mut hostile = event("long", 1_000, "bot", &noise(), Outcome::Served, 1);
    hostile.target = Some(format!("fs/{}", noise()));
    hostile.operation = noise();
    ledger.reserve().await.unwrap().record(hostile);
    ledger
        .reserve()
        .await
        .unwrap()
        .record(event("next", 1_001, "other", "m", Outcome::Served, 1));
    ledger.flush().await.unwrap();
    let q = EventQuery {
        limit: 10,
        ..Default::default()
    };
    let all = ledger.events(q).await.unwrap();
    assert_eq!(all.len(), 2, "the batch was written");
    let kept = all.iter().find(|e| e.id == "long").unwrap();
    for name in [
        kept.model.as_deref().unwrap(),
        kept.target.as_deref().unwrap(),
        &kept.operation,
    ] {
        assert!(name.len() <= MAX_NAME_BYTES, "{} bytes", name.len());
        assert!(name.ends_with('…'));
    }
}

pub(super) async fn listings_filter_by_outcome_and_reason_and_page_by_keyset(db: TestDb) {
    let ledger = Ledger::open(db.url()).unwrap();
    for i in 0..9u64 {
        // Three events a millisecond: pages must break ties by insertion order.
        let outcome = if i % 3 == 2 {
            Outcome::Denied
        } else {
            Outcome::Served
        };
        let mut e = event(&format!("e{i}"), 1_000 + i / 3, "bot", "m", outcome, 1);
        if outcome == Outcome::Denied {
            e.reason = Some("rate_limited".into());
        }
        ledger.reserve().await.unwrap().record(e);
    }
    ledger.flush().await.unwrap();
    let page = |before: Option<&str>, outcome: Option<&str>| {
        let q = EventQuery {
            limit: 4,
            outcome: outcome.map(str::to_string),
            before: before.map(str::to_string),
            ..Default::default()
        };
        let ledger = ledger.clone();
        async move {
            let list = ledger.events(q).await.unwrap();
            list.into_iter().map(|e| e.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(page(None, None).await, ["e8", "e7", "e6", "e5"]);
    assert_eq!(page(Some("e5"), None).await, ["e4", "e3", "e2", "e1"]);
    assert_eq!(page(Some("e1"), None).await, ["e0"]);
    assert_eq!(page(None, Some("denied")).await, ["e8", "e5", "e2"]);
    assert_eq!(page(Some("e5"), Some("denied")).await, ["e2"]);
    assert!(page(Some("no-such-event"), None).await.is_empty());
    let one = EventQuery {
        limit: 10,
        id: Some("e4".into()),
        ..Default::default()
    };
    let found = ledger.events(one).await.unwrap();
    assert_eq!(
        found.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["e4"]
    );
    let q = EventQuery {
        limit: 10,
        reason: Some("rate_limited".into()),
        ..Default::default()
    };
    assert_eq!(ledger.events(q).await.unwrap().len(), 3);
}

/// A ledger written before the rollups existed gets its old events rolled up when it is
/// opened, so usage over them is still right.
#[tokio::test]
async fn an_older_ledger_gets_its_hours_rolled_up() {
    let db = TestDb::sqlite("rollup_backfill");
    let path = db.url().strip_prefix("sqlite://").unwrap().to_string();
    let old = rusqlite::Connection::open(&path).unwrap();
    for m in crate::ledger::sqlite::MIGRATIONS {
        old.execute_batch(m).unwrap();
    }
    old.pragma_update(
        None,
        "user_version",
        crate::ledger::sqlite::MIGRATIONS.len() as i64,
    )
    .unwrap();
    old.execute_batch(
        "INSERT INTO events (id, ts_ms, agent, kind, operation, status, outcome, input_tokens,
            cached_input_tokens, cache_write_tokens, output_tokens, reasoning_tokens,
            cost_nanos, latency_ms, bytes_in, bytes_out, prev_hash, hash)
         VALUES ('old', 7200000, 'bot', 'llm', 'chat', 200, 'served', 3, 0, 0, 4, 0, 50, 1,
            0, 0, 'genesis', 'h1')",
    )
    .unwrap();
    drop(old);
    let ledger = Ledger::open(db.url()).unwrap();
    ledger
        .reserve()
        .await
        .unwrap()
        .record(event("new", 7_300_000, "bot", "m", Outcome::Served, 7));
    ledger.flush().await.unwrap();
    let rows = ledger
        .usage(UsageQuery {
            group_by: GroupBy::Agent,
            since_ms: 0,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].requests, rows[0].input_tokens, rows[0].cost_nanos),
        (2, 13, 57)
    );
}
