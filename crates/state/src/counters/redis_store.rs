//! Counters shared by every replica in Redis. Each admission is one Lua script (one round
//! trip, atomic on the server): the kill switch, every charge checked, then all applied.
//! A marker key tells a Redis that lost its data (restarted without persistence) from one
//! that is merely quiet: without it, admissions report [`CountersError::Empty`] until the
//! gateway has rebuilt the budget counters from the ledger.

use std::time::Duration;

use airlock_core::admission::Plan;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script, Value};

use super::{CountersError, Decision};

const READY: &str = "airlock:ready";
const SUSPENDED: &str = "airlock:suspended";

/// KEYS: ready marker, suspended set, charge keys…, [history key].
/// ARGV: agent, n, then per charge (limit, amount, ttl_ms, enforce), then [item, keep, ttl_ms].
const ADMIT: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return {-3} end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return {-1} end
local n = tonumber(ARGV[2])
local flagged = {}
for i = 1, n do
  local a = 2 + (i - 1) * 4
  local current = tonumber(redis.call('GET', KEYS[i + 2]) or '0')
  if current < 0 then current = 0 end
  if current + tonumber(ARGV[a + 2]) > tonumber(ARGV[a + 1]) then
    if ARGV[a + 4] == '1' then return {-2, i - 1, current} end
    table.insert(flagged, i - 1)
    table.insert(flagged, current)
  end
end
for i = 1, n do
  local a = 2 + (i - 1) * 4
  local amount = tonumber(ARGV[a + 2])
  if amount > 0 then
    redis.call('INCRBY', KEYS[i + 2], amount)
    if redis.call('PTTL', KEYS[i + 2]) < 0 then redis.call('PEXPIRE', KEYS[i + 2], ARGV[a + 3]) end
  end
end
local recent = {}
if #KEYS > n + 2 then
  local h = KEYS[n + 3]
  local a = 2 + n * 4
  redis.call('RPUSH', h, ARGV[a + 1])
  redis.call('LTRIM', h, -tonumber(ARGV[a + 2]), -1)
  redis.call('PEXPIRE', h, ARGV[a + 3])
  recent = redis.call('LRANGE', h, 0, -1)
end
return {0, flagged, recent}
"#;

/// KEYS: counters. ARGV: per key (delta, ttl_ms). Returns the new values.
const ADJUST: &str = r#"
local out = {}
for i = 1, #KEYS do
  out[i] = redis.call('INCRBY', KEYS[i], ARGV[2 * i - 1])
  if redis.call('PTTL', KEYS[i]) < 0 then redis.call('PEXPIRE', KEYS[i], ARGV[2 * i]) end
end
return out
"#;

/// KEYS: ready marker, suspended set, counters… ARGV: per counter (value, ttl_ms), then
/// suspended agents. Does nothing if the store is already ready (another replica rebuilt
/// it first); otherwise sets everything and then the marker, so admissions resume only on a
/// complete rebuild.
const RESTORE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local n = #KEYS - 2
for i = 1, n do
  redis.call('SET', KEYS[i + 2], ARGV[2 * i - 1], 'PX', ARGV[2 * i])
end
for j = 2 * n + 1, #ARGV do
  redis.call('SADD', KEYS[2], ARGV[j])
end
redis.call('SET', KEYS[1], '1')
return 1
"#;

pub struct RedisCounters {
    connection: ConnectionManager,
    admit: Script,
    adjust: Script,
    restore: Script,
}

