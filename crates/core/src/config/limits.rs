//! `limits:`: how much one request, connection or agent may take of the gateway. Every
//! bound has a default, so an agent that holds connections open or trickles its bytes is
//! cut off even when the operator never wrote the section.

use std::time::Duration;

use super::ConfigError;
use super::raw::RawLimits;
use super::units::Span;

#[derive(Clone, Debug)]
pub struct Limits {
    pub max_body: u64,
    /// Output tokens reserved (and sent upstream as the cap) when a request sets none.
    pub max_output_tokens: u32,
    /// Input tokens reserved when a request's prompt has no bound in its body (a
    /// `previous_response_id`, a file id): the operator's cap, not a proof.
    pub max_reserve_tokens: u64,
    pub upstream_timeout: Duration,
    /// Calls one agent may have in flight at once, on every route together.
    pub max_concurrent_per_agent: u32,
    /// HTTP/2 streams one connection may have open at once.
    pub h2_max_streams: u32,
    /// How long a request's headers may take, from their first byte (from the connection's
    /// opening for its first request).
    pub header_timeout: Duration,
    /// The longest pause between two pieces of a request body.
    pub body_timeout: Duration,
    /// How long a connection with no request in flight stays open.
    pub idle_timeout: Duration,
}

impl Limits {
    pub(super) fn normalise(text: &str, raw: &RawLimits) -> Result<Limits, ConfigError> {
        Ok(Limits {
            max_body: raw.max_body.map_or(10 << 20, |b| b.0),
            max_output_tokens: raw.max_output_tokens.unwrap_or(4096),
            max_reserve_tokens: raw.max_reserve_tokens.unwrap_or(200_000),
            upstream_timeout: raw
                .upstream_timeout
                .map_or(Duration::from_secs(120), |s| s.0),
            max_concurrent_per_agent: at_least_one(
                text,
                "max_concurrent_per_agent",
                raw.max_concurrent_per_agent,
                1024,
            )?,
            h2_max_streams: at_least_one(text, "h2_max_streams", raw.h2_max_streams, 128)?,
            header_timeout: longer_than_zero(text, "header_timeout", raw.header_timeout, 10)?,
            body_timeout: longer_than_zero(text, "body_timeout", raw.body_timeout, 10)?,
            idle_timeout: longer_than_zero(text, "idle_timeout", raw.idle_timeout, 60)?,
        })
    }
}

/// `limits.<key>` or its default; 0 would refuse every call, so it is an error.
fn at_least_one(
    text: &str,
    key: &str,
    value: Option<u32>,
    default: u32,
) -> Result<u32, ConfigError> {
    match value {
        Some(0) => Err(ConfigError::about(
            text,
            key,
            format!("limits.{key} must be at least 1"),
        )),
        v => Ok(v.unwrap_or(default)),
    }
}

/// `limits.<key>` or `default_secs`; a zero timeout would close every connection at once,
/// so it is an error.
fn longer_than_zero(
    text: &str,
    key: &str,
    value: Option<Span>,
    default_secs: u64,
) -> Result<Duration, ConfigError> {
    match value {
        Some(s) if s.0.is_zero() => Err(ConfigError::about(
            text,
            key,
            format!("limits.{key} must be longer than 0s"),
        )),
        v => Ok(v.map_or(Duration::from_secs(default_secs), |s| s.0)),
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;

    fn parse(yaml: &str) -> Result<Config, crate::config::ConfigError> {
        Config::parse(yaml, &|_| None)
    }

    #[test]
    fn connection_bounds_have_defaults_and_take_overrides() {
        let d = parse("{}").unwrap().limits;
        assert_eq!(d.max_concurrent_per_agent, 1024);
        assert_eq!(d.h2_max_streams, 128);
        assert_eq!(d.header_timeout.as_secs(), 10);
        assert_eq!(d.body_timeout.as_secs(), 10);
        assert_eq!(d.idle_timeout.as_secs(), 60);
        assert_eq!(d.max_reserve_tokens, 200_000);
        let l = parse(
            "limits:\n  max_reserve_tokens: 50000\n  max_concurrent_per_agent: 3\n  h2_max_streams: 4\n  header_timeout: 2s\n  body_timeout: 500ms\n  idle_timeout: 1m\n",
        )
        .unwrap()
        .limits;
        assert_eq!(l.max_reserve_tokens, 50_000);
        assert_eq!(l.max_concurrent_per_agent, 3);
        assert_eq!(l.h2_max_streams, 4);
        assert_eq!(l.header_timeout.as_secs(), 2);
        assert_eq!(l.body_timeout.as_millis(), 500);
        assert_eq!(l.idle_timeout.as_secs(), 60);
    }

    #[test]
    fn a_bound_that_would_refuse_everything_is_an_error_naming_its_line() {
        let e = parse("listen: {}\nlimits:\n  idle_timeout: 0s\n").unwrap_err();
        assert!(e.to_string().contains("limits.idle_timeout"), "{e}");
        assert_eq!(e.line, Some(3));
        let e = parse("limits:\n  max_concurrent_per_agent: 0\n").unwrap_err();
        assert!(e.to_string().contains("at least 1"), "{e}");
    }
}
