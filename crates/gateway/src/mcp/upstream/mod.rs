//! Connections to upstream MCP servers, one module per transport, all multiplexed the same
//! way by a [`Mux`]: the gateway numbers its requests itself (so ids of many agents never
//! collide on one upstream), remaps progress tokens, and routes what the server sends back
//! — the response to its waiter, progress and server-to-client requests to the call they
//! belong to, the rest to whoever listens on the connection.

mod http;
mod sse;
pub mod stdio;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use airlock_core::Reason;
use airlock_core::config::mcp::{McpServer, Transport};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::{jsonrpc, lock};
use crate::upstream::Client;

pub use self::http::HttpLink;
pub use self::sse::SseLink;
use self::stdio::StdioProcess;

/// The MCP revision Airlock speaks to upstreams.
pub const PROTOCOL_VERSION: &str = "2025-11-25";

/// How long a stream may go on after it carried its answer before it is dropped.
const DRAIN: Duration = Duration::from_secs(1);
/// The longest a notification or an answer to a server request may take to send.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Messages an upstream sends that are not the response a waiter waits for.
pub type Side = mpsc::UnboundedSender<Value>;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot reach MCP server `{server}`: {detail}")]
    Unavailable { server: String, detail: String },
    #[error("MCP server `{server}` answered HTTP {status}")]
    Refused { server: String, status: u16 },
    #[error("MCP server `{server}` did not answer within {secs} s")]
    Timeout { server: String, secs: u64 },
    #[error("MCP server `{server}` sent something that is not MCP: {detail}")]
    Garbage { server: String, detail: String },
    /// The upstream session is gone (HTTP 404): open a new one and retry.
    #[error("MCP server `{server}` ended the session")]
    SessionExpired { server: String },
    /// The agent cancelled the request (`notifications/cancelled`).
    #[error("the request to MCP server `{server}` was cancelled")]
    Cancelled { server: String },
}

impl UpstreamError {
    pub fn reason(&self) -> Reason {
        match self {
            UpstreamError::Timeout { .. } => Reason::UpstreamTimeout,
            UpstreamError::Garbage { .. } => Reason::UpstreamError,
            UpstreamError::Cancelled { .. } => Reason::ClientClosed,
            _ => Reason::UpstreamUnavailable,
        }
    }
}

/// What the gateway tells an upstream about itself and the agent behind it.
#[derive(Clone)]
pub struct Hello {
    /// The downstream client's capabilities, so sampling, elicitation and roots work.
    pub capabilities: Value,
    pub timeout: Duration,
}

impl Hello {
    pub fn initialize_params(&self) -> Value {
        json!({
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": self.capabilities,
            "clientInfo": {"name": "airlock", "version": env!("CARGO_PKG_VERSION")},
        })
    }
}

/// Where an upstream message came from, which decides who gets it.
#[derive(Clone, Copy)]
pub enum Route {
    /// The stream answering the request with this (upstream) id.
    Request(i64),
    /// A stream that belongs to no request (HTTP GET stream).
    Unsolicited,
    /// A transport with one stream for everything (stdio, HTTP+SSE): messages about a
    /// request go to the latest request still waiting. Such a connection never carries
    /// more than one agent's traffic (stdio processes are per agent, SSE links per session).
    Shared,
}

/// A response, or why none will come.
type Outcome = Result<Value, Unanswered>;

/// Why a waiter got no response.
#[derive(Debug)]
enum Unanswered {
    Cancelled,
}

struct Waiter {
    done: oneshot::Sender<Outcome>,
    side: Option<Side>,
}

/// Request numbering and message routing for one upstream connection.
#[derive(Default)]
pub struct Mux {
    next_id: AtomicI64,
    next_token: AtomicU64,
    waiters: Mutex<HashMap<i64, Waiter>>,
    /// Upstream progress token -> (the agent's token, where its notifications go).
    progress: Mutex<HashMap<String, (Value, Side)>>,
    listeners: Mutex<Vec<(u64, Side)>>,
}

/// A request numbered and registered, ready to be written to the transport.
pub struct Pending {
    pub id: i64,
    pub message: Value,
    done: oneshot::Receiver<Outcome>,
    token: Option<String>,
}

impl Mux {
    pub fn prepare(&self, method: &str, mut params: Option<Value>, side: Option<Side>) -> Pending {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let mut token = None;
        if let (Some(side), Some(meta)) = (
            &side,
            params
                .as_mut()
                .and_then(|p| p.get_mut("_meta"))
                .and_then(Value::as_object_mut),
        ) && let Some(original) = meta.remove("progressToken")
        {
            let ours = format!("al-{}", self.next_token.fetch_add(1, Ordering::Relaxed));
            meta.insert("progressToken".into(), json!(ours));
            lock(&self.progress).insert(ours.clone(), (original, side.clone()));
            token = Some(ours);
        }
        let (tx, done) = oneshot::channel();
        lock(&self.waiters).insert(id, Waiter { done: tx, side });
        Pending {
            id,
            message: jsonrpc::request(json!(id), method, params),
            done,
            token,
        }
    }

