//! Stage 3's shared half, the same for every protocol: the kill switch, budgets, rate
//! limits and the loop guard. The plan is pure (`airlock_core::admission`); the counters
//! store applies it atomically; settlement corrects reservations to the real cost off the
//! request path and trips the spend-velocity guard.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use airlock_core::admission::{Facts, Plan, Rule, cycle, explain};
use airlock_core::config::policy::GuardMode;
use airlock_core::config::{Agent, Config, CounterFailure};
use airlock_core::money::format_usd;
use airlock_core::window::Period;
use airlock_core::{Denial, Reason};
use airlock_state::{CountersError, Decision};
use serde_json::{Value, json};

use crate::alerts::Alert;
use crate::gateway::Gateway;
use crate::pipeline::CallGuard;

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The worst case of a call, reserved before it is forwarded.
#[derive(Clone, Copy, Debug, Default)]
pub struct Estimate {
    pub nanos: u64,
    pub tokens: u64,
}

/// What the controls of `agent` need from an adapter, so nothing is computed in vain.
pub struct Needs {
    /// A budget or a tokens-per-minute limit applies: estimate the call.
    pub estimate: bool,
    /// A loop rule applies: fingerprint the call.
    pub fingerprint: bool,
}

impl Needs {
    pub fn of(config: &Config, agent: &Agent) -> Needs {
        let tpm = agent.rates.overall.tokens_per_minute.is_some()
            || agent
                .rates
                .per_model
                .iter()
                .any(|(_, r)| r.tokens_per_minute.is_some());
        Needs {
            estimate: under_budget(config, agent) || tpm,
            fingerprint: agent.guards.loops.is_some(),
        }
    }
}

/// Whether a USD budget (the agent's, its team's or per run) covers `agent`'s calls.
pub fn under_budget(config: &Config, agent: &Agent) -> bool {
    !agent.budgets.is_empty()
        || agent
            .team
            .as_deref()
            .and_then(|t| config.team(t))
            .is_some_and(|t| !t.budgets.is_empty())
}

/// Admits the call or says why not. On success the plan rides with the call to settlement.
pub async fn admit(
    guard: &mut CallGuard,
    agent: &Agent,
    fingerprint: Option<String>,
    estimate: Estimate,
) -> Result<(), Denial> {
    let gateway = guard.gateway().clone();
    let runtime = guard.runtime().clone();
    let now = now_ms();
    let fingerprint = fingerprint.unwrap_or_default();
    let plan = {
        let call = guard.call();
        Plan::build(&Facts {
            agent,
            team: agent.team.as_deref().and_then(|t| runtime.config.team(t)),
            model: call.model.as_deref(),
            tool: call.tool.as_deref(),
            host: call.host.as_deref(),
            run_id: call.run_id.as_deref(),
            fingerprint: &fingerprint,
            estimate_nanos: estimate.nanos,
            estimate_tokens: estimate.tokens,
            now_ms: now,
        })
    };
    let decision = match gateway
        .counters
        .admit(&agent.id, &plan, &fingerprint, now)
        .await
    {
        Ok(d) => d,
        Err(e) => {
            gateway.metrics.counters_failure();
            if matches!(e, CountersError::Empty) {
                crate::rebuild::start(gateway.clone());
            }
            return match runtime.config.state.on_counter_failure {
                CounterFailure::FailClosed => {
                    tracing::error!(error = %e, "counters unavailable: refusing (fail_closed)");
                    Err(Denial::new(
                        Reason::CountersUnavailable,
                        "budgets and limits cannot be checked right now",
                    ))
                }
                CounterFailure::FailOpen => {
                    tracing::warn!(error = %e, "counters unavailable: letting the call through (fail_open)");
                    Ok(())
                }
            };
        }
    };
    match decision {
        Decision::Suspended => Err(crate::gateway::suspended(&agent.id)),
        Decision::Refused { index, current } => {
            alert_refusal(&gateway, &agent.id, &plan, index, current, now);
            Err(explain(&plan.rules[index], current, now))
        }
        Decision::Admitted { flagged, recent } => {
            let mut would_deny: Vec<Value> = flagged
                .iter()
                .map(|&(i, current)| {
                    Value::from(explain(&plan.rules[i], current, now).reason.code())
                })
                .collect();
            if let Some((repeats, mode)) = plan.cycle
                && let Some(period) = cycle(&recent, repeats)
            {
                let denial = Denial::new(
                    Reason::LoopDetected,
                    format!(
                        "this run keeps cycling through the same {period} calls (more than {repeats} rounds)"
                    ),
                );
                if mode == GuardMode::Enforce {
                    let alert = Alert {
                        kind: "loop_detected",
                        agent: agent.id.clone(),
                        message: format!("agent `{}`: {}", agent.id, denial.message),
                        detail: json!({ "rule": "cycle", "period": period }),
                    };
                    let key = plan
                        .history
                        .as_ref()
                        .map_or_else(String::new, |h| h.0.clone());
                    gateway.alert(alert, key, 60_000);
                    if let Err(e) = gateway.counters.adjust(&plan.release(), now).await {
                        tracing::warn!(error = %e, "could not release a refused call's charges");
                    }
                    return Err(denial);
                }
                would_deny.push(Value::from(denial.reason.code()));
            }
            let call = guard.call();
            if !would_deny.is_empty() {
                // Monitor mode: served, and the event says what enforcement would have done.
                call.extra
                    .insert("would_deny".into(), Value::Array(would_deny));
            }
            call.plan = Some(plan);
            Ok(())
        }
    }
}

