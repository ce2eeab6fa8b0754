//! The admin listener: health, Prometheus metrics, the operator API and the dashboard. It
//! never shares a port with agents, and everything under `/api/` needs
//! `AIRLOCK_ADMIN_TOKEN`, as a bearer token or through a dashboard session made with it.

use std::sync::Arc;
use std::time::Duration;

use airlock_core::Outcome;
use airlock_core::keys::KeyDigest;
use airlock_core::money::nanos_to_usd;
use airlock_state::{EventQuery, GroupBy, UsageQuery};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use serde_json::{Value, json};

use crate::controls::now_ms;
use crate::gateway::Gateway;
use crate::http::{
    Body, BodyLimits, ReadError, json_response, query_params, read_body, text_response,
};

mod assets;
mod live;
mod operator;
mod session;

pub use session::Sessions;

pub async fn handle(gateway: Arc<Gateway>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().trim_end_matches('/').to_string();
    match (req.method(), path.as_str()) {
        (&Method::GET, "/healthz") => return text_response(StatusCode::OK, "ok\n"),
        (&Method::GET, "/metrics") => {
            let mut res = text_response(
                StatusCode::OK,
                gateway.metrics.render(gateway.ledger.degraded_events()),
            );
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            return res;
        }
        (&Method::GET, p) if !p.starts_with("/api/") => {
            return assets::serve(p).unwrap_or_else(|| {
                error(StatusCode::NOT_FOUND, "not_found", "no such admin route")
            });
        }
        (_, p) if !p.starts_with("/api/") => {
            return error(StatusCode::NOT_FOUND, "not_found", "no such admin route");
        }
        (&Method::POST, "/api/session") => return sign_in(&gateway, req).await,
        // Open, so the page can ask without an error in the browser's console.
        (&Method::GET, "/api/session") => {
            let signed_in = authorised(&gateway, req.method(), req.headers()).await;
            return json_response(StatusCode::OK, &json!({ "signed_in": signed_in }));
        }
        (&Method::DELETE, "/api/session") => {
            let mut res = json_response(StatusCode::OK, &json!({"signed_in": false}));
            let cleared = gateway.sessions.close(req.headers());
            res.headers_mut().insert(header::SET_COOKIE, cleared);
            return res;
        }
        _ => {}
    }
    if !authorised(&gateway, req.method(), req.headers()).await {
        let mut res = error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send Authorization: Bearer $AIRLOCK_ADMIN_TOKEN",
        );
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"airlock-admin\""),
        );
        return res;
    }
    let params = query_params(req.uri());
    let method = req.method().clone();
    let body = match read_body(req.into_body(), None, admin_body(&gateway)).await {
        Ok(b) => b,
        Err(ReadError::Stalled) => {
            return error(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "the request body stalled (limits.body_timeout)",
            );
        }
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "admin requests are small JSON documents",
            );
        }
    };
    // Split before decoding, so an escaped `/` in a tool's name stays inside its segment.
    let segments: Vec<String> = path
        .trim_start_matches("/api/")
        .split('/')
        .map(percent_decode)
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (&method, segments.as_slice()) {
        (&Method::GET, ["events"]) => events(&gateway, &params).await,
        (&Method::GET, ["events", "stream"]) => live::stream(&gateway, &params),
        (&Method::GET, ["usage"]) => usage(&gateway, &params).await,
        (&Method::GET, ["agents"]) => operator::agents(&gateway).await,
        (&Method::GET, ["agents", id]) => operator::agent(&gateway, id).await,
        (&Method::GET, ["alerts"]) => alerts(&gateway, &params).await,
        (&Method::POST, ["agents", id, "suspend"]) => {
            operator::set_suspended(&gateway, id, true, &body).await
        }
        (&Method::POST, ["agents", id, "resume"]) => {
            operator::set_suspended(&gateway, id, false, &body).await
        }
        (&Method::GET, ["keys"]) => operator::keys(&gateway).await,
        (&Method::POST, ["keys"]) => operator::create_key(&gateway, &body).await,
        (&Method::DELETE, ["keys", id]) => operator::revoke_key(&gateway, id).await,
        (&Method::GET, ["tools"]) => operator::tools(&gateway).await,
        (&Method::POST, ["tools", server, tool, "approve"]) => {
            operator::approve_tool(&gateway, server, tool).await
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such admin API route",
        ),
    }
}

