//! Plain-HTTP requests in absolute form (`GET http://host/path`): sent on a connection of
//! their own to the checked address, in origin form, the answer streamed back.

use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpStream;

use airlock_core::{Denial, Reason};

use crate::http::Body;
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

pub async fn send(
    mut guard: CallGuard,
    req: Request<Incoming>,
    upstream: TcpStream,
) -> Response<Body> {
    let (mut parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    {
        let call = guard.call();
        call.extra.insert("path".into(), json!(path));
        call.bytes_in = crate::http::content_length(&parts.headers).unwrap_or(0);
        call.extra.insert("bytes_up".into(), json!(call.bytes_in));
    }
    parts.uri = Uri::try_from(path.as_str()).unwrap_or_else(|_| Uri::from_static("/"));
    strip_hop_by_hop(&mut parts.headers);
    let req = Request::from_parts(parts, body);
    let failed = |guard: CallGuard, message: String| {
        let d = Denial::new(Reason::UpstreamUnavailable, message);
        guard.finish(Ending::denied(&d));
        super::refusal(&d)
    };
    let (mut sender, conn) =
        match hyper::client::conn::http1::handshake(TokioIo::new(upstream)).await {
            Ok(pair) => pair,
            Err(e) => return failed(guard, format!("the HTTP exchange failed: {e}")),
        };
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "an egress connection ended with an error");
        }
    });
    let res = match sender.send_request(req).await {
        Ok(res) => res,
        Err(e) => return failed(guard, format!("the destination did not answer: {e}")),
    };
    guard.responding();
    let (mut parts, body) = res.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let status = parts.status.as_u16();
    let body = MeteredBody::new(body, Tap::Opaque, guard, status, None, 0);
    Response::from_parts(parts, http_body_util::BodyExt::boxed_unsync(body))
}
