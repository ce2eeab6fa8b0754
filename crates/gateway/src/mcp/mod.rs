//! The MCP gateway: Streamable HTTP (2025-11-25 rules) on `/mcp`, one virtual server made
//! of every configured upstream, and on `/mcp/<server>`, one upstream as it is. Agents
//! sign in with their Airlock key; upstreams see Airlock with the credentials from config.
//!
//! The relay reads only what routing and policy need (`id`, `method`, the tool name, the
//! arguments for the loop guard) and passes everything else through untouched.

mod call;
mod federation;
mod pins;
mod session;
mod upstream;

use std::sync::Arc;
use std::time::Duration;

use airlock_core::config::Target;
use airlock_core::fingerprint::fingerprint;
use airlock_core::{Denial, Kind, Reason};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use self::federation::{Ctx, Listing};
use self::session::{Scope, Sessions};
use crate::content;
use crate::controls::{self, Estimate, Needs};
use crate::gateway::Gateway;
use crate::http::{
    Body, BodyLimits, ReadError, content_length, drain_refused, full, json_response, read_body,
    sse_response,
};
use crate::identity::presented_key;
use crate::in_flight::AgentPermit;
use crate::jsonrpc::{self, Message};
use crate::pipeline::{CallGuard, Ending};

pub use self::pins::Pins;
pub use self::upstream::stdio::Supervisors;

/// The MCP revisions a client may negotiate; the first is offered to those asking for another.
const VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];
/// The header that carries a session id, downstream and upstream alike.
const SESSION: &str = "mcp-session-id";
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The MCP side of the gateway's state.
#[derive(Default)]
pub struct McpState {
    pub sessions: Sessions,
    pub stdio: Supervisors,
    pub pins: Pins,
}

