//! Stage 4 for LLM calls: send the request to the first target that answers, with the
//! provider's real credentials. Connect errors, timeouts, 429 and 5xx move on to the next
//! target (after a short jittered backoff) as long as nothing has reached the client.

use std::time::{Duration, Instant};

use airlock_core::config::{Provider, ProviderKind, Target};
use airlock_core::{Denial, Reason};
use http::{HeaderMap, HeaderValue, Method, Request, Response, Uri, header};
use http_body_util::Full;
use hyper::body::Incoming;

use super::classify::LlmRequest;
use crate::pipeline::CallGuard;
use crate::traces::UpstreamContext;
use crate::upstream::{self, is_forwardable_request_header};

const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Why one attempt failed.
enum Attempt {
    Refused(String),
    TimedOut,
    Status(Response<Incoming>),
}

/// Tries `targets` in order. Returns the response to relay (2xx, or a final 4xx from
/// the provider), or a denial when no target could serve. With `own_credentials` the
/// agent's own `Authorization`/`x-api-key` go upstream instead of the provider's key.
pub async fn forward(
    guard: &mut CallGuard,
    request: &LlmRequest,
    client_headers: &HeaderMap,
    targets: &[Target],
    own_credentials: bool,
) -> Result<Response<Incoming>, Denial> {
    let runtime = guard.runtime().clone();
    let config = &runtime.config;
    let timeout = config.limits.upstream_timeout;
    let mut last: Option<Attempt> = None;
    let mut waited = Duration::ZERO;

    for (i, target) in targets.iter().enumerate() {
        let Some(provider) = config.providers.get(&target.provider) else {
            continue;
        };
        if i > 0 {
            tokio::time::sleep(backoff(i)).await;
        }
        guard.call().target = Some(target.clone());
        let trace = guard.call().upstream_trace();
        let upstream_req = build(
            provider,
            request,
            target,
            client_headers,
            own_credentials,
            trace,
        )?;
        let sent = Instant::now();
        let result =
            tokio::time::timeout(timeout, guard.gateway().upstream.request(upstream_req)).await;
        waited += sent.elapsed();
        guard.call().upstream_wait = Some(waited);
        let attempt = match result {
            Ok(Ok(res)) if res.status().is_success() => return Ok(res),
            Ok(Ok(res)) if retryable(res.status()) => Attempt::Status(res),
            Ok(Ok(res)) => return Ok(res), // the provider rejected the request itself: relay it
            Ok(Err(e)) => Attempt::Refused(e.to_string()),
            Err(_) => Attempt::TimedOut,
        };
        tracing::warn!(target = %target, "upstream attempt failed: {}", describe(&attempt));
        last = Some(attempt);
    }

    match last {
        // A provider's own 429 after every fallback: relay it, with its Retry-After.
        Some(Attempt::Status(res)) if res.status() == http::StatusCode::TOO_MANY_REQUESTS => {
            Ok(res)
        }
        Some(Attempt::Status(res)) => Err(Denial::new(
            Reason::UpstreamUnavailable,
            format!(
                "every upstream target failed; the last answered HTTP {}",
                res.status().as_u16()
            ),
        )),
        Some(Attempt::TimedOut) => Err(Denial::new(
            Reason::UpstreamTimeout,
            format!(
                "no upstream answered within {}",
                humantime::format_duration(timeout)
            ),
        )),
        Some(Attempt::Refused(_)) => Err(Denial::new(
            Reason::UpstreamUnavailable,
            "the upstream provider could not be reached",
        )),
        None => Err(Denial::new(
            Reason::UpstreamUnavailable,
            "no upstream target is configured for this model",
        )),
    }
}

