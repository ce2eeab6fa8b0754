//! A denial rendered the way each LLM SDK expects its errors, with the reason code where
//! the SDK keeps it and in the `x-airlock-reason` header.

use airlock_core::Denial;
use airlock_core::Reason;
use http::{HeaderValue, Response, StatusCode};
use serde_json::json;

use crate::http::{Body, json_response};

/// The error dialect of a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorStyle {
    OpenAi,
    Anthropic,
}

pub fn render(style: ErrorStyle, denial: &Denial) -> Response<Body> {
    let status = StatusCode::from_u16(denial.reason.status()).unwrap_or(StatusCode::BAD_GATEWAY);
    let body = match style {
        ErrorStyle::OpenAi => json!({
            "error": {
                "message": denial.message,
                "type": openai_type(denial.reason),
                "param": null,
                "code": denial.reason.code(),
            }
        }),
        ErrorStyle::Anthropic => json!({
            "type": "error",
            "error": {
                "type": anthropic_type(denial.reason),
                "message": denial.message,
                "code": denial.reason.code(),
            }
        }),
    };
    let mut res = json_response(status, &body);
    let headers = res.headers_mut();
    decorate(headers, denial.reason);
    if let Some(secs) = denial.retry_after_secs {
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
        headers.insert("retry-after-ms", HeaderValue::from(secs * 1000));
    }
    for (name, value) in &denial.hints {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(*name, v);
        }
    }
    res
}

/// The headers every denial carries: the reason, and whether an SDK should retry.
pub fn decorate(headers: &mut http::HeaderMap, reason: Reason) {
    headers.insert("x-airlock-reason", HeaderValue::from_static(reason.code()));
    if reason.status() == 429 || reason.status() >= 500 {
        let retry = if reason.retryable() { "true" } else { "false" };
        headers.insert("x-should-retry", HeaderValue::from_static(retry));
    }
    if reason == Reason::Unauthorized {
        headers.insert(
            "www-authenticate",
            HeaderValue::from_static("Bearer realm=\"airlock\""),
        );
    }
}

fn openai_type(reason: Reason) -> &'static str {
    match reason.status() {
        401 => "authentication_error",
        403 => "permission_error",
        429 if reason == Reason::BudgetExceeded => "insufficient_quota",
        429 => "rate_limit_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    }
}

fn anthropic_type(reason: Reason) -> &'static str {
    match reason.status() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    }
}