pub async fn handle(gateway: Arc<Gateway>, req: Request<Incoming>) -> Response<Body> {
    let runtime = gateway.runtime();
    let config = runtime.config.clone();
    let scope = match req.uri().path().trim_end_matches('/') {
        "/mcp" => Scope::Federated,
        path => {
            let name = path.strip_prefix("/mcp/").unwrap_or_default();
            if !config.mcp.servers.contains_key(name) {
                let d = Denial::new(Reason::NotFound, format!("no MCP server `{name}`"));
                return jsonrpc::refusal(StatusCode::NOT_FOUND, None, &d);
            }
            Scope::Single(name.to_string())
        }
    };
    if let Err(d) = same_site(&gateway, &config, &req) {
        return jsonrpc::refusal(StatusCode::FORBIDDEN, None, &d);
    }
    let agent = presented_key(req.headers()).and_then(|k| runtime.keys.identify(k));
    let Some(agent) = agent else {
        let guard = CallGuard::open(gateway.clone(), Kind::Mcp, "mcp", req.headers()).await;
        let res = jsonrpc::unauthorized(guard, req.headers());
        drain_refused(req).await;
        return res;
    };
    // A suspended agent, or one with too many calls open, is refused before its message
    // is read.
    let (permit, req) = match jsonrpc::enter(&gateway, Kind::Mcp, &agent, req).await {
        Ok(entered) => entered,
        Err(refused) => return refused,
    };
    let session_id = req
        .headers()
        .get(SESSION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let session = session_id
        .as_deref()
        .map(|id| gateway.mcp.sessions.get(id, &agent.id, &scope));
    let ctx = |session| Ctx {
        gateway: gateway.clone(),
        config: config.clone(),
        session,
        agent: agent.clone(),
    };
    match *req.method() {
        Method::POST => {}
        Method::GET | Method::DELETE => {
            let session = match session {
                Some(Some(s)) => s,
                Some(None) => return no_session(StatusCode::NOT_FOUND),
                None => return no_session(StatusCode::BAD_REQUEST),
            };
            if req.method() == Method::DELETE {
                gateway.mcp.sessions.remove(&session.id).await;
                return Response::new(full(Bytes::new()));
            }
            return stream(ctx(session), permit);
        }
        _ => {
            let mut res = Response::new(full(Bytes::new()));
            *res.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            res.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, POST, DELETE"));
            return res;
        }
    }

    let (parts, body) = req.into_parts();
    let limits = BodyLimits::of(&config.limits);
    let body = match read_body(body, content_length(&parts.headers), limits).await {
        Ok(b) => b,
        Err(ReadError::Broken) => return Response::new(full(Bytes::new())),
        Err(e) => return jsonrpc::unreadable(e, limits),
    };
    let message = match serde_json::from_slice::<Value>(&body) {
        Ok(v) => v,
        Err(_) => {
            let e = jsonrpc::error(None, jsonrpc::PARSE_ERROR, "the body is not JSON", None);
            return jsonrpc::with_reason(
                json_response(StatusCode::BAD_REQUEST, &e),
                Reason::BadRequest,
            );
        }
    };
    let message = match Message::classify(message) {
        Ok(m) => m,
        Err(why) => {
            let e = jsonrpc::error(None, jsonrpc::INVALID_REQUEST, why, None);
            return jsonrpc::with_reason(
                json_response(StatusCode::BAD_REQUEST, &e),
                Reason::BadRequest,
            );
        }
    };
    if let Message::Request { id, method, params } = &message {
        if method == "initialize" {
            return initialize(&gateway, &agent.id, scope, id, params.as_ref());
        }
        if method == "server/discover" && session.is_none() {
            // The 2026-07-28 probe: dual-era clients fall back to `initialize` on this.
            let e = jsonrpc::error(
                Some(id),
                jsonrpc::METHOD_NOT_FOUND,
                "this endpoint speaks MCP 2025-11-25: use initialize",
                None,
            );
            return json_response(StatusCode::NOT_FOUND, &e);
        }
    }
    let session = match session {
        Some(Some(s)) => s,
        Some(None) => return no_session(StatusCode::NOT_FOUND),
        None => return no_session(StatusCode::BAD_REQUEST),
    };
    // Absent means 2025-03-26 (the spec's rule); anything we do not speak is refused.
    if let Some(v) = parts.headers.get("mcp-protocol-version")
        && !VERSIONS
            .iter()
            .any(|known| known.as_bytes() == v.as_bytes())
    {
        let message = format!(
            "unsupported MCP-Protocol-Version; this endpoint speaks {}",
            VERSIONS.join(", ")
        );
        let e = jsonrpc::error(None, jsonrpc::INVALID_REQUEST, &message, None);
        return jsonrpc::with_reason(
            json_response(StatusCode::BAD_REQUEST, &e),
            Reason::BadRequest,
        );
    }
    let ctx = ctx(session);
    match message {
        Message::Request { id, method, params } => {
            let message = AgentRequest {
                id,
                method,
                params,
                size: body.len(),
            };
            request(ctx, &parts.headers, message, permit).await
        }
        Message::Notification { method, params } => {
            notification(&ctx, &method, params).await;
            accepted()
        }
        Message::Response { id, body } => {
            ctx.session.answer(&id, body);
            accepted()
        }
    }
}

/// The DNS-rebinding defence the MCP spec asks of servers: a browser's `Origin` must be
/// the gateway's own or listed in `mcp.allowed_origins`, and on a loopback listener the
/// `Host` must name the loopback address (a rebound name would not).
fn same_site(
    gateway: &Gateway,
    config: &airlock_core::Config,
    req: &Request<Incoming>,
) -> Result<(), Denial> {
    let own = gateway.listening();
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let listed = config
            .mcp
            .allowed_origins
            .iter()
            .any(|o| o.as_bytes() == origin.as_bytes());
        let ours = origin
            .to_str()
            .is_ok_and(|o| own_origins(own).iter().any(|mine| mine == o));
        if !listed && !ours {
            return Err(Denial::new(
                Reason::NotAllowed,
                "this Origin may not use the MCP endpoint",
            ));
        }
    }
    if own.ip().is_loopback() {
        // HTTP/2 names the host in `:authority` and may send a `Host` too: both must name
        // this listener (RFC 9113 8.3.1 asks that they agree).
        let named: Vec<Option<&str>> = [
            req.headers().get(header::HOST).map(|h| h.to_str().ok()),
            req.uri().authority().map(|a| Some(a.as_str())),
        ]
        .into_iter()
        .flatten()
        .collect();
        let ours = |h: &Option<&str>| h.is_some_and(|h| names_loopback(h, own.port()));
        if named.is_empty() || !named.iter().all(ours) {
            return Err(Denial::new(
                Reason::NotAllowed,
                "the Host header must name this loopback listener",
            ));
        }
    }
    Ok(())
}

