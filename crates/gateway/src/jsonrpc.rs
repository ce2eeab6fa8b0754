//! JSON-RPC 2.0 as MCP and A2A use it: one message per POST or line, read only as far as
//! routing needs (`id`, `method`, `params`); everything else passes through as it came.
//! Denials of both protocols are rendered here, so they read alike.

use std::sync::Arc;

use airlock_core::config::Agent;
use airlock_core::{Denial, Kind, Reason};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use serde_json::{Map, Value, json};

use crate::gateway::Gateway;
use crate::http::{Body, BodyLimits, ReadError, json_response, peek, unread};
use crate::in_flight::AgentPermit;
use crate::pipeline::{CallGuard, Ending};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;

/// One message, classified.
#[derive(Debug)]
pub enum Message {
    Request {
        id: Value,
        method: String,
        params: Option<Value>,
    },
    Notification {
        method: String,
        params: Option<Value>,
    },
    /// A result or an error answering a request of the other side.
    Response { id: Value, body: Map<String, Value> },
}

impl Message {
    /// Classifies a parsed JSON value; `Err` carries what is wrong with it.
    pub fn classify(value: Value) -> Result<Message, &'static str> {
        let Value::Object(mut obj) = value else {
            return Err("a JSON-RPC message must be an object (batches are not supported)");
        };
        if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Err("`jsonrpc` must be \"2.0\"");
        }
        let id = obj.remove("id");
        match obj.remove("method") {
            Some(Value::String(method)) => {
                let params = obj.remove("params");
                match id {
                    None => Ok(Message::Notification { method, params }),
                    Some(id @ (Value::String(_) | Value::Number(_))) => {
                        Ok(Message::Request { id, method, params })
                    }
                    Some(_) => Err("a request `id` must be a string or a number"),
                }
            }
            Some(_) => Err("`method` must be a string"),
            None => match id {
                Some(id) if obj.contains_key("result") || obj.contains_key("error") => {
                    obj.remove("jsonrpc");
                    Ok(Message::Response { id, body: obj })
                }
                _ => Err("a message needs a `method`, or an `id` with a `result` or `error`"),
            },
        }
    }
}

pub fn request(id: Value, method: &str, params: Option<Value>) -> Value {
    let mut msg = json!({"jsonrpc": "2.0", "id": id, "method": method});
    if let Some(p) = params {
        msg["params"] = p;
    }
    msg
}

pub fn notification(method: &str, params: Option<Value>) -> Value {
    let mut msg = json!({"jsonrpc": "2.0", "method": method});
    if let Some(p) = params {
        msg["params"] = p;
    }
    msg
}

