//! Remote agents' cards: fetched with the credentials from config, kept for a minute, and
//! served rewritten (`airlock_core::a2a::card`) to the agents that discover through
//! Airlock. The cached card also says where each remote agent takes JSON-RPC.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use airlock_core::a2a::{Version, card::jsonrpc_url};
use airlock_core::config::a2a::RemoteAgent;
use airlock_core::{Denial, Reason, http_url};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::Value;

use crate::upstream::{self, Client};

/// How long a card is trusted before it is read again.
const TTL: Duration = Duration::from_secs(60);
/// The largest card Airlock reads.
const MAX_CARD: usize = 1 << 20;
const PATHS: [&str; 2] = ["/.well-known/agent-card.json", "/.well-known/agent.json"];

#[derive(Default)]
pub struct Cards {
    cache: Mutex<HashMap<String, Cached>>,
}

#[derive(Clone)]
struct Cached {
    /// The configured URL the card was read from: a reload that changes it starts afresh.
    url: String,
    card: Arc<Value>,
    at: Instant,
}

impl Cards {
    /// The remote agent's card as it serves it, from the cache while fresh. A failed
    /// refresh keeps serving the card read before (the remote agent may be back soon).
    pub async fn get(
        &self,
        client: &Client,
        remote: &RemoteAgent,
        timeout: Duration,
    ) -> Result<Arc<Value>, Denial> {
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&remote.name)
            .filter(|c| c.url == remote.url)
            .cloned();
        if let Some(c) = &cached
            && c.at.elapsed() < TTL
        {
            return Ok(c.card.clone());
        }
        match fetch(client, remote, timeout).await {
            Ok(card) => {
                let card = Arc::new(card);
                let entry = Cached {
                    url: remote.url.clone(),
                    card: card.clone(),
                    at: Instant::now(),
                };
                self.cache
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(remote.name.clone(), entry);
                Ok(card)
            }
            Err(d) => match cached {
                Some(stale) => {
                    tracing::warn!(agent = %remote.name, error = %d.message, "could not refresh a remote agent's card; using the one read before");
                    Ok(stale.card)
                }
                None => Err(d),
            },
        }
    }
}

async fn fetch(client: &Client, remote: &RemoteAgent, timeout: Duration) -> Result<Value, Denial> {
    for (i, path) in PATHS.iter().enumerate() {
        let url = http_url::parse(&format!("{}{path}", remote.url))
            .map_err(|why| unavailable(remote, &format!("its card URL {why}")))?;
        let mut req = upstream::request(Method::GET, url, Full::new(Bytes::new()));
        let headers = req.headers_mut();
        add_config_headers(headers, remote);
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        let res = send(client, req, timeout, &remote.name).await?;
        let status = res.status();
        // The older location is tried when the current one is missing.
        if status == StatusCode::NOT_FOUND && i + 1 < PATHS.len() {
            continue;
        }
        if !status.is_success() {
            return Err(Denial::new(
                if status.is_server_error() {
                    Reason::UpstreamUnavailable
                } else {
                    Reason::UpstreamError
                },
                format!(
                    "remote agent `{}` answered HTTP {} for its agent card",
                    remote.name,
                    status.as_u16()
                ),
            ));
        }
        let body = read(res.into_body(), MAX_CARD, timeout, &remote.name).await?;
        return match serde_json::from_slice::<Value>(&body) {
            Ok(card) if card.is_object() => usable(card, remote),
            _ => Err(unusable(remote, "its agent card is not a JSON object")),
        };
    }
    unreachable!("the last path returns")
}

/// The card, if every JSON-RPC URL it gives is one a request can be sent to. A card is
/// the remote agent's word: one with a broken URL is refused here, before it is cached,
/// so it cannot make every later call to that agent fail.
fn usable(card: Value, remote: &RemoteAgent) -> Result<Value, Denial> {
    for version in [Version::V1_0, Version::V0_3] {
        if let Some(url) = jsonrpc_url(&card, version)
            && let Err(why) = http_url::parse(url)
        {
            // Escaped: the URL is the remote agent's text and goes into messages and logs.
            let url = url.escape_debug();
            return Err(unavailable(
                remote,
                &format!("its agent card gives the JSON-RPC URL `{url}`, which {why}"),
            ));
        }
    }
    Ok(card)
}

