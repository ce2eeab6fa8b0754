//! A request routed to one upstream (`tools/call`, `prompts/get`, `resources/read`, …).
//! The answer goes back as JSON when the upstream answers straight away, and as an SSE
//! stream when it first sends something else — progress, a log line, a sampling request —
//! which is then relayed the moment it arrives, the response last.

use std::time::Duration;

use airlock_core::Reason;
use airlock_core::config::Agent;
use airlock_core::config::mcp::McpServer;
use airlock_core::guards::dlp::Detectors;
use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::federation::Ctx;
use super::session::Scope;
use super::upstream::{Link, UpstreamError};
use super::{jsonrpc, sse_event};
use crate::content::{self, Inbound};
use crate::http::{Body, json_response, sse_response};
use crate::pipeline::{CallGuard, Ending};

/// How the upstream's answer ended, for the agent and for the ledger.
struct Answer {
    /// The response message in the agent's numbering.
    message: Value,
    reason: Option<Reason>,
    is_error: bool,
    /// Injected instructions found in the result.
    inbound: Inbound,
}

pub async fn forward(
    ctx: Ctx,
    id: Value,
    method: String,
    params: Value,
    server: McpServer,
    meter: Option<CallGuard>,
) -> Response<Body> {
    let (side_tx, mut side_rx) = mpsc::unbounded_channel();
    let (done_tx, mut done_rx) = oneshot::channel();
    let link = match ctx.link(&server).await {
        Ok(l) => l,
        Err(e) => {
            let answer = failure(&id, &server.name, &e);
            return respond_json(answer, meter);
        }
    };
    // The upstream call runs on its own: an agent that drops its connection has not
    // cancelled (MCP says so); it sends `notifications/cancelled` for that.
    let drive_ctx = ctx.clone();
    let (drive_id, drive_server, drive_link) = (id.clone(), server.clone(), link.clone());
    tokio::spawn(async move {
        let answer = drive(
            &drive_ctx,
            &drive_id,
            &method,
            params,
            &drive_server,
            drive_link,
            side_tx,
        )
        .await;
        drive_ctx.session.end_call(&drive_id);
        let _ = done_tx.send(answer);
    });

    // An answer alone goes back as plain JSON, the cheaper shape; anything the upstream
    // sent before it (progress, a log line, a request) makes the answer an SSE stream,
    // and nothing that came first is dropped.
    let (first, early) = tokio::select! {
        biased;
        answer = &mut done_rx => match side_rx.try_recv() {
            Ok(msg) => (Some(msg), Some(answer)),
            Err(_) => {
                let answer = answer.unwrap_or_else(|_| lost(&id, &server.name));
                return respond_json(answer, meter);
            }
        },
        first = side_rx.recv() => (first, None),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let session = ctx.session.clone();
    let server_name = server.name.clone();
    let agent = ctx.agent.clone();
    let detectors = ctx.config.detectors.clone();
    let mut meter = meter;
    tokio::spawn(async move {
        let (mut next, mut answer) = (first, early);
        let mut delivered = true;
        // Our ids of the server requests relayed for this call, forgotten when it ends.
        let mut asked = Vec::new();
        loop {
            if let Some(msg) = next.take() {
                if !delivered {
                    // The agent's stream is gone: a server request could never be answered.
                    if msg.get("id").is_some() && msg.get("method").is_some() {
                        session.refuse(&link, &msg, "the agent's stream for this call is closed");
                    }
                } else if let Some(why) = watch_request(&detectors, &agent, &msg, &mut meter) {
                    session.refuse(&link, &msg, &why);
                } else if let Some(out) = session.relay(&server_name, &link, msg) {
                    // `relay` passes on requests (with our id) and notifications (no id).
                    asked.extend(out.get("id").cloned());
                    delivered &= tx.send(sse_event(&out)).await.is_ok();
                }
            }
            if answer.is_some() {
                // The call has ended: what it queued before its answer still goes first.
                match side_rx.try_recv() {
                    Ok(msg) => next = Some(msg),
                    Err(_) => break,
                }
                continue;
            }
            tokio::select! {
                m = side_rx.recv() => match m {
                    Some(m) => next = Some(m),
                    None => answer = Some((&mut done_rx).await),
                },
                a = &mut done_rx => answer = Some(a),
            }
        }
        session.forget_asked(&asked);
        let answer = answer
            .and_then(Result::ok)
            .unwrap_or_else(|| lost(&id, &server_name));
        delivered &= tx.send(sse_event(&answer.message)).await.is_ok();
        settle(meter, &answer, delivered);
    });
    sse_response(rx)
}

/// Reads what a server asks the agent's model to read — a sampling request's messages and
/// system prompt, an elicitation's message — for injected instructions: a server that
/// cannot put them in a result may try there. Records the hits in the call's event; under
/// `block`, the reason the request is refused instead of relayed.
fn watch_request(
    detectors: &Detectors,
    agent: &Agent,
    msg: &Value,
    meter: &mut Option<CallGuard>,
) -> Option<String> {
    let method = msg.get("method")?.as_str()?;
    if msg.get("id").is_none() || !matches!(method, "sampling/createMessage" | "elicitation/create")
    {
        return None;
    }
    let inbound = content::inbound(detectors, agent, &msg["params"], method);
    if let Some(guard) = meter {
        inbound.record(guard);
    }
    inbound.denial.map(|d| d.message)
}

/// Sends the request upstream (reopening an expired upstream session once) and turns
/// the upstream's response into the agent's.
async fn drive(
    ctx: &Ctx,
    id: &Value,
    method: &str,
    params: Value,
    server: &McpServer,
    mut link: Link,
    side: mpsc::UnboundedSender<Value>,
) -> Answer {
    let timeout: Duration = ctx.timeout();
    let mut retried = false;
    let response = loop {
        let pending = link
            .mux()
            .prepare(method, Some(params.clone()), Some(side.clone()));
        ctx.session.start_call(id, &link, pending.id);
        match link.call(pending, timeout).await {
            Err(UpstreamError::SessionExpired { .. }) if !retried => {
                retried = true;
                ctx.session.drop_link(&server.name, &link).await;
                match ctx.link(server).await {
                    Ok(l) => link = l,
                    Err(e) => return failure(id, &server.name, &e),
                }
            }
            Err(e) => return failure(id, &server.name, &e),
            Ok(r) => break r,
        }
    };
    let mut message = response;
    // A response is an object: `dispatch` matched it to its waiter by its `id`.
    if let Some(slot) = message.get_mut("id") {
        *slot = id.clone();
    }
    if let Some(err) = message.get("error") {
        tracing::debug!(server = %server.name, method, error = %err, "the MCP server answered an error");
        return Answer {
            message,
            reason: Some(Reason::UpstreamError),
            is_error: false,
            inbound: Inbound::none(),
        };
    }
    if method == "resources/read"
        && ctx.session.scope == Scope::Federated
        && let Some(contents) = message
            .pointer_mut("/result/contents")
            .and_then(Value::as_array_mut)
    {
        for uri in contents.iter_mut().filter_map(|c| c.get_mut("uri")) {
            if let Some(original) = uri.as_str().map(str::to_string) {
                *uri = json!(format!("{}+{original}", server.name));
            }
        }
    }
    let is_error = message["result"]["isError"].as_bool() == Some(true);
    // Only metered calls are watched: an unrecorded block would be a silent one.
    let (message, inbound) = if matches!(method, "tools/call" | "prompts/get" | "resources/read") {
        let (detectors, agent) = (ctx.config.detectors.clone(), ctx.agent.clone());
        content::inbound_owned(detectors, agent, message, "/result", "result").await
    } else {
        (message, Inbound::none())
    };
    if let Some(d) = &inbound.denial {
        return Answer {
            message: jsonrpc::denial(Some(id), d),
            reason: Some(d.reason),
            is_error,
            inbound,
        };
    }
    Answer {
        message,
        reason: None,
        is_error,
        inbound,
    }
}

fn failure(id: &Value, server: &str, e: &UpstreamError) -> Answer {
    match e {
        UpstreamError::Cancelled { .. } => tracing::debug!(error = %e, "an MCP call was cancelled"),
        _ => tracing::warn!(error = %e, "an MCP call failed upstream"),
    }
    Answer {
        message: jsonrpc::upstream_failure(Some(id), server, e.reason(), &e.to_string()),
        reason: Some(e.reason()),
        is_error: false,
        inbound: Inbound::none(),
    }
}

fn lost(id: &Value, server: &str) -> Answer {
    failure(
        id,
        server,
        &UpstreamError::Unavailable {
            server: server.into(),
            detail: "the call was lost".into(),
        },
    )
}

fn respond_json(answer: Answer, meter: Option<CallGuard>) -> Response<Body> {
    let res = json_response(StatusCode::OK, &answer.message);
    settle(meter, &answer, true);
    res
}

/// Records the call: served, failed upstream, or (the agent left before the answer
/// reached it) cancelled.
fn settle(meter: Option<CallGuard>, answer: &Answer, delivered: bool) {
    let Some(mut guard) = meter else { return };
    guard
        .call()
        .extra
        .insert("is_error".into(), json!(answer.is_error));
    answer.inbound.record(&mut guard);
    let bytes_out = answer.message.to_string().len() as u64;
    if delivered && answer.reason != Some(Reason::ClientClosed) {
        guard.finish(Ending {
            status: 200,
            reason: answer.reason,
            usage: Default::default(),
            bytes_out,
        });
    } else {
        // The agent left before the answer reached it, or Airlock is cutting calls at
        // shutdown.
        guard.cut_short(None, Default::default(), bytes_out);
    }
}