fn retryable(status: http::StatusCode) -> bool {
    status == http::StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

fn describe(a: &Attempt) -> String {
    match a {
        Attempt::Refused(e) => format!("connection failed: {e}"),
        Attempt::TimedOut => "timed out waiting for response headers".into(),
        Attempt::Status(res) => format!("HTTP {}", res.status().as_u16()),
    }
}

/// 50ms, 100ms, 200ms… capped at 1s, with full jitter so replicas don't retry in step.
fn backoff(attempt: usize) -> Duration {
    let cap = (50u64 << attempt.min(5)).min(1_000);
    let mut r = [0u8; 2];
    let _ = getrandom::fill(&mut r);
    Duration::from_millis(cap / 2 + u16::from_le_bytes(r) as u64 % (cap / 2 + 1))
}

fn build(
    provider: &Provider,
    request: &LlmRequest,
    target: &Target,
    client: &HeaderMap,
    own_credentials: bool,
    trace: Option<&UpstreamContext>,
) -> Result<Request<Full<bytes::Bytes>>, Denial> {
    // Config checks base_url (`core::http_url`); a URL that still does not parse is the
    // provider's failure, answered as such, never a panic.
    let uri = Uri::try_from(format!(
        "{}{}",
        provider.base_url,
        request.api.upstream_path()
    ))
    .map_err(|_| {
        Denial::new(
            Reason::UpstreamUnavailable,
            format!("provider `{}` has an invalid base_url", provider.name),
        )
    })?;
    let body = request.body_for(&target.model, provider.kind);
    let body_len = body.len();
    let mut req = upstream::request(Method::POST, uri, Full::new(body));
    let headers = req.headers_mut();
    for (name, value) in client {
        if is_forwardable_request_header(name) {
            headers.append(name, value.clone());
        }
    }
    // The provider's spans become children of Airlock's, not of the agent's.
    if let Some(trace) = trace {
        trace.replace_headers(headers);
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body_len));
    if own_credentials {
        for name in [header::AUTHORIZATION.as_str(), "x-api-key"] {
            if let Some(value) = client.get(name) {
                headers.insert(name, value.clone());
            }
        }
    } else if let Some(key) = &provider.api_key {
        let bad_key = || {
            Denial::new(
                Reason::UpstreamUnavailable,
                format!(
                    "provider `{}` has an api_key that is not a valid header value",
                    provider.name
                ),
            )
        };
        match provider.kind {
            ProviderKind::Anthropic => {
                headers.insert(
                    "x-api-key",
                    HeaderValue::from_str(key.expose()).map_err(|_| bad_key())?,
                );
            }
            ProviderKind::Openai | ProviderKind::OpenaiCompatible => {
                let value = HeaderValue::from_str(&format!("Bearer {}", key.expose()))
                    .map_err(|_| bad_key())?;
                headers.insert(header::AUTHORIZATION, value);
            }
        }
    }
    if provider.kind == ProviderKind::Anthropic && !headers.contains_key("anthropic-version") {
        headers.insert(
            "anthropic-version",
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
    }
    for (name, value) in &provider.headers {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::try_from(name.as_str()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(n, v);
        }
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_base_url_that_is_not_a_uri_is_a_502_not_a_panic() {
        let provider = Provider {
            name: "p".into(),
            kind: ProviderKind::Openai,
            base_url: "http://api example/v1".into(),
            api_key: None,
            headers: Vec::new(),
        };
        let body = bytes::Bytes::from_static(br#"{"model":"m","messages":[]}"#);
        let request = LlmRequest::classify(crate::llm::classify::Api::ChatCompletions, body)
            .map_err(|d| d.message)
            .unwrap();
        let target = Target::parse("p/m").unwrap();
        let denial = build(&provider, &request, &target, &HeaderMap::new(), false, None)
            .map(|_| ())
            .unwrap_err();
        assert_eq!(denial.reason, Reason::UpstreamUnavailable);
        assert!(denial.message.contains("base_url"), "{}", denial.message);
    }

    #[test]
    fn backoff_grows_with_jitter_and_a_cap() {
        for i in 1..10 {
            let b = backoff(i);
            let cap = (50u64 << i.min(5)).min(1_000);
            assert!(
                b >= Duration::from_millis(cap / 2) && b <= Duration::from_millis(cap),
                "{i}: {b:?}"
            );
        }
    }
}
