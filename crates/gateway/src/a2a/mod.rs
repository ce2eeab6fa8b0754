//! The A2A gateway: each remote agent of `a2a.agents` is served at `/a2a/<name>` — its
//! card (rewritten to point at Airlock) at `/a2a/<name>/.well-known/agent-card.json` and
//! `…/agent.json`, its JSON-RPC (A2A 1.0 and 0.3) at `POST /a2a/<name>`. Agents sign in
//! with their Airlock key; remote agents see Airlock with the credentials from config.
//!
//! A call travels the usual stages: classify (the method table of `airlock_core::a2a`),
//! identify, decide (allow lists, push configs, then the shared controls), forward
//! (`forward.rs`: JSON or an SSE stream relayed event by event), settle (task id and
//! final state on the event).

mod card;
mod forward;

use std::sync::Arc;

use airlock_core::a2a::{self, Purpose, TaskFacts};
use airlock_core::config::Target;
use airlock_core::config::a2a::RemoteAgent;
use airlock_core::fingerprint::fingerprint;
use airlock_core::{Denial, Kind, Reason};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use serde_json::{Value, json};

use crate::content;
use crate::controls::{self, Estimate, Needs};
use crate::gateway::Gateway;
use crate::http::{
    Body, BodyLimits, ReadError, content_length, drain_refused, full, json_response, read_body,
};
use crate::identity::presented_key;
use crate::in_flight::AgentPermit;
use crate::jsonrpc::{self, Message};
use crate::pipeline::{CallGuard, Ending, run_id};

pub use self::card::Cards;

pub async fn handle(gateway: Arc<Gateway>, req: Request<Incoming>) -> Response<Body> {
    let runtime = gateway.runtime();
    let config = runtime.config.clone();
    let rest = req.uri().path().strip_prefix("/a2a/").unwrap_or_default();
    let (name, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let Some(remote) = config.a2a.agents.get(name).cloned() else {
        let d = Denial::new(Reason::NotFound, format!("no remote agent `{name}`"));
        return jsonrpc::refusal(StatusCode::NOT_FOUND, None, &d);
    };
    let is_card = match tail {
        "" => false,
        ".well-known/agent-card.json" | ".well-known/agent.json" => true,
        _ => {
            let d = Denial::new(
                Reason::NotFound,
                format!(
                    "remote agent `{name}` is served at /a2a/{name} (JSON-RPC) and /a2a/{name}/.well-known/agent-card.json"
                ),
            );
            return jsonrpc::refusal(StatusCode::NOT_FOUND, None, &d);
        }
    };
    let agent = presented_key(req.headers()).and_then(|k| runtime.keys.identify(k));
    let Some(agent) = agent else {
        let res = unauthorized(gateway, &remote, is_card, req.headers()).await;
        drain_refused(req).await;
        return res;
    };
    // A suspended agent, or one with too many calls open, is refused before its message
    // is read.
    let (permit, req) = match jsonrpc::enter(&gateway, Kind::A2a, &agent, req).await {
        Ok(entered) => entered,
        Err(refused) => return refused,
    };
    match (is_card, req.method()) {
        (true, &Method::GET) => {
            let base = base_url(req.headers(), req.uri(), &config, &remote.name);
            let timeout = config.limits.upstream_timeout;
            match gateway.a2a.get(&gateway.upstream, &remote, timeout).await {
                Ok(upstream) => {
                    let mut card = (*upstream).clone();
                    a2a::card::rewrite(&mut card, &base);
                    let mut res = json_response(StatusCode::OK, &card);
                    res.headers_mut().insert(
                        header::CACHE_CONTROL,
                        HeaderValue::from_static("private, max-age=60"),
                    );
                    res
                }
                Err(d) => {
                    let status =
                        StatusCode::from_u16(d.reason.status()).unwrap_or(StatusCode::BAD_GATEWAY);
                    let e = failure(None, &remote.name, &d);
                    jsonrpc::with_reason(json_response(status, &e), d.reason)
                }
            }
        }
        (false, &Method::POST) => rpc(gateway, config, remote, (agent, permit), req).await,
        (is_card, _) => {
            let mut res = Response::new(full(Bytes::new()));
            *res.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            let allow = if is_card { "GET" } else { "POST" };
            res.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
            res
        }
    }
}

/// No key, or one Airlock does not know: 401, recorded like any refused call.
async fn unauthorized(
    gateway: Arc<Gateway>,
    remote: &RemoteAgent,
    is_card: bool,
    headers: &HeaderMap,
) -> Response<Body> {
    let operation = if is_card { "agent-card" } else { "a2a" };
    let mut guard = CallGuard::open(gateway, Kind::A2a, operation, headers).await;
    guard.call().target = Some(target(remote));
    jsonrpc::unauthorized(guard, headers)
}

/// One JSON-RPC request: classify, decide, admit, then forward.
async fn rpc(
    gateway: Arc<Gateway>,
    config: Arc<airlock_core::Config>,
    remote: RemoteAgent,
    (agent, permit): (Arc<airlock_core::config::Agent>, AgentPermit),
    req: Request<Incoming>,
) -> Response<Body> {
    let base = base_url(req.headers(), req.uri(), &config, &remote.name);
    let (parts, body) = req.into_parts();
    let limits = BodyLimits::of(&config.limits);
    let body = match read_body(body, content_length(&parts.headers), limits).await {
        Ok(b) => b,
        Err(ReadError::Broken) => return Response::new(full(Bytes::new())),
        Err(e) => return jsonrpc::unreadable(e, limits),
    };
    let bad = |code: i64, why: &str| {
        let e = jsonrpc::error(None, code, why, Some(json!({"reason": "bad_request"})));
        jsonrpc::with_reason(
            json_response(StatusCode::BAD_REQUEST, &e),
            Reason::BadRequest,
        )
    };
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        return bad(jsonrpc::PARSE_ERROR, "the body is not JSON");
    };
    let (id, method, params) = match Message::classify(message) {
        Ok(Message::Request { id, method, params }) => (id, method, params),
        Ok(_) => return bad(jsonrpc::INVALID_REQUEST, "A2A takes requests only"),
        Err(why) => return bad(jsonrpc::INVALID_REQUEST, why),
    };
    let Some(info) = a2a::method(&method) else {
        let e = jsonrpc::error(
            Some(&id),
            jsonrpc::METHOD_NOT_FOUND,
            &format!("method `{method}` is not an A2A 1.0 or 0.3 method"),
            None,
        );
        return json_response(StatusCode::OK, &e);
    };
    let params = params.unwrap_or_else(|| json!({}));

    let mut guard = CallGuard::open(gateway.clone(), Kind::A2a, &method, &parts.headers).await;
    guard.admitted(agent.clone(), permit);
    let facts = TaskFacts::of_request(&params);
    {
        let call = guard.call();
        call.target = Some(target(&remote));
        call.bytes_in = body.len() as u64;
        call.annotate("jsonrpc.request.id", || jsonrpc::id_text(&id));
        if info.purpose == Purpose::Message {
            // Sending a message is what the GenAI conventions call invoking an agent.
            call.annotate("gen_ai.operation.name", || "invoke_agent");
        }
        call.extra
            .insert("a2a_version".into(), json!(info.version.as_str()));
        // The conversation is the natural run: loop rules per run apply to it.
        if call.run_id.is_none() {
            call.run_id = facts.context_id.as_deref().and_then(run_id);
        }
    }
    let admitted = async {
        if let Some(url) = a2a::decide(&agent, &remote.name, info, &params)? {
            crate::egress::vet_url(&config, &agent, &url).await?;
        }
        let fp = Needs::of(&config, &agent)
            .fingerprint
            .then(|| fingerprint(&agent.id, Kind::A2a, &remote.name, &method, Some(&params)));
        controls::admit(&mut guard, &agent, fp, Estimate::default()).await?;
        // Message parts leave redacted, or not at all; the envelope goes byte for byte.
        content::json_body(&mut guard, &agent, &body, "params").await
    }
    .await;
    let body = match admitted {
        Ok(redacted) => redacted.unwrap_or(body),
        Err(d) => {
            settle(guard, &facts, 200, Some(d.reason), 0);
            return jsonrpc::refusal(StatusCode::OK, Some(&id), &d);
        }
    };
    let call = forward::Rpc {
        gateway,
        remote,
        id,
        method: info,
        body,
        base,
        timeout: config.limits.upstream_timeout,
        facts,
    };
    forward::forward(call, &parts.headers, guard).await
}