    /// Runs `io`, the transport's part of sending `pending` (and, where `io_answers`, of
    /// reading the stream that carries its response), and waits for the response, at most
    /// `timeout` in all. A cancellation by the agent ends the wait at once.
    pub async fn exchange(
        &self,
        mut pending: Pending,
        server: &str,
        timeout: Duration,
        io_answers: bool,
        io: impl Future<Output = Result<(), UpstreamError>>,
    ) -> Result<Value, UpstreamError> {
        let unavailable = |detail: &str| UpstreamError::Unavailable {
            server: server.into(),
            detail: detail.into(),
        };
        // Forgets the request however this ends, dropped mid-way included.
        let _forget = Forget {
            mux: self,
            id: pending.id,
            token: pending.token.take(),
        };
        let waited = tokio::time::timeout(timeout, async {
            tokio::pin!(io);
            let mut io_done = false;
            let got = loop {
                tokio::select! {
                    biased;
                    got = &mut pending.done => {
                        if io_answers && !io_done {
                            // Servers end the stream right after the answer: reading it to
                            // its end lets the connection go back to the pool.
                            let _ = tokio::time::timeout(DRAIN, &mut io).await;
                        }
                        break got.ok();
                    }
                    sent = &mut io, if !io_done => match sent {
                        Err(e) => return Err(e),
                        // The stream that carries the answer has ended: the answer came
                        // on it, or never will.
                        Ok(()) if io_answers => break pending.done.try_recv().ok(),
                        Ok(()) => io_done = true,
                    },
                }
            };
            match got {
                Some(Ok(response)) => Ok(response),
                Some(Err(Unanswered::Cancelled)) => Err(UpstreamError::Cancelled {
                    server: server.into(),
                }),
                None if io_answers => Err(unavailable(
                    "the server ended its answer without a response",
                )),
                None => Err(unavailable("the connection closed before the answer")),
            }
        })
        .await;
        waited.unwrap_or_else(|_| {
            Err(UpstreamError::Timeout {
                server: server.into(),
                secs: timeout.as_secs(),
            })
        })
    }

    fn forget(&self, id: i64, token: Option<&str>) {
        lock(&self.waiters).remove(&id);
        if let Some(t) = token {
            lock(&self.progress).remove(t);
        }
    }

    /// The agent cancelled request `id`: its waiter stops waiting now (the upstream, told
    /// by `notifications/cancelled`, sends no response).
    pub fn cancel(&self, id: i64) {
        if let Some(w) = lock(&self.waiters).remove(&id) {
            let _ = w.done.send(Err(Unanswered::Cancelled));
        }
    }

    /// Hands one upstream message to whoever it is for. Returns a server-to-client request
    /// nobody can take, which the transport must answer itself.
    #[must_use]
    pub fn dispatch(&self, mut msg: Value, route: Route) -> Option<Value> {
        if let Some(id) = jsonrpc::response_id(&msg) {
            if let Some(w) = lock(&self.waiters).remove(&id) {
                let _ = w.done.send(Ok(msg));
            }
            return None;
        }
        if msg.get("method").and_then(Value::as_str) == Some("notifications/progress") {
            let slot = msg
                .get_mut("params")
                .and_then(|p| p.get_mut("progressToken"));
            let route = slot
                .as_ref()
                .and_then(|t| t.as_str())
                .and_then(|t| lock(&self.progress).get(t).cloned());
            if let (Some(slot), Some((original, side))) = (slot, route) {
                *slot = original;
                let _ = side.send(msg);
            }
            return None;
        }
        let side = match route {
            Route::Request(id) => lock(&self.waiters).get(&id).and_then(|w| w.side.clone()),
            Route::Shared => lock(&self.waiters)
                .iter()
                .filter_map(|(id, w)| Some((*id, w.side.clone()?)))
                .max_by_key(|(id, _)| *id)
                .map(|(_, s)| s),
            Route::Unsolicited => None,
        };
        match side {
            Some(side) => side.send(msg).err().map(|e| e.0).filter(is_request),
            None => self.broadcast(msg),
        }
    }

    /// A message for the connection's listeners: a request to one of them (it needs one
    /// answer), a notification to all.
    fn broadcast(&self, msg: Value) -> Option<Value> {
        let mut listeners = lock(&self.listeners);
        listeners.retain(|(_, l)| !l.is_closed());
        if is_request(&msg) {
            return match listeners.first() {
                Some((_, l)) => l.send(msg).err().map(|e| e.0),
                None => Some(msg),
            };
        }
        for (_, l) in listeners.iter() {
            let _ = l.send(msg.clone());
        }
        None
    }

    pub fn listen(&self, key: u64, side: Side) {
        lock(&self.listeners).push((key, side));
    }

    pub fn unlisten(&self, key: u64) {
        lock(&self.listeners).retain(|(k, _)| *k != key);
    }