/// The origins a page served by this listener itself would send.
fn own_origins(addr: std::net::SocketAddr) -> Vec<String> {
    if addr.ip().is_loopback() {
        let port = addr.port();
        vec![
            format!("http://127.0.0.1:{port}"),
            format!("http://localhost:{port}"),
            format!("http://[::1]:{port}"),
        ]
    } else {
        vec![format!("http://{addr}")]
    }
}

/// Whether a `Host` value names a loopback address with this port (`localhost` too).
fn names_loopback(host: &str, port: u16) -> bool {
    let Ok(authority) = host.parse::<http::uri::Authority>() else {
        return false;
    };
    let name = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let loopback = name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    loopback && authority.port_u16().unwrap_or(80) == port
}

fn initialize(
    gateway: &Gateway,
    agent: &str,
    scope: Scope,
    id: &Value,
    params: Option<&Value>,
) -> Response<Body> {
    let asked = params
        .and_then(|p| p["protocolVersion"].as_str())
        .unwrap_or_default();
    let version = VERSIONS
        .iter()
        .find(|v| **v == asked)
        .unwrap_or(&VERSIONS[0]);
    let capabilities = params
        .and_then(|p| p.get("capabilities"))
        .cloned()
        .unwrap_or_else(|| json!({}));
    let name = match &scope {
        Scope::Federated => "airlock".to_string(),
        Scope::Single(server) => format!("airlock/{server}"),
    };
    let session = gateway.mcp.sessions.create(agent, scope, capabilities);
    let result = json!({
        "protocolVersion": version,
        "capabilities": {
            "tools": {"listChanged": true},
            "prompts": {"listChanged": true},
            "resources": {"subscribe": true, "listChanged": true},
            "logging": {},
            "completions": {},
        },
        "serverInfo": {"name": name, "version": env!("CARGO_PKG_VERSION")},
    });
    let mut res = json_response(StatusCode::OK, &jsonrpc::result(id, result));
    if let Ok(v) = HeaderValue::from_str(&session.id) {
        res.headers_mut().insert(SESSION, v);
    }
    res
}

/// A request from the agent, as read.
struct AgentRequest {
    id: Value,
    method: String,
    params: Option<Value>,
    size: usize,
}

