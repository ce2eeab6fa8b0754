//! Measures what a SIGKILL can lose with asynchronous ledger writes (README,
//! "Durability"): how long the SQLite store takes to commit a full batch (512 events),
//! and how long an event waits from `record` to its commit through the real writer
//! (its 5 ms linger included), alone and as the last of a 512-event burst.
//! `commit_window [DIR]`; run with `--release`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use airlock_core::{Event, Kind, Outcome, Usage};
use airlock_state::Ledger;
use airlock_state::ledger::{LedgerStore, SqliteStore};

const BATCH: usize = 512;
const ROUNDS: usize = 40;

fn call(i: usize) -> Event {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    Event {
        id: format!("c{i:09}"),
        ts_ms: now,
        agent: Some(format!("agent-{}", i % 20)),
        team: Some(format!("team-{}", i % 4)),
        kind: Kind::Llm,
        target: Some("openai/gpt-4o-mini".into()),
        provider: Some("openai".into()),
        model: Some("gpt-4o-mini".into()),
        operation: "chat.completions".into(),
        status: 200,
        outcome: Outcome::Served,
        reason: None,
        usage: Usage {
            input_tokens: 812,
            cached_input_tokens: 0,
            cache_write_tokens: 0,
            output_tokens: 164,
            reasoning_tokens: 0,
        },
        cost_nanos: 220_000,
        latency_ms: 410,
        upstream_ms: Some(380),
        bytes_in: 2_400,
        bytes_out: 1_100,
        run_id: Some(format!("run-{}", i % 50)),
        extra: Default::default(),
    }
}

fn summary(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    format!(
        "median {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        at(0.5).as_secs_f64() * 1e3,
        at(0.95).as_secs_f64() * 1e3,
        at(1.0).as_secs_f64() * 1e3
    )
}

#[tokio::main]
async fn main() {
    let dir = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("airlock-commit-window"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ledger.db");

    // The store alone: one transaction of 512 inserts, rollups and links, then commit.
    let mut next = 0;
    let commits = tokio::task::spawn_blocking({
        let path = path.clone();
        move || {
            let mut store = SqliteStore::open(&path).unwrap();
            let mut took = Vec::new();
            for _ in 0..ROUNDS {
                let batch: Vec<Event> = (next..next + BATCH).map(call).collect();
                next += BATCH;
                let start = Instant::now();
                store.append(&batch).unwrap();
                took.push(start.elapsed());
            }
            (took, next)
        }
    });
    let (commits, mut next) = commits.await.unwrap();
    println!(
        "SQLite, a {BATCH}-event batch committed in: {}",
        summary(commits)
    );

    // Through the writer: from record to commit.
    let ledger = Ledger::open(&format!("sqlite://{}", path.display())).unwrap();
    let (mut alone, mut burst) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let slot = ledger.reserve().await.unwrap();
        slot.record_committed(call(next)).await.unwrap();
        next += 1;
        alone.push(start.elapsed());

        let start = Instant::now();
        let mut last = None;
        for _ in 0..BATCH {
            let slot = ledger.reserve().await.unwrap();
            last = Some(slot.record_committed(call(next)));
            next += 1;
        }
        last.unwrap().await.unwrap();
        burst.push(start.elapsed());
    }
    println!("record to commit, one event alone: {}", summary(alone));
    println!(
        "record to commit, last of a {BATCH}-event burst: {}",
        summary(burst)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