    /// The connection is gone: every waiter gets an error now, not a timeout later.
    pub fn fail_all(&self) {
        lock(&self.waiters).clear();
        lock(&self.progress).clear();
    }
}

/// Forgets a request's waiter and progress token when its exchange ends or is dropped.
struct Forget<'a> {
    mux: &'a Mux,
    id: i64,
    token: Option<String>,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.mux.forget(self.id, self.token.as_deref());
    }
}

fn is_request(msg: &Value) -> bool {
    msg.get("id").is_some() && msg.get("method").is_some()
}

/// The answer to a server-to-client request no agent session can take.
pub fn refuse(request: &Value) -> Value {
    jsonrpc::error(
        request.get("id"),
        jsonrpc::METHOD_NOT_FOUND,
        "no agent session can answer this request",
        None,
    )
}

/// A live connection to one upstream, as one downstream session uses it.
#[derive(Clone)]
pub enum Link {
    Http(Arc<HttpLink>),
    Sse(Arc<SseLink>),
    /// A stdio server is one process per agent, shared by that agent's sessions.
    Stdio(Arc<StdioProcess>),
}

impl Link {
    /// Opens (initializes) a connection for a session of `agent`, within the hello's
    /// timeout (a stdio process may take [`stdio::START_TIMEOUT`] to start); stdio
    /// processes come from `stdio`.
    pub async fn open(
        client: &Client,
        server: &McpServer,
        agent: &str,
        hello: &Hello,
        stdio: &stdio::Supervisors,
    ) -> Result<Link, UpstreamError> {
        let limit = match server.transport {
            Transport::Stdio { .. } => hello.timeout.max(stdio::START_TIMEOUT),
            _ => hello.timeout,
        };
        let opened = async {
            Ok(match &server.transport {
                Transport::Http { url } => {
                    Link::Http(HttpLink::open(client.clone(), server, url, hello).await?)
                }
                Transport::Sse { url } => {
                    Link::Sse(SseLink::open(client.clone(), server, url, hello).await?)
                }
                Transport::Stdio { .. } => Link::Stdio(stdio.process(server, agent, hello).await?),
            })
        };
        tokio::time::timeout(limit, opened)
            .await
            .unwrap_or_else(|_| {
                Err(UpstreamError::Timeout {
                    server: server.name.clone(),
                    secs: limit.as_secs(),
                })
            })
    }

    /// Both are the same connection.
    pub fn same(&self, other: &Link) -> bool {
        match (self, other) {
            (Link::Http(a), Link::Http(b)) => Arc::ptr_eq(a, b),
            (Link::Sse(a), Link::Sse(b)) => Arc::ptr_eq(a, b),
            (Link::Stdio(a), Link::Stdio(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    pub fn mux(&self) -> &Mux {
        match self {
            Link::Http(l) => &l.mux,
            Link::Sse(l) => &l.mux,
            Link::Stdio(p) => &p.mux,
        }
    }

    /// Sends a request and waits for its response message (a `result` or an `error`).
    pub async fn request(
        &self,
        method: &str,
        params: Option<Value>,
        timeout: Duration,
    ) -> Result<Value, UpstreamError> {
        let pending = self.mux().prepare(method, params, None);
        self.call(pending, timeout).await
    }

    /// Sends a request numbered by [`Mux::prepare`] (whose id the caller keeps, to cancel
    /// it) and waits for its response.
    pub async fn call(&self, pending: Pending, timeout: Duration) -> Result<Value, UpstreamError> {
        match self {
            Link::Http(l) => l.request(pending, timeout).await,
            Link::Sse(l) => l.request(pending, timeout).await,
            Link::Stdio(p) => p.request(pending, timeout).await,
        }
    }

    /// Sends a notification or the answer to a server-to-client request, within
    /// [`SEND_TIMEOUT`].
    pub async fn send(&self, message: Value) -> Result<(), UpstreamError> {
        let sent = async {
            match self {
                Link::Http(l) => l.send(message).await,
                Link::Sse(l) => l.send(message).await,
                Link::Stdio(p) => p.send(message).await,
            }
        };
        tokio::time::timeout(SEND_TIMEOUT, sent)
            .await
            .unwrap_or_else(|_| {
                Err(UpstreamError::Timeout {
                    server: self.server().into(),
                    secs: SEND_TIMEOUT.as_secs(),
                })
            })
    }

    fn server(&self) -> &str {
        match self {
            Link::Http(l) => &l.server,
            Link::Sse(l) => &l.server,
            Link::Stdio(p) => &p.server,
        }
    }

    /// Ends the session upstream (stdio processes stay up for the agent's other sessions).
    pub async fn close(&self) {
        match self {
            Link::Http(l) => l.close().await,
            Link::Sse(l) => l.close(),
            Link::Stdio(_) => {}
        }
    }

    /// The connection still works (a dead stdio process or SSE stream does not).
    pub fn alive(&self) -> bool {
        match self {
            Link::Http(_) => true,
            Link::Sse(l) => l.alive(),
            Link::Stdio(p) => p.alive(),
        }
    }
}
