//! Error bodies in each provider's shape, so gateways and SDKs parse the
//! mock's failures exactly as they would a real provider's.

use hyper::{Response, StatusCode};
use serde_json::json;

use crate::body::{self, MockBody};

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Shape {
    OpenAi,
    Anthropic,
}

impl Shape {
    pub fn error(self, status: StatusCode, message: &str) -> Response<MockBody> {
        let value = match self {
            Shape::OpenAi => {
                let (kind, code) = openai_kind(status);
                json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
            }
            Shape::Anthropic => {
                json!({"type": "error", "error": {"type": anthropic_kind(status), "message": message}})
            }
        };
        body::json(status, &value)
    }
}

/// Mirrors what OpenAI itself answers for each status.
fn openai_kind(status: StatusCode) -> (&'static str, Option<&'static str>) {
    match status.as_u16() {
        401 => ("invalid_request_error", Some("invalid_api_key")),
        403 => ("invalid_request_error", Some("permission_denied")),
        404 => ("invalid_request_error", Some("not_found")),
        413 => ("invalid_request_error", Some("request_too_large")),
        429 => ("requests", Some("rate_limit_exceeded")),
        500..=599 => ("server_error", None),
        _ => ("invalid_request_error", None),
    }
}

fn anthropic_kind(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}