fn unavailable(e: redis::RedisError) -> CountersError {
    CountersError::Unavailable(e.to_string())
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::BulkString(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}

impl RedisCounters {
    /// Connects lazily: a Redis that is down at start is the same as one that goes down
    /// later (the configured failure mode applies), and the manager reconnects by itself.
    pub fn open(url: &str) -> Result<RedisCounters, CountersError> {
        let client = Client::open(url).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_millis(500)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let connection =
            ConnectionManager::new_lazy_with_config(client, config).map_err(unavailable)?;
        Ok(RedisCounters {
            connection,
            admit: Script::new(ADMIT),
            adjust: Script::new(ADJUST),
            restore: Script::new(RESTORE),
        })
    }

    pub async fn admit(
        &self,
        agent: &str,
        plan: &Plan,
        fingerprint: &str,
    ) -> Result<Decision, CountersError> {
        let mut inv = self.admit.prepare_invoke();
        inv.key(READY).key(SUSPENDED);
        inv.arg(agent).arg(plan.charges.len());
        for c in &plan.charges {
            inv.key(&c.key)
                .arg(c.limit)
                .arg(c.amount)
                .arg(c.ttl_ms)
                .arg(if c.enforce { "1" } else { "0" });
        }
        if let Some((key, keep, ttl)) = &plan.history {
            inv.key(key).arg(fingerprint).arg(*keep).arg(*ttl);
        }
        let mut con = self.connection.clone();
        let answer: Vec<Value> = inv.invoke_async(&mut con).await.map_err(unavailable)?;
        match answer.first().map(int) {
            Some(-3) => Err(CountersError::Empty),
            Some(-1) => Ok(Decision::Suspended),
            Some(-2) => Ok(Decision::Refused {
                index: answer.get(1).map_or(0, int) as usize,
                current: answer.get(2).map_or(0, int).max(0) as u64,
            }),
            Some(0) => {
                let list = |v: Option<&Value>| match v {
                    Some(Value::Array(items)) => items.clone(),
                    _ => Vec::new(),
                };
                let flagged = list(answer.get(1))
                    .chunks(2)
                    .map(|p| (int(&p[0]) as usize, int(&p[1]).max(0) as u64))
                    .collect();
                let recent = list(answer.get(2))
                    .iter()
                    .map(|v| match v {
                        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                        _ => String::new(),
                    })
                    .collect();
                Ok(Decision::Admitted { flagged, recent })
            }
            _ => Err(CountersError::Unavailable(
                "unexpected answer from the admission script".into(),
            )),
        }
    }

    pub async fn adjust(&self, changes: &[(String, i64, u64)]) -> Result<Vec<i64>, CountersError> {
        let mut inv = self.adjust.prepare_invoke();
        for (key, delta, ttl) in changes {
            inv.key(key).arg(*delta).arg(*ttl);
        }
        let mut con = self.connection.clone();
        let values: Vec<i64> = inv.invoke_async(&mut con).await.map_err(unavailable)?;
        Ok(values)
    }

    /// Sets counters rebuilt from the ledger and the suspensions, then marks the store
    /// ready; `false` when it already was.
    pub async fn restore(
        &self,
        values: &[(String, i64, u64)],
        suspended: &[String],
    ) -> Result<bool, CountersError> {
        let mut inv = self.restore.prepare_invoke();
        inv.key(READY).key(SUSPENDED);
        for (key, value, ttl) in values {
            inv.key(key).arg(*value).arg(*ttl);
        }
        for agent in suspended {
            inv.arg(agent);
        }
        let mut con = self.connection.clone();
        let done: i64 = inv.invoke_async(&mut con).await.map_err(unavailable)?;
        Ok(done == 1)
    }

    pub async fn set_suspended(&self, agent: &str, suspended: bool) -> Result<(), CountersError> {
        let mut con = self.connection.clone();
        let cmd = if suspended { "SADD" } else { "SREM" };
        let _: i64 = redis::cmd(cmd)
            .arg(SUSPENDED)
            .arg(agent)
            .query_async(&mut con)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    pub async fn suspended(&self) -> Result<Vec<String>, CountersError> {
        let mut con = self.connection.clone();
        let mut list: Vec<String> = redis::cmd("SMEMBERS")
            .arg(SUSPENDED)
            .query_async(&mut con)
            .await
            .map_err(unavailable)?;
        list.sort();
        Ok(list)
    }
}
