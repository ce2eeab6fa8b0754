//! Downstream sessions: what one agent's MCP client negotiated, the upstream connections
//! opened for it (lazily, closed with it), and the bookkeeping that lets messages cross
//! between them — server-to-client requests, cancellations, the GET stream.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use airlock_core::config::mcp::McpServer;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::upstream::{Hello, Link, UpstreamError, stdio::Supervisors};
use super::{jsonrpc, lock};
use crate::upstream::Client;

/// Sessions idle this long are closed (their upstream sessions too).
const IDLE: Duration = Duration::from_secs(3600);

/// Which upstreams a session sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// `/mcp`: every configured server, names prefixed.
    Federated,
    /// `/mcp/<server>`: one server as it is.
    Single(String),
}

pub struct Session {
    pub id: String,
    pub agent: String,
    pub scope: Scope,
    /// What the agent's client can answer (sampling, elicitation, roots).
    pub capabilities: Value,
    key: u64,
    /// One slot per upstream, each locked on its own while its connection opens, so a slow
    /// server never holds up the others.
    links: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Link>>>>>,
    /// The agent's GET stream, while one is open.
    stream: Mutex<Option<mpsc::UnboundedSender<Value>>>,
    /// Server-to-client requests sent to the agent: our id -> (link, the upstream's id).
    asked: Mutex<HashMap<String, (Link, Value)>>,
    /// Requests in flight upstream, for cancellation: the agent's id -> (link, our id).
    inflight: Mutex<HashMap<String, (Link, i64)>>,
    next: AtomicU64,
    last_used: Mutex<Instant>,
}

/// The key of a JSON-RPC id in maps: its JSON text, so `1` and `"1"` stay apart.
pub fn id_key(id: &Value) -> String {
    id.to_string()
}

impl Session {
    /// The upstream connection to `server`, opened on first use.
    pub async fn link(
        self: &Arc<Self>,
        server: &McpServer,
        client: &Client,
        stdio: &Supervisors,
        timeout: Duration,
    ) -> Result<Link, UpstreamError> {
        let slot = lock(&self.links)
            .entry(server.name.clone())
            .or_default()
            .clone();
        let mut slot = slot.lock().await;
        if let Some(l) = slot.as_ref()
            && l.alive()
        {
            return Ok(l.clone());
        }
        let hello = Hello {
            capabilities: self.capabilities.clone(),
            timeout,
        };
        let link = Link::open(client, server, &self.agent, &hello, stdio).await?;
        let (tx, mut rx) = mpsc::unbounded_channel();
        link.mux().listen(self.key, tx);
        let (session, from, l) = (Arc::downgrade(self), server.name.clone(), link.clone());
        tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                let Some(s) = session.upgrade() else { return };
                if let Some(out) = s.relay(&from, &l, msg) {
                    s.push(out);
                }
            }
        });
        *slot = Some(link.clone());
        Ok(link)
    }

    /// Forgets the broken upstream session `expired` so the next call opens a new one (if
    /// a concurrent call has done so already, the new one stays).
    pub async fn drop_link(&self, server: &str, expired: &Link) {
        let slot = lock(&self.links).get(server).cloned();
        let Some(slot) = slot else { return };
        let removed = {
            let mut slot = slot.lock().await;
            match slot.as_ref() {
                Some(l) if l.same(expired) => slot.take(),
                _ => None,
            }
        };
        if let Some(l) = removed {
            l.mux().unlisten(self.key);
            l.close().await;
        }
    }

    pub async fn open_links(&self) -> Vec<Link> {
        let slots: Vec<_> = lock(&self.links).values().cloned().collect();
        let mut links = Vec::new();
        for slot in slots {
            links.extend(slot.lock().await.clone());
        }
        links
    }

    /// Turns a message from upstream `server` into what the agent should see, or answers it
    /// here: server-to-client requests get ids of ours (and are refused when the agent's
    /// client cannot answer them); federated resource URIs are prefixed.
    pub fn relay(&self, server: &str, link: &Link, mut msg: Value) -> Option<Value> {
        let method = msg.get("method").and_then(Value::as_str)?.to_string();
        if let Some(slot) = msg.get_mut("id") {
            let id = std::mem::replace(slot, Value::Null);
            let capability = match method.as_str() {
                "sampling/createMessage" => "sampling",
                "elicitation/create" => "elicitation",
                "roots/list" => "roots",
                "ping" => {
                    send_later(link, jsonrpc::result(&id, json!({})));
                    return None;
                }
                _ => "",
            };
            if capability.is_empty() || self.capabilities.get(capability).is_none() {
                let refusal = jsonrpc::error(
                    Some(&id),
                    jsonrpc::METHOD_NOT_FOUND,
                    &format!("the agent's client does not support {method}"),
                    None,
                );
                send_later(link, refusal);
                return None;
            }
            let ours = format!("airlock-{}", self.next.fetch_add(1, Ordering::Relaxed));
            lock(&self.asked).insert(id_key(&json!(ours)), (link.clone(), id));
            *slot = json!(ours);
            return Some(msg);
        }
        if method == "notifications/resources/updated"
            && self.scope == Scope::Federated
            && let Some(uri) = msg.pointer_mut("/params/uri")
            && let Some(original) = uri.as_str().map(str::to_string)
        {
            *uri = json!(format!("{server}+{original}"));
        }
        Some(msg)
    }

    /// Refuses a server-to-client request the agent can no longer receive.
    pub fn refuse(&self, link: &Link, request: &Value, why: &str) {
        let refusal = jsonrpc::error(request.get("id"), jsonrpc::METHOD_NOT_FOUND, why, None);
        send_later(link, refusal);
    }

    /// A call ended: the server requests sent to the agent for it need no answer any more.
    pub fn forget_asked(&self, ours: &[Value]) {
        if ours.is_empty() {
            return;
        }
        let mut asked = lock(&self.asked);
        for id in ours {
            asked.remove(&id_key(id));
        }
    }

    /// The agent answered a server-to-client request: back to the upstream that asked.
    pub fn answer(&self, id: &Value, mut body: serde_json::Map<String, Value>) {
        let Some((link, theirs)) = lock(&self.asked).remove(&id_key(id)) else {
            return;
        };
        body.insert("jsonrpc".into(), json!("2.0"));
        body.insert("id".into(), theirs);
        send_later(&link, Value::Object(body));
    }

    pub fn start_call(&self, agent_id: &Value, link: &Link, ours: i64) {
        lock(&self.inflight).insert(id_key(agent_id), (link.clone(), ours));
    }

    pub fn end_call(&self, agent_id: &Value) {
        lock(&self.inflight).remove(&id_key(agent_id));
    }

    /// The agent cancelled one of its requests: tell the upstream, in its numbering.
    pub fn cancel(&self, agent_id: &Value, reason: Option<&Value>) {
        if let Some((link, ours)) = lock(&self.inflight).remove(&id_key(agent_id)) {
            let mut params = json!({"requestId": ours});
            if let Some(r) = reason {
                params["reason"] = r.clone();
            }
            send_later(
                &link,
                jsonrpc::notification("notifications/cancelled", Some(params)),
            );
            link.mux().cancel(ours);
        }
    }

    /// Opens the agent's GET stream (a newer one replaces an older one).
    pub fn open_stream(&self) -> mpsc::UnboundedReceiver<Value> {
        let (tx, rx) = mpsc::unbounded_channel();
        *lock(&self.stream) = Some(tx);
        rx
    }

    /// A message for the agent outside any request: on its GET stream, or dropped when it
    /// has none (server requests are then refused, so the upstream does not wait).
    fn push(&self, msg: Value) {
        let undelivered = match lock(&self.stream).as_ref() {
            Some(tx) => tx.send(msg).err().map(|e| e.0),
            None => Some(msg),
        };
        if let Some(msg) = undelivered
            && let Some(id) = msg.get("id")
            && let Some((link, theirs)) = lock(&self.asked).remove(&id_key(id))
        {
            send_later(
                &link,
                jsonrpc::error(
                    Some(&theirs),
                    jsonrpc::METHOD_NOT_FOUND,
                    "the agent has no open stream for server requests",
                    None,
                ),
            );
        }
    }

    fn touch(&self) {
        *lock(&self.last_used) = Instant::now();
    }

    async fn close(&self) {
        let links = self.open_links().await;
        lock(&self.links).clear();
        for l in links {
            l.mux().unlisten(self.key);
            l.close().await;
        }
        lock(&self.stream).take();
    }
}