fn unusable(remote: &RemoteAgent, why: &str) -> Denial {
    Denial::new(
        Reason::UpstreamError,
        format!("remote agent `{}`: {why}", remote.name),
    )
}

/// The remote agent cannot be reached at a URL it or config gives.
fn unavailable(remote: &RemoteAgent, why: &str) -> Denial {
    Denial::new(
        Reason::UpstreamUnavailable,
        format!("remote agent `{}`: {why}", remote.name),
    )
}

/// The headers from config (credentials), marked sensitive so they are never logged.
pub fn add_config_headers(headers: &mut HeaderMap, remote: &RemoteAgent) {
    for (name, value) in &remote.headers {
        let (Ok(name), Ok(mut value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value.expose()),
        ) else {
            continue;
        };
        value.set_sensitive(true);
        headers.insert(name, value);
    }
}

/// Sends one request to a remote agent, waiting at most `timeout` for its response headers.
pub async fn send(
    client: &Client,
    req: Request<Full<Bytes>>,
    timeout: Duration,
    name: &str,
) -> Result<Response<Incoming>, Denial> {
    match tokio::time::timeout(timeout, client.request(req)).await {
        Ok(Ok(res)) => Ok(res),
        Ok(Err(e)) => Err(Denial::new(
            Reason::UpstreamUnavailable,
            if e.is_connect() {
                format!("remote agent `{name}` is unreachable (the connection was refused)")
            } else {
                format!("remote agent `{name}` is unreachable (the connection failed)")
            },
        )),
        Err(_) => Err(Denial::new(
            Reason::UpstreamTimeout,
            format!(
                "remote agent `{name}` did not answer within {}",
                humantime::format_duration(timeout)
            ),
        )),
    }
}

/// Reads a whole (small) answer: at most `limit` bytes, within `timeout`.
pub async fn read(
    body: Incoming,
    limit: usize,
    timeout: Duration,
    name: &str,
) -> Result<Bytes, Denial> {
    match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(Denial::new(
            Reason::UpstreamError,
            format!("remote agent `{name}` answered more than {limit} bytes"),
        )),
        Ok(Err(_)) => Err(Denial::new(
            Reason::UpstreamUnavailable,
            format!("remote agent `{name}` broke off its answer"),
        )),
        Err(_) => Err(Denial::new(
            Reason::UpstreamTimeout,
            format!("remote agent `{name}` did not finish its answer in time"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn remote() -> RemoteAgent {
        RemoteAgent {
            name: "far".into(),
            url: "http://127.0.0.1:9100".into(),
            headers: Vec::new(),
        }
    }

    #[test]
    fn a_card_whose_jsonrpc_url_does_not_parse_is_refused_before_it_is_cached() {
        for url in [
            "http://127.0.0.1:9100/a b",
            "http://127.0.0.1:99999/rpc",
            "http://127.0.0.1:9100/\u{1b}[2J",
        ] {
            let v1 = json!({"supportedInterfaces": [
                {"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
            ]});
            let v03 = json!({"url": url, "preferredTransport": "JSONRPC"});
            for card in [v1, v03] {
                let d = usable(card, &remote()).unwrap_err();
                assert_eq!(d.reason, Reason::UpstreamUnavailable, "{url}");
                assert!(d.message.contains("JSON-RPC URL"), "{}", d.message);
                assert!(!d.message.contains('\u{1b}'), "{}", d.message);
            }
        }
    }

    #[test]
    fn a_card_with_good_or_no_jsonrpc_urls_is_kept() {
        let good = json!({"url": "http://127.0.0.1:9100/rpc", "preferredTransport": "JSONRPC"});
        assert!(usable(good, &remote()).is_ok());
        assert!(usable(json!({"name": "far"}), &remote()).is_ok());
    }
}
