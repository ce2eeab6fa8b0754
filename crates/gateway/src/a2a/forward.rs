//! Stage 4 and 5 for A2A: the agent's JSON-RPC request goes, byte for byte, to the JSON-RPC
//! URL the remote agent's card gives — only on the configured URL's own origin — with the
//! credentials from config; the answer comes back as JSON or, for streaming methods, as
//! SSE relayed event by event as it arrives. Each result and event is read for the task's
//! id and state, which the call's event records.

use std::sync::Arc;
use std::time::{Duration, Instant};

use airlock_core::a2a::{Method, Purpose, TaskFacts, card::jsonrpc_url, card::rewrite, origin};
use airlock_core::config::a2a::RemoteAgent;
use airlock_core::sse::{SseFramer, event_data};
use airlock_core::{Denial, Reason, http_url};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::Value;
use tokio::sync::mpsc;

use super::card::{add_config_headers, read, send};
use super::{failure, settle, settle_cut_short};
use crate::content;
use crate::gateway::Gateway;
use crate::http::{Body, json_response, sse_response};
use crate::jsonrpc::{refusal, with_reason};
use crate::pipeline::CallGuard;
use crate::upstream;

/// Request headers of the agent that the remote agent needs: the protocol version, the
/// extensions asked for, and the W3C trace context (replaced by Airlock's own span's when
/// traces are exported). Nothing else of the agent's request goes upstream.
const PASSED_UP: [&str; 5] = [
    "a2a-version",
    "a2a-extensions",
    "x-a2a-extensions",
    "traceparent",
    "tracestate",
];
/// Response headers relayed back: the extensions the remote agent activated.
const PASSED_DOWN: [&str; 2] = ["a2a-extensions", "x-a2a-extensions"];
/// The largest JSON answer Airlock reads (streams are never held whole).
const MAX_ANSWER: usize = 64 << 20;

/// A classified, admitted JSON-RPC request on its way to a remote agent.
pub struct Rpc {
    pub gateway: Arc<Gateway>,
    pub remote: RemoteAgent,
    pub id: Value,
    pub method: Method,
    /// The agent's request exactly as it came.
    pub body: Bytes,
    /// `http://<gateway>/a2a/<name>`, for extended cards.
    pub base: String,
    pub timeout: Duration,
    pub facts: TaskFacts,
}

impl Rpc {
    /// The remote agent failed: a JSON-RPC error naming it, recorded with the same reason.
    fn fail(self, guard: CallGuard, d: &Denial) -> Response<Body> {
        tracing::warn!(agent = %self.remote.name, error = %d.message, "an A2A call failed upstream");
        let e = failure(Some(&self.id), &self.remote.name, d);
        settle(guard, &self.facts, 200, Some(d.reason), 0);
        with_reason(json_response(StatusCode::OK, &e), d.reason)
    }
}

