//! What must hold before a call is forwarded, as data: a [`Plan`] of counter charges
//! (budgets, rate limits, loop counts) that a counters store applies all-or-nothing in one
//! step, and what to adjust once the call's real cost is known.
//!
//! Pure: the plan is built from config and call facts; the store only adds and compares
//! numbers under keys; the explanation of a refusal is built here again.

use std::time::Duration;

use crate::config::policy::{Budget, GuardMode};
use crate::config::{Agent, Team};
use crate::glob;
use crate::money::format_usd;
use crate::reason::{Denial, Reason};
use crate::window::Period;

/// One counter to add to, under a limit: refused when `current + amount > limit`. With
/// `amount == 0` it is a check (`current > limit` refuses).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Charge {
    pub key: String,
    pub limit: u64,
    pub amount: u64,
    /// How long the counter lives after its window starts, in ms.
    pub ttl_ms: u64,
    /// `false` in monitor mode: a violation is reported, the call still goes.
    pub enforce: bool,
}

/// What a charge stands for, to explain a refusal and to settle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    Budget {
        scope: String,
        period: Period,
        limit_nanos: u64,
        resets_ms: Option<u64>,
    },
    Requests {
        scope: String,
        limit: u64,
        resets_ms: u64,
    },
    Tokens {
        scope: String,
        limit: u64,
        resets_ms: u64,
    },
    IdenticalCalls {
        limit: u64,
        window: Duration,
    },
    CallsPerRun {
        limit: u64,
    },
    RepeatedFailures {
        limit: u64,
        window: Duration,
    },
}

/// The facts about a call the plan needs.
pub struct Facts<'a> {
    pub agent: &'a Agent,
    pub team: Option<&'a Team>,
    /// The model asked for (LLM calls), for per-model rate limits.
    pub model: Option<&'a str>,
    /// The MCP tool called, as `<server><separator><tool>`, for per-tool rate limits.
    pub tool: Option<&'a str>,
    /// The egress destination host, for per-host rate limits.
    pub host: Option<&'a str>,
    pub run_id: Option<&'a str>,
    pub fingerprint: &'a str,
    /// Worst-case cost and tokens of the call.
    pub estimate_nanos: u64,
    pub estimate_tokens: u64,
    pub now_ms: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub charges: Vec<Charge>,
    /// `rules[i]` explains `charges[i]`.
    pub rules: Vec<Rule>,
    /// Recent fingerprints of this run, for cycle detection: (key, keep, ttl).
    pub history: Option<(String, usize, u64)>,
    pub cycle: Option<(u32, GuardMode)>,
    /// Counter of this call's failures, bumped at settlement when it fails.
    pub failure_key: Option<(String, u64)>,
    /// Spend in the current minute, for the velocity trip: (key, limit, mode).
    pub velocity: Option<(String, u64, GuardMode)>,
    pub estimate_nanos: u64,
    pub estimate_tokens: u64,
}

const MINUTE_MS: u64 = 60_000;
/// How long a run's counters live after its last call.
pub const RUN_TTL_MS: u64 = 30 * 86_400_000;

