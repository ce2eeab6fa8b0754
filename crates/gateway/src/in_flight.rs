//! Calls in flight per agent, capped by `limits.max_concurrent_per_agent`: one agent that
//! opens thousands of requests and never finishes them holds its own share of the gateway,
//! not everyone's. A permit is taken once the agent is known, before its body is read, and
//! given back when the call settles (or its handler is dropped).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use airlock_core::config::Agent;

#[derive(Default)]
pub struct InFlight {
    by_agent: Mutex<HashMap<String, u32>>,
}

/// One of an agent's calls in flight; dropping it frees the place.
pub struct AgentPermit {
    table: Arc<InFlight>,
    agent: Arc<Agent>,
}

impl InFlight {
    /// A place for one more call of `agent`, unless it already has `cap` in flight.
    pub fn acquire(self: &Arc<Self>, agent: &Arc<Agent>, cap: u32) -> Option<AgentPermit> {
        let mut by_agent = self.by_agent.lock().unwrap_or_else(|p| p.into_inner());
        match by_agent.get_mut(&agent.id) {
            Some(n) if *n >= cap => return None,
            Some(n) => *n += 1,
            None => {
                by_agent.insert(agent.id.clone(), 1);
            }
        }
        Some(AgentPermit {
            table: self.clone(),
            agent: agent.clone(),
        })
    }

    /// Calls of `agent` in flight now.
    pub fn of(&self, agent: &str) -> u32 {
        let by_agent = self.by_agent.lock().unwrap_or_else(|p| p.into_inner());
        by_agent.get(agent).copied().unwrap_or(0)
    }
}

impl Drop for AgentPermit {
    fn drop(&mut self) {
        let mut by_agent = self
            .table
            .by_agent
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = by_agent.get_mut(&self.agent.id) {
            *n -= 1;
            if *n == 0 {
                by_agent.remove(&self.agent.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: &str) -> Arc<Agent> {
        let config =
            airlock_core::Config::parse(&format!("agents:\n  - id: {id}\n"), &|_| None).unwrap();
        Arc::new(config.agents[0].clone())
    }

    #[test]
    fn an_agent_at_its_cap_is_refused_and_others_are_not() {
        let table = Arc::new(InFlight::default());
        let (greedy, other) = (agent("greedy"), agent("other"));
        let mut held: Vec<_> = (0..3).map(|_| table.acquire(&greedy, 3).unwrap()).collect();
        assert!(table.acquire(&greedy, 3).is_none());
        assert!(table.acquire(&other, 3).is_some());
        held.pop();
        assert_eq!(table.of("greedy"), 2);
        assert!(table.acquire(&greedy, 3).is_some());
    }

    #[test]
    fn permits_given_back_leave_nothing_behind() {
        let table = Arc::new(InFlight::default());
        let a = agent("a");
        drop(table.acquire(&a, 1));
        assert_eq!(table.of("a"), 0);
        assert!(table.by_agent.lock().unwrap().is_empty());
    }
}
