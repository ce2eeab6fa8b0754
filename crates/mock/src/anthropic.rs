//! Anthropic Messages (`POST /v1/messages`).

use hyper::{Response, StatusCode};
use serde_json::{Map, Value, json};

use crate::body::{self, MockBody, Sse};
use crate::errors::Shape;
use crate::input;
use crate::reply::{Ctx, Reply, TOOL_ARGUMENT_FRAGMENTS};

pub(crate) fn handle(ctx: &Ctx, request: &Value) -> Response<MockBody> {
    let Some(max_tokens) = request.get("max_tokens").and_then(Value::as_u64) else {
        return Shape::Anthropic.error(StatusCode::BAD_REQUEST, "max_tokens: Field required");
    };
    let reply = Reply::new(
        ctx.directives,
        input::anthropic(request),
        Some(max_tokens),
        false,
    );
    let tool = tool_to_call(request);
    if request.get("stream").and_then(Value::as_bool) == Some(true) {
        stream(ctx, &reply, tool)
    } else {
        body::json(StatusCode::OK, &message(ctx, &reply, tool))
    }
}

/// The tool to call, unless the last user turn carries a tool result or
/// the client forbade tools.
fn tool_to_call(request: &Value) -> Option<&str> {
    let tools = request.get("tools")?.as_array()?;
    let choice = request.get("tool_choice");
    if choice.and_then(|c| c.get("type")).and_then(Value::as_str) == Some("none") {
        return None;
    }
    let last_user = request
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|messages| {
            messages
                .iter()
                .rev()
                .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        });
    let answered = last_user
        .and_then(|m| m.get("content"))
        .and_then(Value::as_array)
        .is_some_and(|blocks| {
            blocks
                .iter()
                .any(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
        });
    if answered {
        return None;
    }
    let named = choice
        .filter(|c| c.get("type").and_then(Value::as_str) == Some("tool"))
        .and_then(|c| c.get("name"))
        .and_then(Value::as_str);
    named.or_else(|| tools.first()?.get("name")?.as_str())
}

fn stop_reason(reply: &Reply, tool: Option<&str>) -> &'static str {
    match (tool, reply.truncated) {
        (Some(_), _) => "tool_use",
        (None, true) => "max_tokens",
        (None, false) => "end_turn",
    }
}

/// Anthropic's `input_tokens` excludes cache reads and writes.
fn usage(reply: &Reply, output_tokens: u64) -> Value {
    let uncached = reply
        .input
        .saturating_sub(reply.cached)
        .saturating_sub(reply.cache_write);
    let mut usage = json!({
        "input_tokens": uncached,
        "cache_creation_input_tokens": reply.cache_write,
        "cache_read_input_tokens": reply.cached,
        "output_tokens": output_tokens,
    });
    if reply.reasoning > 0 {
        usage["output_tokens_details"] = json!({"thinking_tokens": reply.reasoning});
    }
    usage
}

fn tool_id(ctx: &Ctx) -> String {
    format!("toolu_mock_{}", ctx.n)
}

fn message(ctx: &Ctx, reply: &Reply, tool: Option<&str>) -> Value {
    let content = match tool {
        Some(name) => json!([{
            "type": "tool_use",
            "id": tool_id(ctx),
            "name": name,
            "input": {"q": "mock"},
        }]),
        None => json!([{"type": "text", "text": reply.text}]),
    };
    json!({
        "id": format!("msg_mock_{}", ctx.n),
        "type": "message",
        "role": "assistant",
        "model": ctx.model,
        "content": content,
        "stop_reason": stop_reason(reply, tool),
        "stop_sequence": null,
        "usage": usage(reply, reply.output()),
    })
}

fn stream(ctx: &Ctx, reply: &Reply, tool: Option<&str>) -> Response<MockBody> {
    let mut sse = Sse::new(ctx.directives);
    let start = json!({
        "type": "message_start",
        "message": {
            "id": format!("msg_mock_{}", ctx.n),
            "type": "message",
            "role": "assistant",
            "model": ctx.model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": usage(reply, 1),
        },
    });
    sse.event("message_start", &start, false);
    let block = match tool {
        Some(name) => {
            json!({"type": "tool_use", "id": tool_id(ctx), "name": name, "input": Map::new()})
        }
        None => json!({"type": "text", "text": ""}),
    };
    let block_start = json!({"type": "content_block_start", "index": 0, "content_block": block});
    sse.event("content_block_start", &block_start, false);
    sse.event("ping", &json!({"type": "ping"}), false);
    let delta = |delta: Value| json!({"type": "content_block_delta", "index": 0, "delta": delta});
    match tool {
        Some(_) => {
            for fragment in TOOL_ARGUMENT_FRAGMENTS {
                let partial = delta(json!({"type": "input_json_delta", "partial_json": fragment}));
                sse.event("content_block_delta", &partial, true);
            }
        }
        None => {
            for word in reply.deltas() {
                let text = delta(json!({"type": "text_delta", "text": word}));
                sse.event("content_block_delta", &text, true);
            }
        }
    }
    sse.event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": 0}),
        false,
    );
    let message_delta = json!({
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason(reply, tool), "stop_sequence": null},
        "usage": {"output_tokens": reply.output()},
    });
    sse.event("message_delta", &message_delta, false);
    sse.event("message_stop", &json!({"type": "message_stop"}), false);
    sse.into_response()
}
