//! Counters in this process's memory: one lock around plain maps, entries expiring lazily
//! and in a periodic sweep. Right for one replica; replicas share Redis instead.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use airlock_core::admission::Plan;

use super::Decision;

#[derive(Default)]
pub struct MemoryCounters {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// key -> (value, expires at ms)
    values: HashMap<String, (i64, u64)>,
    lists: HashMap<String, (VecDeque<String>, u64)>,
    suspended: HashSet<String>,
    ops: u64,
}

/// Operations between sweeps of expired entries.
const SWEEP_EVERY: u64 = 4096;

impl State {
    fn value(&self, key: &str, now_ms: u64) -> i64 {
        match self.values.get(key) {
            Some(&(v, expires)) if expires > now_ms => v,
            _ => 0,
        }
    }

    fn add(&mut self, key: &str, delta: i64, ttl_ms: u64, now_ms: u64) -> i64 {
        let entry = self.values.entry(key.to_string()).or_insert((0, 0));
        if entry.1 <= now_ms {
            // Expired or new: a fresh window starts now.
            *entry = (0, now_ms + ttl_ms);
        }
        entry.0 += delta;
        entry.0
    }

    fn tick(&mut self, now_ms: u64) {
        self.ops += 1;
        if self.ops.is_multiple_of(SWEEP_EVERY) {
            self.values.retain(|_, (_, expires)| *expires > now_ms);
            self.lists.retain(|_, (_, expires)| *expires > now_ms);
        }
    }
}

impl MemoryCounters {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than refusing every call would, so carry on with the data.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn admit(&self, agent: &str, plan: &Plan, fingerprint: &str, now_ms: u64) -> Decision {
        let mut s = self.lock();
        s.tick(now_ms);
        if s.suspended.contains(agent) {
            return Decision::Suspended;
        }
        let mut flagged = Vec::new();
        for (i, c) in plan.charges.iter().enumerate() {
            let current = s.value(&c.key, now_ms).max(0) as u64;
            if current.saturating_add(c.amount) > c.limit {
                if c.enforce {
                    return Decision::Refused { index: i, current };
                }
                flagged.push((i, current));
            }
        }
        for c in plan.charges.iter().filter(|c| c.amount > 0) {
            s.add(&c.key, c.amount as i64, c.ttl_ms, now_ms);
        }
        let recent = match &plan.history {
            Some((key, keep, ttl)) => {
                let entry = s
                    .lists
                    .entry(key.clone())
                    .or_insert_with(|| (VecDeque::new(), 0));
                if entry.1 <= now_ms {
                    entry.0.clear();
                }
                entry.1 = now_ms + ttl;
                entry.0.push_back(fingerprint.to_string());
                while entry.0.len() > *keep {
                    entry.0.pop_front();
                }
                entry.0.iter().cloned().collect()
            }
            None => Vec::new(),
        };
        Decision::Admitted { flagged, recent }
    }

    pub fn adjust(&self, changes: &[(String, i64, u64)], now_ms: u64) -> Vec<i64> {
        let mut s = self.lock();
        s.tick(now_ms);
        changes
            .iter()
            .map(|(key, delta, ttl)| s.add(key, *delta, *ttl, now_ms))
            .collect()
    }

    /// Sets counters rebuilt from the ledger (a process restart emptied them).
    pub fn restore(&self, values: &[(String, i64, u64)], suspended: &[String], now_ms: u64) {
        let mut s = self.lock();
        for (key, value, ttl) in values {
            s.values.insert(key.clone(), (*value, now_ms + ttl));
        }
        s.suspended.extend(suspended.iter().cloned());
    }

    pub fn set_suspended(&self, agent: &str, suspended: bool) {
        let mut s = self.lock();
        if suspended {
            s.suspended.insert(agent.to_string());
        } else {
            s.suspended.remove(agent);
        }
    }

    pub fn suspended(&self) -> Vec<String> {
        let mut list: Vec<String> = self.lock().suspended.iter().cloned().collect();
        list.sort();
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_core::admission::{Charge, Rule};

    fn plan(charges: Vec<Charge>) -> Plan {
        let rules = charges
            .iter()
            .map(|_| Rule::CallsPerRun { limit: 0 })
            .collect();
        Plan {
            charges,
            rules,
            ..Plan::default()
        }
    }

    fn charge(key: &str, limit: u64, amount: u64, enforce: bool) -> Charge {
        Charge {
            key: key.into(),
            limit,
            amount,
            ttl_ms: 1_000,
            enforce,
        }
    }

    #[test]
    fn all_or_nothing() {
        let m = MemoryCounters::default();
        let p = plan(vec![charge("a", 10, 4, true), charge("b", 5, 4, true)]);
        assert!(matches!(
            m.admit("x", &p, "f", 0),
            Decision::Admitted { .. }
        ));
        // b would reach 8 > 5: refused, and a must not have moved either.
        assert_eq!(
            m.admit("x", &p, "f", 1),
            Decision::Refused {
                index: 1,
                current: 4
            }
        );
        assert_eq!(m.adjust(&[("a".into(), 0, 1_000)], 2), vec![4]);
    }

    #[test]
    fn monitor_mode_flags_and_still_counts() {
        let m = MemoryCounters::default();
        let p = plan(vec![charge("a", 1, 1, false)]);
        m.admit("x", &p, "f", 0);
        assert_eq!(
            m.admit("x", &p, "f", 0),
            Decision::Admitted {
                flagged: vec![(0, 1)],
                recent: vec![]
            }
        );
    }

    #[test]
    fn windows_expire_and_suspension_wins() {
        let m = MemoryCounters::default();
        let p = plan(vec![charge("a", 1, 1, true)]);
        m.admit("x", &p, "f", 0);
        assert!(matches!(
            m.admit("x", &p, "f", 999),
            Decision::Refused { .. }
        ));
        assert!(
            matches!(m.admit("x", &p, "f", 1_000), Decision::Admitted { .. }),
            "a new window"
        );
        m.set_suspended("x", true);
        assert_eq!(m.admit("x", &plan(vec![]), "f", 1_001), Decision::Suspended);
        assert_eq!(m.suspended(), vec!["x".to_string()]);
        m.set_suspended("x", false);
        assert!(m.suspended().is_empty());
    }

    #[test]
    fn run_history_keeps_the_newest() {
        let m = MemoryCounters::default();
        let p = Plan {
            history: Some(("h".into(), 3, 10_000)),
            ..Plan::default()
        };
        for f in ["a", "b", "c", "d"] {
            m.admit("x", &p, f, 0);
        }
        let Decision::Admitted { recent, .. } = m.admit("x", &p, "e", 0) else {
            panic!()
        };
        assert_eq!(recent, ["c", "d", "e"]);
    }
}