/// A bearer admin token, or a dashboard session. A wrong token is answered slowly.
async fn authorised(gateway: &Gateway, method: &Method, headers: &http::HeaderMap) -> bool {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match bearer {
        Some(token) => is_admin_token(gateway, token).await,
        None => gateway.sessions.admits(method, headers, now_ms()),
    }
}

/// Whether `presented` is the admin token. Digests are compared, in constant time, so
/// neither the token's bytes nor its length show in the timing. A wrong one waits its turn
/// (see [`Sessions::wrong_token`]).
async fn is_admin_token(gateway: &Gateway, presented: &str) -> bool {
    let right = gateway
        .admin_token
        .as_ref()
        .is_some_and(|token| KeyDigest::of(presented).matches(token));
    if !right {
        // The queue of wrong tokens must not hold the shutdown: at shutdown, refuse now.
        let mut stopping = gateway.stopping.subscribe();
        tokio::select! {
            () = gateway.sessions.wrong_token() => {}
            _ = stopping.wait_for(|s| *s) => {}
        }
    }
    right
}

/// `POST /api/session` with `{"token": …}`: the dashboard's login form.
async fn sign_in(gateway: &Gateway, req: Request<Incoming>) -> Response<Body> {
    #[derive(serde::Deserialize)]
    struct Login {
        token: String,
    }
    // Anyone may post here: the whole form must arrive within one `body_timeout`, so a
    // trickled body cannot hold the listener's connections.
    let limits = admin_body(gateway);
    let body = tokio::time::timeout(limits.pause, read_body(req.into_body(), None, limits)).await;
    let body = match body {
        Ok(Ok(body)) => body,
        Err(_) | Ok(Err(ReadError::Stalled)) => {
            return error(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "the sign-in form must arrive whole within limits.body_timeout",
            );
        }
        Ok(Err(_)) => bytes::Bytes::new(),
    };
    let login: Option<Login> = serde_json::from_slice(&body).ok();
    let Some(login) = login else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "expected {\"token\": \"<AIRLOCK_ADMIN_TOKEN>\"}",
        );
    };
    if !is_admin_token(gateway, &login.token).await {
        tracing::warn!("dashboard sign-in with a wrong admin token");
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "that is not the admin token (AIRLOCK_ADMIN_TOKEN)",
        );
    }
    let mut res = json_response(StatusCode::OK, &json!({"signed_in": true}));
    let cookie = gateway.sessions.open(now_ms());
    res.headers_mut().insert(header::SET_COOKIE, cookie);
    res
}

/// Largest admin request body.
const ADMIN_BODY_LIMIT: u64 = 64 * 1024;

fn admin_body(gateway: &Gateway) -> BodyLimits {
    BodyLimits {
        max: ADMIN_BODY_LIMIT,
        pause: gateway.runtime().config.limits.body_timeout,
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    json_response(
        status,
        &json!({"error": {"code": code, "message": message}}),
    )
}

/// A path segment with its `%XX` escapes decoded (a `+` stays a `+`, unlike in a query).
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The `kind` and `outcome` filters, checked: a typo is a 400, not an empty answer.
struct Filters {
    kind: Option<String>,
    outcome: Option<String>,
}

impl Filters {
    fn read(params: &[(String, String)]) -> Result<Filters, Box<Response<Body>>> {
        let bad = |message| Box::new(error(StatusCode::BAD_REQUEST, "bad_request", message));
        let kind = param(params, "kind");
        if kind.is_some_and(|k| airlock_core::Kind::parse(k).is_none()) {
            return Err(bad("kind must be llm, mcp, a2a or egress"));
        }
        let outcome = param(params, "outcome");
        if outcome.is_some_and(|o| Outcome::parse(o).is_none()) {
            return Err(bad("outcome must be served, denied, failed or cancelled"));
        }
        Ok(Filters {
            kind: kind.map(str::to_owned),
            outcome: outcome.map(str::to_owned),
        })
    }
}

/// `since=24h` (a duration back from now), `today` or `month` (UTC calendar windows) as a
/// unix-millisecond bound.
fn since_ms(params: &[(String, String)], default: Duration) -> Result<u64, String> {
    match param(params, "since") {
        Some(s) => airlock_core::window::since(s, now_ms()),
        None => Ok(now_ms().saturating_sub(default.as_millis() as u64)),
    }
}

async fn events(gateway: &Gateway, params: &[(String, String)]) -> Response<Body> {
    let limit = match param(params, "limit").map(str::parse::<u32>) {
        None => 100,
        Some(Ok(n)) => n.clamp(1, 10_000),
        Some(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "limit must be a number",
            );
        }
    };
    let filters = match Filters::read(params) {
        Ok(f) => f,
        Err(res) => return *res,
    };
    let since = match param(params, "since").map(|_| since_ms(params, Duration::ZERO)) {
        None => None,
        Some(Ok(ms)) => Some(ms),
        Some(Err(e)) => return error(StatusCode::BAD_REQUEST, "bad_request", &e),
    };
    let query = EventQuery {
        limit,
        id: param(params, "id").map(str::to_string),
        agent: param(params, "agent").map(str::to_string),
        kind: filters.kind,
        outcome: filters.outcome,
        reason: param(params, "reason").map(str::to_string),
        since_ms: since,
        before: param(params, "before").map(str::to_string),
    };
    let before = query.before.clone();
    match gateway.ledger.events(query).await {
        // A page after an event that isn't there would be empty without saying why; only an
        // empty page costs the lookup.
        Ok(list) if list.is_empty() && before.is_some() => {
            unknown_before(gateway, before.as_deref().unwrap_or_default()).await
        }
        Ok(list) => json_response(
            StatusCode::OK,
            &json!({"events": list.iter().map(|e| e.to_json()).collect::<Vec<_>>()}),
        ),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ledger_unavailable",
            &e.to_string(),
        ),
    }
}

