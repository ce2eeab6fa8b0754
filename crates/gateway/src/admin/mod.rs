//! The admin listener: health, Prometheus metrics and the operator API. It never shares a
//! port with agents, and everything under `/api/` needs `AIRLOCK_ADMIN_TOKEN`.

use std::sync::Arc;
use std::time::Duration;

use airlock_core::money::nanos_to_usd;
use airlock_state::{EventQuery, GroupBy, UsageQuery};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::controls::now_ms;
use crate::gateway::Gateway;
use crate::http::{Body, json_response, query_params, read_body, text_response};

mod live;
mod operator;

pub async fn handle(gateway: Arc<Gateway>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().trim_end_matches('/').to_string();
    match (req.method(), path.as_str()) {
        (&Method::GET, "/healthz") => return text_response(StatusCode::OK, "ok\n"),
        (&Method::GET, "/metrics") => {
            let mut res = text_response(StatusCode::OK, gateway.metrics.render());
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            return res;
        }
        (_, p) if !p.starts_with("/api/") => {
            return error(StatusCode::NOT_FOUND, "not_found", "no such admin route");
        }
        _ => {}
    }
    if !authorised(&gateway, req.headers()) {
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
    let body = match read_body(req.into_body(), None, ADMIN_BODY_LIMIT).await {
        Ok(b) => b,
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

fn authorised(gateway: &Gateway, headers: &http::HeaderMap) -> bool {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    !gateway.admin_token.is_empty()
        && bool::from(presented.as_bytes().ct_eq(gateway.admin_token.as_bytes()))
}

/// Largest admin request body.
const ADMIN_BODY_LIMIT: u64 = 64 * 1024;

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

/// `since=24h` (a duration back from now) as a unix-millisecond bound.
/// The `kind` filter, checked: a typo is a 400, not an empty answer.
fn kind_param(params: &[(String, String)]) -> Result<Option<String>, Box<Response<Body>>> {
    match param(params, "kind") {
        Some(k) if airlock_core::Kind::parse(k).is_none() => Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "kind must be llm, mcp, a2a or egress",
        ))),
        k => Ok(k.map(str::to_owned)),
    }
}

fn since_ms(params: &[(String, String)], default: Duration) -> Result<u64, String> {
    let span = match param(params, "since") {
        Some(s) => airlock_core::config::units::parse_span(s)?,
        None => default,
    };
    Ok(now_ms().saturating_sub(span.as_millis() as u64))
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
    let kind = match kind_param(params) {
        Ok(kind) => kind,
        Err(res) => return *res,
    };
    let since = match param(params, "since").map(|_| since_ms(params, Duration::ZERO)) {
        None => None,
        Some(Ok(ms)) => Some(ms),
        Some(Err(e)) => return error(StatusCode::BAD_REQUEST, "bad_request", &e),
    };
    let query = EventQuery {
        limit,
        agent: param(params, "agent").map(str::to_string),
        kind,
        since_ms: since,
    };
    match gateway.ledger.events(query).await {
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
            "group_by must be agent, model, team, kind, provider or route",
        );
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
            ..Default::default()
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