pub async fn forward(rpc: Rpc, headers: &HeaderMap, mut guard: CallGuard) -> Response<Body> {
    let (gateway, remote) = (&rpc.gateway, &rpc.remote);
    let card = match gateway
        .a2a
        .get(&gateway.upstream, remote, rpc.timeout)
        .await
    {
        Ok(c) => c,
        Err(d) => return rpc.fail(guard, &d),
    };
    let Some(url) = jsonrpc_url(&card, rpc.method.version) else {
        let d = Denial::new(
            Reason::UpstreamError,
            format!(
                "remote agent `{}`'s card lists no JSON-RPC interface",
                remote.name
            ),
        );
        return rpc.fail(guard, &d);
    };
    // Cards are checked when fetched (`card::usable`); this holds for any card all the same.
    let uri = match http_url::parse(url) {
        Ok(uri) => uri,
        Err(why) => {
            let d = Denial::new(
                Reason::UpstreamUnavailable,
                format!(
                    "remote agent `{}`'s card gives the JSON-RPC URL `{}`, which {why}",
                    remote.name,
                    url.escape_debug()
                ),
            );
            return rpc.fail(guard, &d);
        }
    };
    // The card is the remote agent's word; where it may send Airlock is the operator's.
    let allowed = origin(&remote.url);
    if origin(url).is_none() || origin(url) != allowed {
        let d = Denial::new(
            Reason::NotAllowed,
            format!(
                "remote agent `{}`'s card sends JSON-RPC to {url}, outside its configured origin {}; Airlock forwards A2A only to the origin of `a2a.agents.{}.url`",
                remote.name,
                allowed.map_or_else(String::new, |o| o.to_string()),
                remote.name
            ),
        );
        settle(guard, &rpc.facts, 200, Some(d.reason), 0);
        return refusal(StatusCode::OK, Some(&rpc.id), &d);
    }

    let mut req = upstream::request(http::Method::POST, uri, Full::new(rpc.body.clone()));
    let up = req.headers_mut();
    for name in PASSED_UP {
        for value in headers.get_all(name) {
            up.append(name, value.clone());
        }
    }
    add_config_headers(up, remote);
    if let Some(trace) = guard.call().upstream_trace() {
        trace.replace_headers(up);
    }
    up.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let accept = if rpc.method.streams {
        "text/event-stream, application/json"
    } else {
        "application/json"
    };
    up.insert(header::ACCEPT, HeaderValue::from_static(accept));
    let asked = Instant::now();
    let res = match send(&gateway.upstream, req, rpc.timeout, &remote.name).await {
        Ok(r) => r,
        Err(d) => return rpc.fail(guard, &d),
    };
    guard.call().upstream_wait = Some(asked.elapsed());
    let status = res.status();
    if !status.is_success() {
        // Never relayed as it is: an upstream 401 would send the agent to sign in there.
        let d = Denial::new(
            if status.is_server_error() {
                Reason::UpstreamUnavailable
            } else {
                Reason::UpstreamError
            },
            match status.as_u16() {
                401 | 403 => format!(
                    "remote agent `{}` refused Airlock's credentials (HTTP {}): check `a2a.agents.{}.headers`",
                    remote.name,
                    status.as_u16(),
                    remote.name
                ),
                s => format!("remote agent `{}` answered HTTP {s}", remote.name),
            },
        );
        return rpc.fail(guard, &d);
    }
    let is_sse = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    guard.responding();
    if is_sse {
        relay_stream(rpc, res, guard)
    } else {
        answer_json(rpc, res, guard).await
    }
}

fn pass_down(from: &HeaderMap, to: &mut HeaderMap) {
    for name in PASSED_DOWN {
        if let Some(v) = from.get(name) {
            to.insert(name, v.clone());
        }
    }
}

/// Reads a reply message for instructions aimed at the agent and records what it finds;
/// the denial that replaces it when the agent's injection action is `block`.
async fn read_reply(guard: &mut CallGuard, message: Value) -> (Value, Option<Denial>) {
    let Some(agent) = guard.call().agent.clone() else {
        return (message, None);
    };
    let detectors = guard.runtime().config.detectors.clone();
    let (message, inbound) =
        content::inbound_owned(detectors, agent, message, "/result", "result").await;
    inbound.record(guard);
    (message, inbound.denial)
}

/// Learns from one answer message (a JSON-RPC response) what it says of the task; true
/// when it is an error.
fn observe(message: &Value, facts: &mut TaskFacts) -> bool {
    if message.get("error").is_some() {
        return true;
    }
    if let Some(result) = message.get("result") {
        facts.observe(result);
    }
    false
}