fn send_later(link: &Link, msg: Value) {
    let link = link.clone();
    tokio::spawn(async move {
        let _ = link.send(msg).await;
    });
}

#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Arc<Session>>>,
    keys: AtomicU64,
}

impl Sessions {
    pub fn create(&self, agent: &str, scope: Scope, capabilities: Value) -> Arc<Session> {
        self.sweep();
        let mut raw = [0u8; 16];
        getrandom::fill(&mut raw).expect("the OS random source is available");
        let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let session = Arc::new(Session {
            id: id.clone(),
            agent: agent.into(),
            scope,
            capabilities,
            key: self.keys.fetch_add(1, Ordering::Relaxed),
            links: Mutex::new(HashMap::new()),
            stream: Mutex::new(None),
            asked: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
            last_used: Mutex::new(Instant::now()),
        });
        lock(&self.map).insert(id, session.clone());
        session
    }

    /// The session `id` of `agent` on `scope`; another agent's id is as good as unknown.
    pub fn get(&self, id: &str, agent: &str, scope: &Scope) -> Option<Arc<Session>> {
        let s = lock(&self.map).get(id).cloned()?;
        (s.agent == agent && &s.scope == scope).then(|| {
            s.touch();
            s
        })
    }

    pub async fn remove(&self, id: &str) {
        let s = lock(&self.map).remove(id);
        if let Some(s) = s {
            s.close().await;
        }
    }

    /// Closes every session, upstream sessions included (on shutdown).
    pub async fn close_all(&self) {
        let all: Vec<Arc<Session>> = lock(&self.map).drain().map(|(_, s)| s).collect();
        let mut closing = tokio::task::JoinSet::new();
        for s in all {
            closing.spawn(async move { s.close().await });
        }
        while closing.join_next().await.is_some() {}
    }

    /// Closes the sessions idle for longer than [`IDLE`].
    pub fn sweep(&self) {
        let idle: Vec<Arc<Session>> = {
            let mut map = lock(&self.map);
            let ids: Vec<String> = map
                .iter()
                .filter(|(_, s)| lock(&s.last_used).elapsed() > IDLE)
                .map(|(k, _)| k.clone())
                .collect();
            ids.iter().filter_map(|k| map.remove(k)).collect()
        };
        for s in idle {
            tokio::spawn(async move { s.close().await });
        }
    }
}