impl Plan {
    pub fn build(f: &Facts) -> Plan {
        let mut plan = Plan {
            estimate_nanos: f.estimate_nanos,
            estimate_tokens: f.estimate_tokens,
            ..Plan::default()
        };
        let agent = &f.agent.id;

        let budget = |scope: String, b: &Budget, plan: &mut Plan| {
            let Some((key, ttl_ms, resets_ms)) =
                budget_counter(&scope, b.period, f.now_ms, f.run_id)
            else {
                return;
            };
            plan.push(
                Charge {
                    key,
                    limit: b.limit_nanos,
                    amount: f.estimate_nanos,
                    ttl_ms,
                    enforce: true,
                },
                Rule::Budget {
                    scope,
                    period: b.period,
                    limit_nanos: b.limit_nanos,
                    resets_ms,
                },
            );
        };
        for b in &f.agent.budgets {
            budget(format!("agent:{agent}"), b, &mut plan);
        }
        if let Some(team) = f.team {
            for b in &team.budgets {
                budget(format!("team:{}", team.id), b, &mut plan);
            }
        }

        let minute = f.now_ms / MINUTE_MS;
        let resets_ms = (minute + 1) * MINUTE_MS;
        let rate = |scope: String, r: &crate::config::policy::Rate, plan: &mut Plan| {
            if let Some(limit) = r.requests_per_minute {
                plan.push(
                    Charge {
                        key: format!("rpm:{scope}:{minute}"),
                        limit: limit.into(),
                        amount: 1,
                        ttl_ms: 2 * MINUTE_MS,
                        enforce: true,
                    },
                    Rule::Requests {
                        scope: scope.clone(),
                        limit: limit.into(),
                        resets_ms,
                    },
                );
            }
            if let Some(limit) = r.tokens_per_minute {
                plan.push(
                    Charge {
                        key: format!("tpm:{scope}:{minute}"),
                        limit,
                        amount: f.estimate_tokens,
                        ttl_ms: 2 * MINUTE_MS,
                        enforce: true,
                    },
                    Rule::Tokens {
                        scope,
                        limit,
                        resets_ms,
                    },
                );
            }
        };
        rate(format!("agent:{agent}"), &f.agent.rates.overall, &mut plan);
        for (kind, subject, rates) in [
            ("model", f.model, &f.agent.rates.per_model),
            ("tool", f.tool, &f.agent.rates.per_tool),
            ("host", f.host, &f.agent.rates.per_host),
        ] {
            let Some(subject) = subject else { continue };
            for (pattern, r) in rates {
                if glob::matches(pattern, subject) {
                    rate(format!("agent:{agent}:{kind}:{subject}"), r, &mut plan);
                }
            }
        }

        if let Some(loops) = &f.agent.guards.loops {
            let enforce = loops.mode == GuardMode::Enforce;
            let window_ms = loops.window.as_millis() as u64;
            let slot = f.now_ms / window_ms.max(1);
            if let Some(n) = loops.identical_calls {
                plan.push(
                    Charge {
                        key: format!("same:{}:{slot}", f.fingerprint),
                        limit: n.into(),
                        amount: 1,
                        ttl_ms: 2 * window_ms,
                        enforce,
                    },
                    Rule::IdenticalCalls {
                        limit: n.into(),
                        window: loops.window,
                    },
                );
            }
            if let Some(n) = loops.repeated_failures {
                let key = format!("fail:{}:{slot}", f.fingerprint);
                plan.failure_key = Some((key.clone(), 2 * window_ms));
                plan.push(
                    Charge {
                        key,
                        limit: u64::from(n).saturating_sub(1),
                        amount: 0,
                        ttl_ms: 2 * window_ms,
                        enforce,
                    },
                    Rule::RepeatedFailures {
                        limit: n.into(),
                        window: loops.window,
                    },
                );
            }
            if let Some(run) = f.run_id {
                if let Some(n) = loops.calls_per_run {
                    plan.push(
                        Charge {
                            key: format!("runcalls:{agent}:{run}"),
                            limit: n.into(),
                            amount: 1,
                            ttl_ms: RUN_TTL_MS,
                            enforce,
                        },
                        Rule::CallsPerRun { limit: n.into() },
                    );
                }
                if let Some(repeats) = loops.cycle_repeats {
                    let keep = (3 * (repeats as usize + 1)).max(6);
                    plan.history = Some((format!("runhist:{agent}:{run}"), keep, RUN_TTL_MS));
                    plan.cycle = Some((repeats, loops.mode));
                }
            }
        }
        if let Some(v) = f.agent.guards.velocity {
            plan.velocity = Some((
                format!("velocity:{agent}:{minute}"),
                v.nanos_per_minute,
                v.mode,
            ));
        }
        plan
    }

    fn push(&mut self, charge: Charge, rule: Rule) {
        self.charges.push(charge);
        self.rules.push(rule);
    }

    /// The counter changes once the call's real cost and tokens are known: budgets and
    /// token windows move from the estimate to the truth; a failure is counted; spend
    /// goes into the velocity minute.
    pub fn settlement(
        &self,
        cost_nanos: u64,
        tokens: u64,
        failed: bool,
    ) -> Vec<(String, i64, u64)> {
        let mut out = Vec::new();
        for (charge, rule) in self.charges.iter().zip(&self.rules) {
            let actual = match rule {
                Rule::Budget { .. } => cost_nanos,
                Rule::Tokens { .. } => tokens,
                _ => continue,
            };
            let delta = actual as i64 - charge.amount as i64;
            // Budgets always report back (even unchanged): their new level decides alerts.
            if delta != 0 || matches!(rule, Rule::Budget { .. }) {
                out.push((charge.key.clone(), delta, charge.ttl_ms));
            }
        }
        if failed && let Some((key, ttl)) = &self.failure_key {
            out.push((key.clone(), 1, *ttl));
        }
        if let Some((key, _, _)) = &self.velocity
            && cost_nanos > 0
        {
            out.push((key.clone(), cost_nanos as i64, 2 * MINUTE_MS));
        }
        out
    }

    /// Undoes an admission (a call refused after its charges were applied).
    pub fn release(&self) -> Vec<(String, i64, u64)> {
        self.charges
            .iter()
            .filter(|c| c.amount > 0)
            .map(|c| (c.key.clone(), -(c.amount as i64), c.ttl_ms))
            .collect()
    }
}

