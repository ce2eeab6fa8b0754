//! The bounded log of received requests that tests inspect.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use serde_json::{Map, Value};

/// Older requests are dropped past this, so a long benchmark can't grow
/// memory without bound.
const CAPACITY: usize = 1000;

#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Lowercase names, in arrival order; repeated headers appear repeatedly.
    pub headers: Vec<(String, String)>,
    /// `Null` when the body was empty or not JSON.
    pub body: Value,
}

impl Recorded {
    /// The shape served by `GET /mock/requests`; repeated headers are joined
    /// with ", " as HTTP allows.
    pub(crate) fn to_json(&self) -> Value {
        let mut headers = Map::new();
        for (name, value) in &self.headers {
            match headers.get_mut(name) {
                Some(Value::String(joined)) => {
                    joined.push_str(", ");
                    joined.push_str(value);
                }
                _ => {
                    headers.insert(name.clone(), Value::String(value.clone()));
                }
            }
        }
        serde_json::json!({
            "method": self.method,
            "path": self.path,
            "headers": headers,
            "body": self.body,
        })
    }
}

pub(crate) struct Recorder {
    enabled: bool,
    log: Mutex<VecDeque<Recorded>>,
}

impl Recorder {
    pub fn new(enabled: bool) -> Recorder {
        Recorder {
            enabled,
            log: Mutex::new(VecDeque::new()),
        }
    }

    /// Lets the caller skip building a `Recorded` on the benchmark path.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn push(&self, request: Recorded) {
        let mut log = self.lock();
        if log.len() == CAPACITY {
            log.pop_front();
        }
        log.push_back(request);
    }

    pub fn snapshot(&self) -> Vec<Recorded> {
        self.lock().iter().cloned().collect()
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    // A panic while holding the lock can't leave the deque inconsistent, so
    // a poisoned lock is still safe to use.
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Recorded>> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(n: usize) -> Recorded {
        Recorded {
            method: "POST".into(),
            path: format!("/{n}"),
            headers: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
            body: Value::Null,
        }
    }

    #[test]
    fn keeps_the_most_recent() {
        let recorder = Recorder::new(true);
        for n in 0..CAPACITY + 5 {
            recorder.push(request(n));
        }
        let all = recorder.snapshot();
        assert_eq!(all.len(), CAPACITY);
        assert_eq!(all[0].path, "/5");
        assert_eq!(all[0].to_json()["headers"]["a"], "1, 2");
    }
}