async fn request(
    ctx: Ctx,
    headers: &HeaderMap,
    message: AgentRequest,
    permit: AgentPermit,
) -> Response<Body> {
    let AgentRequest {
        id,
        method,
        params,
        size,
    } = message;
    let mut params = params.unwrap_or_else(|| json!({}));
    let ok = |result: Value| json_response(StatusCode::OK, &jsonrpc::result(&id, result));
    if method == "ping" {
        return ok(json!({}));
    }
    if let Some(listing) = Listing::of(&method) {
        return ok(ctx.list(listing).await);
    }
    if method == "logging/setLevel" {
        for server in ctx.servers() {
            let (ctx, params) = (ctx.clone(), params.clone());
            tokio::spawn(
                async move { ctx.request(&server, "logging/setLevel", Some(params)).await },
            );
        }
        return ok(json!({}));
    }
    let routed = match method.as_str() {
        "tools/call" | "prompts/get" => route(&ctx, &mut params, "/name", Field::Name),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
            route(&ctx, &mut params, "/uri", Field::Uri)
        }
        "completion/complete" => match params["ref"]["type"].as_str() {
            Some("ref/prompt") => route(&ctx, &mut params, "/ref/name", Field::Name),
            _ => route(&ctx, &mut params, "/ref/uri", Field::Uri),
        },
        _ => {
            let e = jsonrpc::error(
                Some(&id),
                jsonrpc::METHOD_NOT_FOUND,
                &format!("method `{method}` is not offered"),
                None,
            );
            return json_response(StatusCode::OK, &e);
        }
    };
    let Some((server, name, upstream_name)) = routed else {
        let e = jsonrpc::error(
            Some(&id),
            jsonrpc::INVALID_PARAMS,
            "no such tool, prompt or resource",
            None,
        );
        return json_response(StatusCode::OK, &e);
    };
    // Subscriptions and completions are relayed unmetered and unguarded.
    if !matches!(
        method.as_str(),
        "tools/call" | "prompts/get" | "resources/read"
    ) {
        return call::forward(ctx, id, method, params, server, None).await;
    }

    let gateway = ctx.gateway.clone();
    let operation = if method == "tools/call" {
        &name
    } else {
        &method
    };
    let meta = params.get("_meta").and_then(Value::as_object);
    let mut guard = CallGuard::open_with_meta(gateway, Kind::Mcp, operation, headers, meta).await;
    guard.admitted(ctx.agent.clone(), permit);
    {
        let call = guard.call();
        call.annotate("mcp.session.id", || ctx.session.id.clone());
        call.annotate("jsonrpc.request.id", || jsonrpc::id_text(&id));
        call.target = Some(Target {
            provider: server.name.clone(),
            model: upstream_name.clone(),
        });
        call.bytes_in = size as u64;
        call.extra.insert("server".into(), json!(server.name));
    }
    let admitted = if method == "tools/call" {
        admit_tool(&ctx, &mut guard, &server, &upstream_name, &params).await
    } else {
        // Suspension, the kill switch and rate limits hold for every metered call.
        controls::admit(&mut guard, &ctx.agent, None, Estimate::default()).await
    };
    // The arguments leave for the tool server redacted, or not at all.
    let admitted = admitted.and_then(|()| {
        content::value(
            &mut guard,
            &ctx.agent,
            params.get_mut("arguments"),
            "arguments",
        )
    });
    if let Err(d) = admitted {
        guard.finish(Ending {
            status: 200,
            ..Ending::denied(&d)
        });
        if matches!(
            d.reason,
            Reason::UpstreamUnavailable | Reason::UpstreamTimeout | Reason::UpstreamError
        ) {
            // Listing the server first failed: the same error a call to it would get.
            let e = jsonrpc::upstream_failure(Some(&id), &server.name, d.reason, &d.message);
            return jsonrpc::with_reason(json_response(StatusCode::OK, &e), d.reason);
        }
        return jsonrpc::refusal(StatusCode::OK, Some(&id), &d);
    }
    // MCP carries trace context in `params._meta` (every transport, stdio too): the
    // server's spans become children of Airlock's.
    if let Some(trace) = guard.call().upstream_trace() {
        trace.replace_meta(&mut params);
    }
    call::forward(ctx, id, method, params, server, Some(guard)).await
}

/// Stage 3 for a tool call: policy, pins, then the shared controls.
async fn admit_tool(
    ctx: &Ctx,
    guard: &mut CallGuard,
    server: &airlock_core::config::mcp::McpServer,
    tool: &str,
    params: &Value,
) -> Result<(), Denial> {
    let mcp = &ctx.config.mcp;
    let qualified = mcp.tool_name(&server.name, tool);
    guard.call().tool = Some(qualified.clone());
    guard.call().extra.insert("tool".into(), json!(tool));
    ctx.decide_tool(&server.name, tool)?;
    let pins = &ctx.gateway.mcp.pins;
    if pins.check(mcp, &server.name, tool).is_none() {
        // Called before it was ever listed: list its server first, so pins hold.
        ctx.list_server_tools(server)
            .await
            .map_err(|e| Denial::new(e.reason(), e.to_string()))?;
    }
    match pins.check(mcp, &server.name, tool) {
        Some(verdict) => verdict?,
        None => {
            return Err(Denial::new(
                Reason::NotFound,
                format!("MCP server `{}` offers no tool `{tool}`", server.name),
            ));
        }
    }
    let needs = Needs::of(&ctx.config, &ctx.agent);
    let fp = needs.fingerprint.then(|| {
        let target = format!("{}/{tool}", server.name);
        fingerprint(
            &ctx.agent.id,
            Kind::Mcp,
            &target,
            "tools/call",
            params.get("arguments"),
        )
    });
    controls::admit(guard, &ctx.agent, fp, Estimate::default()).await
}