/// The answer to an empty page after `before`: a 400 when no such event exists.
async fn unknown_before(gateway: &Gateway, before: &str) -> Response<Body> {
    let known = EventQuery {
        limit: 1,
        id: Some(before.to_string()),
        ..Default::default()
    };
    match gateway.ledger.events(known).await {
        Ok(found) if found.is_empty() => error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            &format!("`before`: no event `{before}` in the ledger"),
        ),
        Ok(_) => json_response(StatusCode::OK, &json!({"events": []})),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ledger_unavailable",
            &e.to_string(),
        ),
    }
}

async fn alerts(gateway: &Gateway, params: &[(String, String)]) -> Response<Body> {
    let limit = param(params, "limit")
        .and_then(|l| l.parse::<u32>().ok())
        .unwrap_or(100)
        .clamp(1, 10_000);
    match gateway.ledger.alerts(limit).await {
        Ok(list) => {
            let list: Vec<Value> = list
                .into_iter()
                .map(|a| {
                    let detail: Value = serde_json::from_str(&a.detail).unwrap_or(Value::Null);
                    json!({"ts_ms": a.ts_ms, "type": a.kind, "agent": a.agent, "message": a.message, "detail": detail})
                })
                .collect();
            json_response(StatusCode::OK, &json!({ "alerts": list }))
        }
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ledger_unavailable",
            &e.to_string(),
        ),
    }
}

async fn usage(gateway: &Gateway, params: &[(String, String)]) -> Response<Body> {
    let Some(group_by) = GroupBy::parse(param(params, "group_by").unwrap_or("agent")) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "group_by must be agent, model, team, kind, provider, route, target, outcome, \
             reason, hour or day",
        );
    };
    let filters = match Filters::read(params) {
        Ok(f) => f,
        Err(res) => return *res,
    };
    let since_ms = match since_ms(params, Duration::from_secs(86_400)) {
        Ok(ms) => ms,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_request", &e),
    };
    match gateway
        .ledger
        .usage(UsageQuery {
            group_by,
            since_ms,
            agent: param(params, "agent").map(str::to_string),
            kind: filters.kind,
        })
        .await
    {
        Ok(rows) => {
            let rows: Vec<Value> = rows
                .into_iter()
                .map(|r| {
                    let mut v = serde_json::to_value(&r).unwrap_or_default();
                    v["cost_usd"] = json!(nanos_to_usd(r.cost_nanos));
                    v
                })
                .collect();
            json_response(StatusCode::OK, &json!({"rows": rows}))
        }
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ledger_unavailable",
            &e.to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_decoded() {
        for (raw, decoded) in [
            ("search_issues", "search_issues"),
            ("a%2Fb", "a/b"),
            ("a+b%20c", "a+b c"),
            ("caf%C3%A9", "café"),
            ("bad%zz%+1%4", "bad%zz%+1%4"),
        ] {
            assert_eq!(percent_decode(raw), decoded, "{raw}");
        }
    }
}
