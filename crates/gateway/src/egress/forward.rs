//! Plain-HTTP requests in absolute form (`GET http://host/path`): sent to the checked
//! address on a kept-alive connection of the egress pool, in origin form with the agent's
//! `Host`, the answer streamed back.

use http::{HeaderMap, HeaderValue, Request, Response, Uri, header};
use http_body::Body as _;
use http_body_util::BodyExt;
use std::net::SocketAddr;

use hyper::body::Incoming;
use serde_json::json;

use airlock_core::{Denial, Reason};

use crate::content;
use crate::http::{Body, BodyLimits, content_length, content_type, full, read_body};
use crate::llm::meter::{MeteredBody, Tap};
use crate::pipeline::{CallGuard, Ending};

/// Request headers a forward proxy must not pass on (RFC 9110 §7.6.1) and the agent's
/// proxy credentials.
fn hop_by_hop(name: &http::HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection" | "keep-alive" | "te" | "trailer" | "transfer-encoding" | "upgrade"
    ) || name.as_str().starts_with("proxy-")
}

fn strip_hop_by_hop(headers: &mut http::HeaderMap) {
    let names: Vec<_> = headers.keys().filter(|n| hop_by_hop(n)).cloned().collect();
    for name in names {
        headers.remove(name);
    }
}

/// The body as it is to leave. It streams through untouched unless the agent has DLP rules
/// and it is declared text (JSON, `text/*`, XML, a form); then it is read whole (up to
/// `limits.max_body`), guarded, and maybe redacted. A compressed body, or one of no
/// declared type, cannot be read as text and passes, marked `dlp_unscanned`.
async fn guarded_body(
    guard: &mut CallGuard,
    headers: &mut HeaderMap,
    body: Incoming,
) -> Result<Body, Denial> {
    let agent = guard.call().agent.clone();
    let streamed = |body: Incoming| Ok(body.map_err(Into::into).boxed_unsync());
    let Some(agent) = agent.filter(|a| a.guards.dlp.is_some()) else {
        return streamed(body);
    };
    if body.is_end_stream() {
        return streamed(body);
    }
    let essence = content_type(headers);
    let unread_as = match essence.as_deref() {
        _ if headers.contains_key(header::CONTENT_ENCODING) => Some("content-encoding"),
        None => Some("no-content-type"),
        Some(_) => None,
    };
    if let Some(why) = unread_as {
        guard
            .call()
            .extra
            .insert("dlp_unscanned".into(), json!(why));
        return streamed(body);
    }
    let essence = essence.unwrap_or_default();
    let json = essence == "application/json" || essence.ends_with("+json");
    let textual = json
        || essence.starts_with("text/")
        || essence == "application/x-www-form-urlencoded"
        || essence.ends_with("xml");
    if !textual {
        return streamed(body);
    }
    let limits = BodyLimits::of(&guard.runtime().config.limits);
    let bytes = read_body(body, content_length(headers), limits)
        .await
        .map_err(|e| guard.unread(e, limits))?;
    let redacted = if json {
        content::json_body(guard, &agent, &bytes, "").await?
    } else {
        content::text_body(guard, &agent, &bytes).await?
    };
    let out = redacted.unwrap_or(bytes);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(out.len()));
    Ok(full(out))
}

pub async fn send(
    mut guard: CallGuard,
    req: Request<Incoming>,
    addr: SocketAddr,
) -> Response<Body> {
    let (mut parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    if !parts.headers.contains_key(header::HOST)
        && let Some(host) = parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    {
        parts.headers.insert(header::HOST, host);
    }
    {
        let call = guard.call();
        call.extra.insert("path".into(), json!(path));
        call.bytes_in = crate::http::content_length(&parts.headers).unwrap_or(0);
        call.extra.insert("bytes_up".into(), json!(call.bytes_in));
    }
    // The address checked, never the name again: the pool keys connections by it.
    let origin = format!("http://{addr}");
    parts.uri = Uri::try_from(format!("{origin}{path}"))
        .or_else(|_| Uri::try_from(format!("{origin}/")))
        .unwrap_or_else(|_| Uri::from_static("/"));
    strip_hop_by_hop(&mut parts.headers);
    // The destination's spans become children of Airlock's, not of the agent's.
    if let Some(trace) = guard.call().upstream_trace() {
        trace.replace_headers(&mut parts.headers);
    }
    let refuse = |guard: CallGuard, d: Denial| {
        guard.finish(Ending::denied(&d));
        super::refusal(&d)
    };
    let body = match guarded_body(&mut guard, &mut parts.headers, body).await {
        Ok(b) => b,
        Err(d) => return refuse(guard, d),
    };
    let req = Request::from_parts(parts, body);
    let failed = |guard: CallGuard, message: String| {
        refuse(guard, Denial::new(Reason::UpstreamUnavailable, message))
    };
    let client = guard.gateway().egress.clone();
    let res = match client.request(req).await {
        Ok(res) => res,
        Err(e) if timed_out(&e) => {
            let d = Denial::new(
                Reason::UpstreamTimeout,
                format!("connecting to {addr} took too long: {e}"),
            );
            return refuse(guard, d);
        }
        Err(e) if e.is_connect() => return failed(guard, format!("cannot connect to {addr}: {e}")),
        Err(e) => return failed(guard, format!("the destination did not answer: {e}")),
    };
    guard.responding();
    let (mut parts, body) = res.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let status = parts.status.as_u16();
    let body = MeteredBody::new(body, Tap::Opaque, guard, status, None, 0);
    Response::from_parts(parts, body.boxed_unsync())
}

/// Whether the pool's connect gave up on time (`EGRESS_CONNECT_TIMEOUT`).
fn timed_out(e: &hyper_util::client::legacy::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(err) = source {
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        source = err.source();
    }
    false
}