enum Field {
    Name,
    Uri,
}

/// Finds the upstream of a request and rewrites the name or URI at `pointer` to the
/// upstream's. Returns (server, the name as the agent sent it, the upstream's name).
fn route(
    ctx: &Ctx,
    params: &mut Value,
    pointer: &str,
    field: Field,
) -> Option<(airlock_core::config::mcp::McpServer, String, String)> {
    let slot = params.pointer_mut(pointer)?;
    let public = slot.as_str()?.to_string();
    let (server, upstream) = match field {
        Field::Name => ctx.route_name(&public)?,
        Field::Uri => ctx.route_uri(&public)?,
    };
    let upstream = upstream.to_string();
    *slot = json!(upstream);
    Some((server, public, upstream))
}

async fn notification(ctx: &Ctx, method: &str, params: Option<Value>) {
    match method {
        "notifications/cancelled" => {
            if let Some(p) = &params
                && let Some(id) = p.get("requestId")
            {
                ctx.session.cancel(id, p.get("reason"));
            }
        }
        "notifications/roots/list_changed" => {
            for link in ctx.session.open_links().await {
                let msg = jsonrpc::notification(method, params.clone());
                tokio::spawn(async move { link.send(msg).await });
            }
        }
        // `initialized` and the rest concern the gateway's own session only.
        _ => {}
    }
}

/// The agent's GET stream: notifications and requests from upstreams that belong to no
/// call. Opening it connects the session's upstreams, so their news reaches the agent.
fn stream(ctx: Ctx, permit: AgentPermit) -> Response<Body> {
    let mut inbox = ctx.session.open_stream();
    for server in ctx.servers() {
        let ctx = ctx.clone();
        tokio::spawn(async move { ctx.link(&server).await });
    }
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let mut stopping = ctx.gateway.stopping.subscribe();
    tokio::spawn(async move {
        // The open stream is one of the agent's calls in flight while it lasts.
        let _permit = permit;
        let mut tick = tokio::time::interval(KEEP_ALIVE);
        loop {
            let chunk = tokio::select! {
                msg = inbox.recv() => match msg {
                    Some(m) => sse_event(&m),
                    None => return,
                },
                _ = tick.tick() => Bytes::from_static(b": keep-alive\n\n"),
                // A notification stream is no call to finish: it must not hold shutdown.
                _ = stopping.wait_for(|s| *s) => return,
            };
            if tx.send(chunk).await.is_err() {
                return;
            }
        }
    });
    sse_response(rx)
}

/// One JSON-RPC message as an SSE event.
fn sse_event(msg: &Value) -> Bytes {
    Bytes::from(format!("event: message\ndata: {msg}\n\n"))
}

/// Locks a mutex of the MCP state; a panic elsewhere never poisons the gateway.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn accepted() -> Response<Body> {
    let mut res = Response::new(full(Bytes::new()));
    *res.status_mut() = StatusCode::ACCEPTED;
    res
}

fn no_session(status: StatusCode) -> Response<Body> {
    let message = if status == StatusCode::BAD_REQUEST {
        "an Mcp-Session-Id header is required: initialize first"
    } else {
        "no such session (it expired or belongs to another agent): initialize again"
    };
    let e = jsonrpc::error(None, jsonrpc::INVALID_REQUEST, message, None);
    json_response(status, &e)
}