/// The counter behind a budget of `scope` (`agent:ID`, `team:ID`) over `period` at
/// `now_ms`: its key, how long it lives, and when its window resets (`None` for a run,
/// which needs a run id). Shared by admission and by the rebuild of a store that lost
/// its data, so both always name the same counter.
pub fn budget_counter(
    scope: &str,
    period: Period,
    now_ms: u64,
    run_id: Option<&str>,
) -> Option<(String, u64, Option<u64>)> {
    let (label, resets) = period.window(now_ms);
    let key = match period {
        Period::Run => format!("budget:{scope}:run:{}", run_id?),
        _ => format!("budget:{scope}:{label}"),
    };
    let ttl = resets.map_or(RUN_TTL_MS, |r| r.saturating_sub(now_ms) + 86_400_000);
    Some((key, ttl, resets))
}

/// Why charge `i` of `plan` refused, for a person, with what is left and when it resets.
pub fn explain(rule: &Rule, current: u64, now_ms: u64) -> Denial {
    let secs = |reset: u64| reset.saturating_sub(now_ms).div_ceil(1000);
    let at = |ms: u64| {
        humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_millis(ms))
            .to_string()
    };
    match rule {
        Rule::Budget {
            scope,
            period,
            limit_nanos,
            resets_ms,
        } => {
            let left = limit_nanos.saturating_sub(current);
            let when = resets_ms.map_or("never resets (a run's budget)".to_string(), |r| {
                format!("resets at {}", at(r))
            });
            let mut d = Denial::new(
                Reason::BudgetExceeded,
                format!(
                    "{scope}'s {} budget of ${} is spent: ${} left, not enough for this call; it {when}",
                    period.adjective(),
                    format_usd(*limit_nanos),
                    format_usd(left)
                ),
            );
            d.hint("x-airlock-budget-remaining-usd", format_usd(left));
            if let Some(r) = resets_ms {
                d.hint("x-airlock-budget-reset", at(*r));
            }
            d
        }
        Rule::Requests {
            scope,
            limit,
            resets_ms,
        } => rate_denial(scope, *limit, "requests", 0, secs(*resets_ms)),
        Rule::Tokens {
            scope,
            limit,
            resets_ms,
        } => rate_denial(
            scope,
            *limit,
            "tokens",
            limit.saturating_sub(current),
            secs(*resets_ms),
        ),
        Rule::IdenticalCalls { limit, window } => Denial::new(
            Reason::LoopDetected,
            format!(
                "the same call was made {limit} times within {}: refusing the next to stop a loop",
                humantime::format_duration(*window)
            ),
        ),
        Rule::CallsPerRun { limit } => Denial::new(
            Reason::LoopDetected,
            format!("this run already made {limit} calls, its cap"),
        ),
        Rule::RepeatedFailures { limit, window } => Denial::new(
            Reason::LoopDetected,
            format!(
                "this exact call failed {limit} times within {}: not trying again",
                humantime::format_duration(*window)
            ),
        ),
    }
}

/// A rate-limit refusal with what the OpenAI SDKs read: `Retry-After` and the
/// `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` headers.
fn rate_denial(
    scope: &str,
    limit: u64,
    unit: &'static str,
    remaining: u64,
    retry_secs: u64,
) -> Denial {
    let mut d = Denial::new(
        Reason::RateLimited,
        format!("{scope} is over its {limit} {unit} per minute; retry in {retry_secs}s"),
    );
    d.retry_after(retry_secs);
    let [limit_h, remaining_h, reset_h] = if unit == "requests" {
        [
            "x-ratelimit-limit-requests",
            "x-ratelimit-remaining-requests",
            "x-ratelimit-reset-requests",
        ]
    } else {
        [
            "x-ratelimit-limit-tokens",
            "x-ratelimit-remaining-tokens",
            "x-ratelimit-reset-tokens",
        ]
    };
    d.hint(limit_h, limit.to_string());
    d.hint(remaining_h, remaining.to_string());
    d.hint(reset_h, format!("{retry_secs}s"));
    d
}

/// The period of a short cycle at the end of `recent` (newest last) that has repeated more
/// than `repeats` times: A→B→A→B… (period 2) or A→B→C→A→B→C… (period 3). A single call
/// repeated is the identical-calls rule's business, not a cycle.
pub fn cycle(recent: &[String], repeats: u32) -> Option<usize> {
    let need = repeats as usize + 1;
    (2..=3).find(|&p| {
        let len = p * need;
        if recent.len() < len {
            return false;
        }
        let tail = &recent[recent.len() - len..];
        let distinct = tail[..p]
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len()
            == p;
        distinct && (p..len).all(|i| tail[i] == tail[i - p])
    })
}

#[cfg(test)]
mod tests;
