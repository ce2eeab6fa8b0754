//! Fills a ledger with synthetic calls through the real writer (batches, hash chain,
//! rollups), for `bench/dashboard`: `fill_ledger URL COUNT DAYS`. Calls are spread evenly
//! over the last DAYS days, oldest first, across 20 agents in 4 teams and every kind, with
//! a few denials and failures. Deterministic (a fixed xorshift seed), so runs compare.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use airlock_core::{Event, Kind, Outcome, Usage};
use airlock_state::Ledger;

const MODELS: [&str; 6] = [
    "openai/gpt-4o-mini",
    "openai/gpt-4o",
    "anthropic/claude-sonnet-4",
    "anthropic/claude-haiku-4",
    "openai/o4-mini",
    "openai/text-embedding-3-small",
];
const TOOLS: [&str; 8] = [
    "github/search_issues",
    "github/create_issue",
    "fs/read_file",
    "fs/write_file",
    "jira/get_ticket",
    "slack/post_message",
    "web/fetch",
    "db/query",
];
const HOSTS: [&str; 6] = [
    "api.stripe.com",
    "hooks.slack.com",
    "api.github.com",
    "example.org",
    "api.openai.com",
    "s3.amazonaws.com",
];
const REASONS: [&str; 5] = [
    "budget_exceeded",
    "rate_limited",
    "not_allowed",
    "loop_detected",
    "dlp_blocked",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn call(i: u64, ts_ms: u64, rng: &mut Rng) -> Event {
    let agent = rng.below(20);
    let roll = rng.below(100);
    let (kind, target, operation) = match roll {
        0..70 => (
            Kind::Llm,
            MODELS[rng.below(6) as usize].to_string(),
            "chat.completions",
        ),
        70..85 => (
            Kind::Mcp,
            TOOLS[rng.below(8) as usize].to_string(),
            "tools/call",
        ),
        85..95 => (
            Kind::Egress,
            HOSTS[rng.below(6) as usize].to_string(),
            "CONNECT",
        ),
        _ => (Kind::A2a, format!("agent-{}", rng.below(4)), "message/send"),
    };
    let fate = rng.below(100);
    let (outcome, reason, status) = match fate {
        0..3 => (
            Outcome::Denied,
            Some(REASONS[rng.below(5) as usize].to_string()),
            429,
        ),
        3..4 => (Outcome::Failed, Some("upstream_unavailable".into()), 502),
        _ => (Outcome::Served, None, 200),
    };
    let llm_served = kind == Kind::Llm && outcome == Outcome::Served;
    let usage = if llm_served {
        Usage {
            input_tokens: 200 + rng.below(4000),
            cached_input_tokens: rng.below(200),
            cache_write_tokens: 0,
            output_tokens: 20 + rng.below(800),
            reasoning_tokens: 0,
        }
    } else {
        Usage::default()
    };
    let cost_nanos = usage.input_tokens * 150 + usage.output_tokens * 600;
    let (provider, model) = match kind {
        Kind::Llm => {
            let (p, m) = target.split_once('/').unwrap_or(("openai", &target));
            (Some(p.to_string()), Some(m.to_string()))
        }
        _ => (None, None),
    };
    let mut extra = serde_json::Map::new();
    if kind == Kind::Egress {
        extra.insert("bytes_up".into(), rng.below(10_000).into());
    }
    Event {
        id: format!("ev_fill{i:012x}"),
        ts_ms,
        agent: Some(format!("agent-{agent:02}")),
        team: Some(format!("team-{}", agent % 4)),
        kind,
        target: Some(target),
        provider,
        model,
        operation: operation.into(),
        status,
        outcome,
        reason,
        usage,
        cost_nanos,
        latency_ms: 50 + rng.below(2000),
        upstream_ms: Some(40 + rng.below(1900)),
        bytes_in: 500 + rng.below(20_000),
        bytes_out: 300 + rng.below(8_000),
        run_id: Some(format!("run-{}", i / 40)),
        extra,
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, count, days] = args.as_slice() else {
        eprintln!("usage: fill_ledger URL COUNT DAYS");
        std::process::exit(2);
    };
    let count: u64 = count.parse().expect("COUNT is a number");
    let days: u64 = days.parse().expect("DAYS is a number");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_millis() as u64;
    let span = days * 86_400_000;
    let ledger = Ledger::open(url).expect("open the ledger");
    let started = Instant::now();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for i in 0..count {
        let ts = now - span + span * i / count;
        let slot = ledger.reserve().await.expect("the writer runs");
        slot.record(call(i, ts, &mut rng));
    }
    ledger.flush().await.expect("flush");
    let secs = started.elapsed().as_secs_f64();
    println!(
        "wrote {count} events in {secs:.1} s ({:.0} events/s)",
        count as f64 / secs
    );
}