async fn answer_json(mut rpc: Rpc, res: Response<Incoming>, guard: CallGuard) -> Response<Body> {
    let mut kept = HeaderMap::new();
    pass_down(res.headers(), &mut kept);
    let body = match read(res.into_body(), MAX_ANSWER, rpc.timeout, &rpc.remote.name).await {
        Ok(b) => b,
        Err(d) => return rpc.fail(guard, &d),
    };
    let Ok(mut message) = serde_json::from_slice::<Value>(&body) else {
        let d = Denial::new(
            Reason::UpstreamError,
            format!(
                "remote agent `{}` answered something that is not JSON",
                rpc.remote.name
            ),
        );
        return rpc.fail(guard, &d);
    };
    let mut out = body;
    let is_error = match rpc.method.purpose {
        // The extended card is rewritten like the public one; it is no task.
        Purpose::ExtendedCard => match message.get_mut("result") {
            Some(card) => {
                rewrite(card, &rpc.base);
                out = Bytes::from(message.to_string());
                false
            }
            None => true,
        },
        Purpose::ListTasks => message.get("error").is_some(),
        _ => observe(&message, &mut rpc.facts),
    };
    let mut guard = guard;
    let (_, denial) = read_reply(&mut guard, message).await;
    if let Some(d) = denial {
        settle(guard, &rpc.facts, 200, Some(d.reason), 0);
        return refusal(StatusCode::OK, Some(&rpc.id), &d);
    }
    let reason = is_error.then_some(Reason::UpstreamError);
    let mut response = Response::new(crate::http::full(out.clone()));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    pass_down(&kept, h);
    settle(guard, &rpc.facts, 200, reason, out.len() as u64);
    response
}

/// Relays the remote agent's SSE events the moment each is complete. A client that hangs
/// up ends the upstream request (the remote task runs on: A2A tasks outlive streams).
fn relay_stream(rpc: Rpc, res: Response<Incoming>, mut guard: CallGuard) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let mut response = sse_response(rx);
    pass_down(res.headers(), response.headers_mut());
    let mut body = res.into_body();
    tokio::spawn(async move {
        let mut facts = rpc.facts.clone();
        let mut framer = SseFramer::default();
        let (mut sent, mut errored) = (0u64, false);
        let broke = loop {
            let frame = tokio::select! {
                frame = body.frame() => frame,
                _ = tx.closed() => {
                    settle_cut_short(guard, &facts, sent);
                    return;
                }
            };
            let chunk = match frame {
                None => break false,
                Some(Err(_)) => break true,
                Some(Ok(f)) => match f.into_data() {
                    Ok(c) => c,
                    Err(_) => continue,
                },
            };
            let events = framer.push(chunk);
            for event in events {
                let message =
                    event_data(&event).and_then(|d| serde_json::from_slice::<Value>(&d).ok());
                if let Some(m) = message {
                    errored |= observe(&m, &mut facts);
                    // Each event is read as it passes; a blocked one ends the stream there.
                    if let (_, Some(d)) = read_reply(&mut guard, m).await {
                        let e = crate::jsonrpc::denial(Some(&rpc.id), &d);
                        let _ = tx
                            .send(Bytes::from(format!("event: message\ndata: {e}\n\n")))
                            .await;
                        settle(guard, &facts, 200, Some(d.reason), sent);
                        return;
                    }
                }
                sent += event.len() as u64;
                if tx.send(event).await.is_err() {
                    settle_cut_short(guard, &facts, sent);
                    return;
                }
            }
        };
        if let Some(rest) = framer.finish() {
            sent += rest.len() as u64;
            let _ = tx.send(rest).await;
        }
        if broke {
            // Tell the agent its stream is incomplete, in the stream's own terms.
            let d = Denial::new(
                Reason::UpstreamUnavailable,
                format!("remote agent `{}` broke off its stream", rpc.remote.name),
            );
            let e = failure(Some(&rpc.id), &rpc.remote.name, &d);
            let _ = tx
                .send(Bytes::from(format!("event: message\ndata: {e}\n\n")))
                .await;
            settle(guard, &facts, 200, Some(d.reason), sent);
            return;
        }
        settle(
            guard,
            &facts,
            200,
            errored.then_some(Reason::UpstreamError),
            sent,
        );
    });
    response
}