pub fn result(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

pub fn error(id: Option<&Value>, code: i64, message: &str, data: Option<Value>) -> Value {
    let mut err = json!({"code": code, "message": message});
    if let Some(d) = data {
        err["data"] = d;
    }
    json!({"jsonrpc": "2.0", "id": id, "error": err})
}

/// A gateway denial as a JSON-RPC error. The code stays outside the range the JSON-RPC,
/// MCP and A2A specs reserve (−32768…−32000): −31000 minus the HTTP status the same denial
/// gets elsewhere (−31403 not allowed, −31429 rate limited, …); `data.reason` is the code.
pub fn denial(id: Option<&Value>, d: &Denial) -> Value {
    let mut data = json!({"reason": d.reason.code()});
    if let Some(secs) = d.retry_after_secs {
        data["retry_after_secs"] = json!(secs);
    }
    let code = match d.reason {
        Reason::BadRequest => INVALID_REQUEST,
        Reason::NotFound => INVALID_PARAMS,
        Reason::UpstreamUnavailable | Reason::UpstreamTimeout | Reason::UpstreamError => {
            INTERNAL_ERROR
        }
        _ => -31000 - i64::from(d.reason.status()),
    };
    error(id, code, &d.message, Some(data))
}

/// A failure of an upstream server, named so the agent knows which one.
pub fn upstream_failure(id: Option<&Value>, server: &str, reason: Reason, message: &str) -> Value {
    error(
        id,
        INTERNAL_ERROR,
        message,
        Some(json!({"reason": reason.code(), "server": server})),
    )
}

/// A denial as a JSON-RPC error answer, with `x-airlock-reason`.
pub fn refusal(status: StatusCode, id: Option<&Value>, d: &Denial) -> Response<Body> {
    with_reason(json_response(status, &denial(id, d)), d.reason)
}

pub fn with_reason(mut res: Response<Body>, reason: Reason) -> Response<Body> {
    res.headers_mut()
        .insert("x-airlock-reason", HeaderValue::from_static(reason.code()));
    res
}

/// Lets a message of `agent` in ([`Gateway::enter`]: not suspended, under its cap of calls
/// in flight), or answers it before its body is read: recorded, as a JSON-RPC error with
/// the message's id when what arrived of it at once holds it (see [`peek`]).
pub async fn enter(
    gateway: &Arc<Gateway>,
    kind: Kind,
    agent: &Arc<Agent>,
    req: Request<Incoming>,
) -> Result<(AgentPermit, Request<Incoming>), Response<Body>> {
    let cap = gateway.runtime().config.limits.max_concurrent_per_agent;
    let d = match gateway.enter(agent, cap) {
        Ok(permit) => return Ok((permit, req)),
        Err(d) => d,
    };
    let (parts, body) = req.into_parts();
    let message = peek(body)
        .await
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    let id = message.as_ref().and_then(|m| m.get("id")).cloned();
    let method = message
        .as_ref()
        .and_then(|m| m["method"].as_str())
        .unwrap_or(kind.as_str());
    let mut guard = CallGuard::open(gateway.clone(), kind, method, &parts.headers).await;
    guard.call().agent = Some(agent.clone());
    guard.finish(Ending {
        status: 200,
        ..Ending::denied(&d)
    });
    Err(refusal(StatusCode::OK, id.as_ref(), &d))
}

/// A message that could not be read whole (too large, or stalled), as a JSON-RPC error.
pub fn unreadable(e: ReadError, limits: BodyLimits) -> Response<Body> {
    let d = unread(e, limits);
    let status = StatusCode::from_u16(d.reason.status()).unwrap_or(StatusCode::BAD_REQUEST);
    refusal(status, None, &d)
}

/// No key, or one Airlock does not know: 401 with our own `WWW-Authenticate`, recorded like
/// any refused call.
pub fn unauthorized(mut guard: CallGuard, headers: &HeaderMap) -> Response<Body> {
    let d = match guard.identify(headers) {
        Err(d) => d,
        // The key became valid a moment ago (a refresh): still refuse this request.
        Ok(_) => Denial::new(Reason::Unauthorized, "the Airlock key is not valid"),
    };
    guard.finish(Ending::denied(&d));
    let mut res = refusal(StatusCode::UNAUTHORIZED, None, &d);
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"airlock\""),
    );
    res
}

/// A request id as text (a string id without its quotes), for span attributes.
pub fn id_text(id: &Value) -> String {
    id.as_str().map_or_else(|| id.to_string(), str::to_string)
}

/// The id of a response message, as the upstream numbered it.
pub fn response_id(msg: &Value) -> Option<i64> {
    if msg.get("method").is_some() {
        return None;
    }
    msg.get("id")?.as_i64()
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_four_shapes_and_refuses_the_rest() {
        let m = |v: Value| Message::classify(v);
        assert!(matches!(
            m(json!({"jsonrpc":"2.0","id":1,"method":"ping"})),
            Ok(Message::Request { .. })
        ));
        assert!(matches!(
            m(json!({"jsonrpc":"2.0","method":"notifications/initialized"})),
            Ok(Message::Notification { .. })
        ));
        assert!(matches!(
            m(json!({"jsonrpc":"2.0","id":"a","result":{}})),
            Ok(Message::Response { .. })
        ));
        assert!(matches!(
            m(json!({"jsonrpc":"2.0","id":"a","error":{"code":1,"message":"x"}})),
            Ok(Message::Response { .. })
        ));
        for bad in [
            json!([{"jsonrpc":"2.0","id":1,"method":"ping"}]),
            json!({"id":1,"method":"ping"}),
            json!({"jsonrpc":"2.0","id":null,"method":"ping"}),
            json!({"jsonrpc":"2.0","id":1,"method":5}),
            json!({"jsonrpc":"2.0","id":1}),
        ] {
            assert!(m(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn denials_carry_the_reason_outside_the_reserved_codes() {
        let d = Denial::new(Reason::NotAllowed, "no");
        let e = denial(Some(&json!(7)), &d);
        assert_eq!(e["id"], 7);
        assert_eq!(e["error"]["code"], -31403);
        assert_eq!(e["error"]["data"]["reason"], "not_allowed");
    }
}