/// After a call is settled: reservations become the real cost, failures are counted, and
/// an agent spending faster than its velocity limit is suspended. Runs off the request path.
pub fn settled(
    gateway: Arc<Gateway>,
    agent: String,
    plan: Plan,
    cost_nanos: u64,
    tokens: u64,
    failed: bool,
) {
    let changes = plan.settlement(cost_nanos, tokens, failed);
    if changes.is_empty() {
        return;
    }
    tokio::spawn(async move {
        let values = match gateway.counters.adjust(&changes, now_ms()).await {
            Ok(v) => v,
            Err(e) => {
                gateway.metrics.counters_failure();
                tracing::error!(error = %e, "counters unavailable: settlement not applied");
                return;
            }
        };
        for ((key, _, ttl), value) in changes.iter().zip(&values) {
            let rule = plan
                .charges
                .iter()
                .position(|c| &c.key == key)
                .map(|i| &plan.rules[i]);
            if let Some(Rule::Budget {
                scope,
                period,
                limit_nanos,
                ..
            }) = rule
            {
                let spent = (*value).max(0) as u64;
                for pct in [80, 100] {
                    if *limit_nanos > 0
                        && u128::from(spent) * 100 >= u128::from(*limit_nanos) * u128::from(pct)
                    {
                        budget_alert(
                            &gateway,
                            &agent,
                            key,
                            scope,
                            *period,
                            *limit_nanos,
                            spent,
                            *ttl,
                            pct,
                        );
                    }
                }
            }
        }
        let Some((key, limit, mode)) = &plan.velocity else {
            return;
        };
        let spent = changes
            .iter()
            .zip(&values)
            .find(|((k, ..), _)| k == key)
            .map(|(_, v)| *v as u64);
        if let Some(spent) = spent.filter(|s| s > limit) {
            let why = format!(
                "spent ${} within a minute, over its ${}/minute velocity limit",
                format_usd(spent),
                format_usd(*limit)
            );
            match mode {
                GuardMode::Enforce => {
                    let alert = Alert {
                        kind: "velocity_tripped",
                        agent: agent.clone(),
                        message: format!("agent `{agent}` {why}"),
                        detail: json!({ "spent_nanos": spent, "limit_nanos": limit }),
                    };
                    gateway.alert(alert, key.clone(), 120_000);
                    gateway.suspend(&agent, &why).await
                }
                GuardMode::Monitor => {
                    tracing::warn!(agent = %agent, "velocity guard (monitor): {why}")
                }
            }
        }
    });
}

/// A budget at `pct`% of its limit, alerted once per window. `spent` counts what is
/// committed (settled spend and reservations in flight).
#[allow(clippy::too_many_arguments)]
fn budget_alert(
    gateway: &Arc<Gateway>,
    agent: &str,
    key: &str,
    scope: &str,
    period: Period,
    limit: u64,
    spent: u64,
    ttl_ms: u64,
    pct: u64,
) {
    let state = if pct >= 100 {
        "exhausted: calls are refused until it resets".to_string()
    } else {
        format!("at {pct}%")
    };
    let alert = Alert {
        kind: "budget_threshold",
        agent: agent.into(),
        message: format!(
            "{scope}'s {} budget is {state} (${} of ${})",
            period.adjective(),
            format_usd(spent),
            format_usd(limit)
        ),
        detail: json!({ "scope": scope, "period": period.as_str(), "threshold": pct, "spent_nanos": spent, "limit_nanos": limit }),
    };
    gateway.alert(alert, format!("{key}:{pct}"), ttl_ms);
}

/// A refusal worth an operator's attention: a budget exhausted, a loop stopped.
fn alert_refusal(
    gateway: &Arc<Gateway>,
    agent: &str,
    plan: &Plan,
    index: usize,
    current: u64,
    now: u64,
) {
    let charge = &plan.charges[index];
    let message = explain(&plan.rules[index], current, now).message;
    match &plan.rules[index] {
        Rule::Budget {
            scope,
            period,
            limit_nanos,
            ..
        } => {
            // A refused reservation means the budget cannot cover another call: exhausted.
            budget_alert(
                gateway,
                agent,
                &charge.key,
                scope,
                *period,
                *limit_nanos,
                current,
                charge.ttl_ms,
                100,
            )
        }
        Rule::IdenticalCalls { .. } | Rule::CallsPerRun { .. } | Rule::RepeatedFailures { .. } => {
            let alert = Alert {
                kind: "loop_detected",
                agent: agent.into(),
                message: format!("agent `{agent}`: {message}"),
                detail: json!({ "counter": charge.key }),
            };
            gateway.alert(alert, charge.key.clone(), charge.ttl_ms);
        }
        Rule::Requests { .. } | Rule::Tokens { .. } => {}
    }
}