/// A remote agent as the target of events: its name alone.
fn target(remote: &RemoteAgent) -> Target {
    Target {
        provider: remote.name.clone(),
        model: String::new(),
    }
}

/// Where agents reach `name` through this gateway: the Host they used, so the card works
/// from wherever they stand (behind a port mapping too).
fn base_url(
    headers: &HeaderMap,
    uri: &http::Uri,
    config: &airlock_core::Config,
    name: &str,
) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-_:[]".contains(&b))
        })
        .map_or_else(|| config.listen.gateway.to_string(), str::to_string);
    format!("http://{host}/a2a/{name}")
}

/// Records the call with what is known of its task.
fn settle(
    guard: CallGuard,
    facts: &TaskFacts,
    status: u16,
    reason: Option<Reason>,
    bytes_out: u64,
) {
    with_facts(guard, facts).finish(Ending {
        status,
        reason,
        usage: Default::default(),
        bytes_out,
    });
}

/// Records a stream that stopped before its end: the agent left, or Airlock cut it at
/// shutdown.
fn settle_cut_short(guard: CallGuard, facts: &TaskFacts, bytes_out: u64) {
    with_facts(guard, facts).cut_short(Some(200), Default::default(), bytes_out);
}

fn with_facts(mut guard: CallGuard, facts: &TaskFacts) -> CallGuard {
    let call = guard.call();
    for (key, value) in [
        ("task_id", &facts.task_id),
        ("task_state", &facts.state),
        ("context_id", &facts.context_id),
    ] {
        if let Some(v) = value {
            call.extra.insert(key.into(), json!(v));
        }
    }
    if call.run_id.is_none() {
        call.run_id = facts.context_id.as_deref().and_then(run_id);
    }
    guard
}

/// A remote agent's failure as a JSON-RPC error naming it: `-32603`, `data.reason`.
fn failure(id: Option<&Value>, agent: &str, d: &Denial) -> Value {
    jsonrpc::error(
        id,
        jsonrpc::INTERNAL_ERROR,
        &d.message,
        Some(json!({"reason": d.reason.code(), "agent": agent})),
    )
}
