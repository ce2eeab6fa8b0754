//! Counters rebuilt from the ledger: at start (memory counters begin empty; a shared store
//! may have lost its data) and whenever a shared store reports it is empty (Redis
//! restarted without persistence). Budgets resume from what the ledger says was spent,
//! never silently from zero; suspensions come back too. Runs off the request path.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use airlock_core::admission::{RUN_TTL_MS, budget_counter};
use airlock_core::config::policy::Budget;
use airlock_core::window::Period;
use airlock_state::{GroupBy, UsageQuery};

use crate::controls::now_ms;
use crate::gateway::Gateway;

/// Starts a rebuild unless one is running.
pub fn start(gateway: Arc<Gateway>) {
    if gateway.rebuilding.swap(true, Ordering::AcqRel) {
        return;
    }
    tokio::spawn(async move {
        if let Err(e) = rebuild(&gateway).await {
            tracing::error!("rebuilding counters from the ledger failed: {e}");
        }
        gateway.rebuilding.store(false, Ordering::Release);
    });
}

/// Computes every budget counter of the current windows from the ledger and hands them,
/// with the suspensions, to the counters store (which ignores them if it is not empty).
pub async fn rebuild(gateway: &Gateway) -> Result<(), String> {
    let runtime = gateway.runtime();
    let config = &runtime.config;
    let now = now_ms();
    let agents: Vec<(&str, &[Budget])> = config
        .agents
        .iter()
        .map(|a| (a.id.as_str(), a.budgets.as_slice()))
        .collect();
    let teams: Vec<(&str, &[Budget])> = config
        .teams
        .iter()
        .map(|t| (t.id.as_str(), t.budgets.as_slice()))
        .collect();

    let mut values = Vec::new();
    for (scope, scopes, by, by_run) in [
        ("agent", &agents, GroupBy::Agent, GroupBy::AgentRun),
        ("team", &teams, GroupBy::Team, GroupBy::TeamRun),
    ] {
        let has = |p: Period| scopes.iter().any(|(_, b)| b.iter().any(|x| x.period == p));
        for period in [Period::Day, Period::Month] {
            let Some(since) = period.start(now).filter(|_| has(period)) else {
                continue;
            };
            let spent = spend(gateway, by, since).await?;
            for (id, _) in scopes
                .iter()
                .filter(|(_, b)| b.iter().any(|x| x.period == period))
            {
                if let (Some(&nanos), Some((key, ttl, _))) = (
                    spent.get(*id),
                    budget_counter(&format!("{scope}:{id}"), period, now, None),
                ) {
                    values.push((key, nanos, ttl));
                }
            }
        }
        if has(Period::Run) {
            // Keys are `id:run`; ids come from config, so match them as prefixes (a run id
            // may itself contain ':').
            for (key, nanos) in spend(gateway, by_run, now.saturating_sub(RUN_TTL_MS)).await? {
                let run_of = |id: &str| {
                    key.strip_prefix(id)
                        .and_then(|r| r.strip_prefix(':'))
                        .map(str::to_string)
                };
                for (id, _) in scopes
                    .iter()
                    .filter(|(_, b)| b.iter().any(|x| x.period == Period::Run))
                {
                    if let Some(run) = run_of(id)
                        && let Some((k, ttl, _)) =
                            budget_counter(&format!("{scope}:{id}"), Period::Run, now, Some(&run))
                    {
                        values.push((k, nanos, ttl));
                    }
                }
            }
        }
    }
    let suspended: Vec<String> = gateway
        .ledger
        .suspensions()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|s| s.agent)
        .collect();
    let applied = gateway
        .counters
        .restore(&values, &suspended, now)
        .await
        .map_err(|e| e.to_string())?;
    if applied {
        tracing::info!(
            counters = values.len(),
            suspended = suspended.len(),
            "counters rebuilt from the ledger"
        );
    }
    Ok(())
}

async fn spend(
    gateway: &Gateway,
    group_by: GroupBy,
    since_ms: u64,
) -> Result<HashMap<String, i64>, String> {
    let rows = gateway
        .ledger
        .usage(UsageQuery {
            group_by,
            since_ms,
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(rows
        .into_iter()
        .filter_map(|r| Some((r.key?, r.cost_nanos as i64)))
        .filter(|(_, n)| *n > 0)
        .collect())
}
