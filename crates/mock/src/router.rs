//! Request entry point: control endpoints, directives, recording and
//! dispatch to the wire formats.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use crate::State;
use crate::body::{self, MockBody};
use crate::directives::Directives;
use crate::errors::Shape;
use crate::record::Recorded;
use crate::reply::Ctx;
use crate::{anthropic, chat, embeddings, responses};

const BODY_LIMIT: usize = 64 << 20;

pub(crate) async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<MockBody>, Infallible> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    if path == "/mock/requests" {
        return Ok(control(&state, &parts.method));
    }
    // Everything before `/v1/` is free for directives, so any base URL
    // prefix routes the same.
    let (prefix, route) = match path.find("/v1/") {
        Some(at) => path.split_at(at),
        None => ("", path),
    };
    let shape = if route == "/v1/messages" {
        Shape::Anthropic
    } else {
        Shape::OpenAi
    };
    let bytes = match Limited::new(body, BODY_LIMIT).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => {
            return Ok(shape.error(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"));
        }
        Err(_) => return Ok(shape.error(StatusCode::BAD_REQUEST, "could not read request body")),
    };
    let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
    if state.recorder.enabled() {
        state.recorder.push(Recorded {
            method: parts.method.to_string(),
            path: path.to_owned(),
            headers: parts
                .headers
                .iter()
                .map(|(name, value)| {
                    let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                    (name.as_str().to_owned(), value)
                })
                .collect(),
            body: parsed.clone().unwrap_or(Value::Null),
        });
    }
    let directives = match Directives::parse(prefix, &parts.headers) {
        Ok(directives) => directives,
        Err(message) => return Ok(shape.error(StatusCode::BAD_REQUEST, &message)),
    };
    let response = respond(
        &state,
        &parts.method,
        path,
        route,
        parsed.as_ref(),
        &directives,
        shape,
    );
    if !directives.delay.is_zero() {
        tokio::time::sleep(directives.delay).await;
    }
    Ok(response)
}

fn respond(
    state: &State,
    method: &Method,
    path: &str,
    route: &str,
    body: Option<&Value>,
    directives: &Directives,
    shape: Shape,
) -> Response<MockBody> {
    if let Some(status) = directives.status {
        let message = format!("mock: forced status {}", status.as_u16());
        return shape.error(status, &message);
    }
    type Handler = fn(&Ctx, &Value) -> Response<MockBody>;
    let handler: Handler = match (method, route) {
        (&Method::GET, "/v1/models") => return embeddings::models(),
        (&Method::POST, "/v1/chat/completions") => chat::handle,
        (&Method::POST, "/v1/responses") => responses::handle,
        (&Method::POST, "/v1/embeddings") => embeddings::handle,
        (&Method::POST, "/v1/messages") => anthropic::handle,
        _ => {
            return shape.error(
                StatusCode::NOT_FOUND,
                &format!("Invalid URL ({method} {path})"),
            );
        }
    };
    let Some(request) = body.filter(|b| b.is_object()) else {
        return shape.error(StatusCode::BAD_REQUEST, "request body is not a JSON object");
    };
    let Some(model) = request.get("model").and_then(Value::as_str) else {
        return shape.error(StatusCode::BAD_REQUEST, "model: Field required");
    };
    let ctx = Ctx {
        directives,
        n: state.ids.fetch_add(1, Ordering::Relaxed) + 1,
        now: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        model,
    };
    handler(&ctx, request)
}

fn control(state: &State, method: &Method) -> Response<MockBody> {
    match *method {
        Method::GET => {
            let all: Vec<Value> = state
                .recorder
                .snapshot()
                .iter()
                .map(Recorded::to_json)
                .collect();
            body::json(StatusCode::OK, &Value::Array(all))
        }
        Method::DELETE => {
            state.recorder.clear();
            body::json(StatusCode::OK, &json!({"ok": true}))
        }
        _ => Shape::OpenAi.error(StatusCode::METHOD_NOT_ALLOWED, "use GET or DELETE"),
    }
}
