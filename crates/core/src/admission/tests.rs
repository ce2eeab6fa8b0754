use super::*;
use crate::config::Config;

const NOW: u64 = 1_795_801_800_000; // 2026-11-27T17:50:00Z

fn config(agent_yaml: &str) -> Config {
    let yaml = format!(
        "teams:\n  - id: t\n    budget: {{ usd_per_month: 100 }}\nagents:\n  - id: bot\n    team: t\n{agent_yaml}"
    );
    Config::parse(&yaml, &|_| None).unwrap()
}

fn facts<'a>(c: &'a Config, run: Option<&'a str>, model: Option<&'a str>) -> Facts<'a> {
    let agent = c.agent("bot").unwrap();
    Facts {
        agent,
        team: agent.team.as_deref().and_then(|t| c.team(t)),
        model,
        tool: None,
        host: None,
        run_id: run,
        fingerprint: "fp1",
        estimate_nanos: 5_000,
        estimate_tokens: 120,
        now_ms: NOW,
    }
}

#[test]
fn budgets_reserve_the_estimate_in_their_calendar_window() {
    let c = config("    budget: { usd_per_day: 20, usd_per_run: 2 }\n");
    let plan = Plan::build(&facts(&c, Some("r1"), None));
    let keys: Vec<&str> = plan.charges.iter().map(|ch| ch.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "budget:agent:bot:2026-11-27",
            "budget:agent:bot:run:r1",
            "budget:team:t:2026-11"
        ]
    );
    assert!(
        plan.charges
            .iter()
            .all(|ch| ch.amount == 5_000 && ch.enforce)
    );
    assert_eq!(plan.charges[0].limit, 20_000_000_000);
    // Without a run id there is no run budget to hold.
    assert_eq!(Plan::build(&facts(&c, None, None)).charges.len(), 2);
}

#[test]
fn settlement_moves_from_estimate_to_truth() {
    let c = config("    budget: { usd_per_day: 20 }\n    limits: { tokens_per_minute: 1000 }\n");
    let plan = Plan::build(&facts(&c, None, None));
    let adj = plan.settlement(3_000, 100, false);
    assert_eq!(adj[0].1, -2_000, "the unused reservation is released");
    assert_eq!(adj.iter().find(|a| a.0.starts_with("tpm:")).unwrap().1, -20);
    assert_eq!(
        plan.release().iter().map(|a| a.1).sum::<i64>(),
        -(5_000 + 5_000 + 120)
    );
}

#[test]
fn rate_limits_apply_overall_and_per_model() {
    let c = config(
        "    limits:\n      requests_per_minute: 60\n      models: { \"gpt-4o*\": { requests_per_minute: 5 } }\n",
    );
    let plan = Plan::build(&facts(&c, None, Some("gpt-4o-mini")));
    let rpm: Vec<_> = plan
        .charges
        .iter()
        .filter(|ch| ch.key.starts_with("rpm:"))
        .collect();
    assert_eq!(rpm.len(), 2);
    assert_eq!(rpm[1].limit, 5);
    assert!(rpm[1].key.contains("model:gpt-4o-mini"));
    assert_eq!(
        Plan::build(&facts(&c, None, Some("claude")))
            .charges
            .iter()
            .filter(|ch| ch.key.starts_with("rpm:"))
            .count(),
        1
    );
}

#[test]
fn loop_rules_count_identical_calls_runs_and_failures() {
    let c = config(
        "    guards:\n      loops: { identical_calls: 3, window: 60s, repeated_failures: 2, calls_per_run: 50, cycle_repeats: 2, mode: monitor }\n",
    );
    let plan = Plan::build(&facts(&c, Some("r"), None));
    let same = plan
        .charges
        .iter()
        .find(|ch| ch.key.starts_with("same:fp1:"))
        .unwrap();
    assert_eq!((same.limit, same.amount, same.enforce), (3, 1, false));
    let fail = plan
        .charges
        .iter()
        .find(|ch| ch.key.starts_with("fail:fp1:"))
        .unwrap();
    assert_eq!(
        (fail.limit, fail.amount),
        (1, 0),
        "a check: refused once 2 failures are counted"
    );
    assert!(
        plan.charges
            .iter()
            .any(|ch| ch.key == "runcalls:bot:r" && ch.limit == 50)
    );
    assert_eq!(plan.cycle, Some((2, GuardMode::Monitor)));
    assert!(
        plan.settlement(0, 0, true)
            .iter()
            .any(|a| a.0 == fail.key && a.1 == 1)
    );
}

#[test]
fn refusals_explain_what_is_left_and_when() {
    let d = explain(
        &Rule::Budget {
            scope: "agent:bot".into(),
            period: Period::Day,
            limit_nanos: 2_000_000_000,
            resets_ms: Some(1_795_824_000_000),
        },
        1_999_000_000,
        NOW,
    );
    assert_eq!(d.reason, Reason::BudgetExceeded);
    assert!(d.message.contains("$0.001 left"), "{}", d.message);
    assert!(d.message.contains("2026-11-28T00:00:00Z"), "{}", d.message);
    let r = explain(
        &Rule::Requests {
            scope: "agent:bot".into(),
            limit: 10,
            resets_ms: NOW + 12_500,
        },
        10,
        NOW,
    );
    assert_eq!(r.retry_after_secs, Some(13));
    assert!(
        r.hints
            .iter()
            .any(|(h, v)| *h == "x-ratelimit-limit-requests" && v == "10")
    );
}

#[test]
fn short_cycles_are_found_but_not_single_repeats() {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(cycle(&s(&["a", "b", "a", "b", "a", "b"]), 2), Some(2));
    assert_eq!(
        cycle(&s(&["a", "b", "a", "b"]), 2),
        None,
        "repeated twice only"
    );
    assert_eq!(cycle(&s(&["x", "a", "b", "c", "a", "b", "c"]), 1), Some(3));
    assert_eq!(cycle(&s(&["a", "a", "a", "a", "a", "a"]), 2), None);
    assert_eq!(cycle(&s(&["a", "b", "a", "c", "a", "b"]), 2), None);
}
