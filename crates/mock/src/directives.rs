//! Per-request behaviour switches, so tests can make the mock misbehave.
//!
//! Directives come from `<key>=<value>` path segments before `/v1/` (so a
//! provider's base URL alone can select a behaviour) and from `x-mock-<key>`
//! headers, which are applied second and therefore win.

use std::time::Duration;

use hyper::{HeaderMap, StatusCode};

/// Larger replies are refused: the reply text is built in memory.
const MAX_WORDS: u64 = 1_000_000;

#[derive(Clone, Debug)]
pub(crate) struct Directives {
    /// A forced non-2xx status, answered with an error body.
    pub status: Option<StatusCode>,
    pub delay: Duration,
    pub words: u64,
    pub chunk_delay: Duration,
    pub disconnect_after: Option<usize>,
    pub cached_tokens: u64,
    pub reasoning_tokens: u64,
    pub cache_write_tokens: u64,
    /// Input tokens to report instead of the count of words, so a test can play a
    /// tokenizer far denser than the mock's own (one token per byte).
    pub input_tokens: Option<u64>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            status: None,
            delay: Duration::ZERO,
            words: 8,
            chunk_delay: Duration::ZERO,
            disconnect_after: None,
            cached_tokens: 0,
            reasoning_tokens: 0,
            cache_write_tokens: 0,
            input_tokens: None,
        }
    }
}

impl Directives {
    /// `prefix` is the part of the path before `/v1/`. The error names the
    /// offending directive; a typo should fail loudly rather than be ignored.
    pub fn parse(prefix: &str, headers: &HeaderMap) -> Result<Directives, String> {
        let mut d = Directives::default();
        for segment in prefix.split('/') {
            if let Some((key, value)) = segment.split_once('=') {
                d.set(key, value)?;
            }
        }
        for (name, value) in headers {
            if let Some(key) = name.as_str().strip_prefix("x-mock-") {
                let value = value
                    .to_str()
                    .map_err(|_| format!("mock directive {key} is not ASCII"))?;
                d.set(key, value)?;
            }
        }
        Ok(d)
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let invalid = || format!("invalid mock directive {key}={value}");
        let number = || value.trim().parse::<u64>().map_err(|_| invalid());
        match key {
            "status" => {
                let code = u16::try_from(number()?).map_err(|_| invalid())?;
                if !(200..=599).contains(&code) {
                    return Err(invalid());
                }
                let status = StatusCode::from_u16(code).map_err(|_| invalid())?;
                self.status = (!status.is_success()).then_some(status);
            }
            "delay-ms" => self.delay = Duration::from_millis(number()?),
            "words" => {
                let words = number()?;
                if words > MAX_WORDS {
                    return Err(invalid());
                }
                self.words = words;
            }
            "chunk-delay-ms" => self.chunk_delay = Duration::from_millis(number()?),
            "disconnect-after" => {
                self.disconnect_after = Some(usize::try_from(number()?).map_err(|_| invalid())?);
            }
            "cached-tokens" => self.cached_tokens = number()?,
            "reasoning-tokens" => self.reasoning_tokens = number()?,
            "cache-write-tokens" => self.cache_write_tokens = number()?,
            "input-tokens" => self.input_tokens = Some(number()?),
            // Unknown keys are ignored so that unrelated `a=b` path segments
            // or headers from other tools don't break requests.
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn headers_override_path() {
        let mut headers = HeaderMap::new();
        headers.insert("x-mock-words", HeaderValue::from_static("3"));
        let d = Directives::parse("/words=5/status=503", &headers).unwrap();
        assert_eq!(d.words, 3);
        assert_eq!(d.status, Some(StatusCode::SERVICE_UNAVAILABLE));
    }

    #[test]
    fn bad_values_are_rejected() {
        let headers = HeaderMap::new();
        assert!(Directives::parse("/status=abc", &headers).is_err());
        assert!(Directives::parse("/status=99", &headers).is_err());
        assert!(Directives::parse("/words=99999999999", &headers).is_err());
        assert!(Directives::parse("/other=thing", &headers).is_ok());
    }
}
