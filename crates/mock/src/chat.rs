//! OpenAI Chat Completions (`POST /v1/chat/completions`).

use hyper::{Response, StatusCode};
use serde_json::{Value, json};

use crate::body::{self, MockBody, Sse};
use crate::input;
use crate::reply::{Ctx, Reply, TOOL_ARGUMENT_FRAGMENTS, TOOL_ARGUMENTS};

pub(crate) fn handle(ctx: &Ctx, request: &Value) -> Response<MockBody> {
    let json_mode = matches!(
        request
            .pointer("/response_format/type")
            .and_then(Value::as_str),
        Some("json_object" | "json_schema")
    );
    let max_tokens = request
        .get("max_completion_tokens")
        .or_else(|| request.get("max_tokens"))
        .and_then(Value::as_u64);
    let reply = Reply::new(ctx.directives, input::chat(request), max_tokens, json_mode);
    let tool = tool_to_call(request);
    let include_usage = request
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        == Some(true);
    if request.get("stream").and_then(Value::as_bool) == Some(true) {
        stream(ctx, &reply, tool, include_usage)
    } else {
        body::json(StatusCode::OK, &completion(ctx, &reply, tool))
    }
}

/// The tool to call, unless the conversation already holds its result or
/// the client forbade tools.
fn tool_to_call(request: &Value) -> Option<&str> {
    let tools = request.get("tools")?.as_array()?;
    let choice = request.get("tool_choice");
    if choice.and_then(Value::as_str) == Some("none") {
        return None;
    }
    let last_role = request
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|messages| messages.last())
        .and_then(|message| message.get("role"))
        .and_then(Value::as_str);
    if last_role == Some("tool") {
        return None;
    }
    let named = choice
        .and_then(|c| c.pointer("/function/name"))
        .and_then(Value::as_str);
    named.or_else(|| tools.first()?.pointer("/function/name")?.as_str())
}

fn finish_reason(reply: &Reply, tool: Option<&str>) -> &'static str {
    match (tool, reply.truncated) {
        (Some(_), _) => "tool_calls",
        (None, true) => "length",
        (None, false) => "stop",
    }
}

fn usage(reply: &Reply) -> Value {
    let output = reply.output();
    json!({
        "prompt_tokens": reply.input,
        "completion_tokens": output,
        "total_tokens": reply.input + output,
        "prompt_tokens_details": {"cached_tokens": reply.cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reply.reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    })
}

fn completion(ctx: &Ctx, reply: &Reply, tool: Option<&str>) -> Value {
    let message = match tool {
        Some(name) => json!({
            "role": "assistant",
            "content": null,
            "refusal": null,
            "tool_calls": [{
                "id": format!("call_mock_{}", ctx.n),
                "type": "function",
                "function": {"name": name, "arguments": TOOL_ARGUMENTS},
            }],
        }),
        None => json!({"role": "assistant", "content": reply.text, "refusal": null}),
    };
    json!({
        "id": format!("chatcmpl-mock-{}", ctx.n),
        "object": "chat.completion",
        "created": ctx.now,
        "model": ctx.model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(reply, tool),
        }],
        "usage": usage(reply),
        "system_fingerprint": "fp_mock",
    })
}

fn stream(ctx: &Ctx, reply: &Reply, tool: Option<&str>, include_usage: bool) -> Response<MockBody> {
    let id = format!("chatcmpl-mock-{}", ctx.n);
    let chunk = |delta: Value, finish: Option<&str>| {
        json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": ctx.now,
            "model": ctx.model,
            "system_fingerprint": "fp_mock",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
            "usage": null,
        })
    };
    let mut sse = Sse::new(ctx.directives);
    match tool {
        Some(name) => {
            let call = json!({
                "index": 0,
                "id": format!("call_mock_{}", ctx.n),
                "type": "function",
                "function": {"name": name, "arguments": ""},
            });
            let first = json!({"role": "assistant", "content": null, "tool_calls": [call]});
            sse.data(&chunk(first, None), false);
            for fragment in TOOL_ARGUMENT_FRAGMENTS {
                let delta =
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]});
                sse.data(&chunk(delta, None), true);
            }
        }
        None => {
            sse.data(
                &chunk(json!({"role": "assistant", "content": ""}), None),
                false,
            );
            for word in reply.deltas() {
                sse.data(&chunk(json!({"content": word}), None), true);
            }
        }
    }
    sse.data(&chunk(json!({}), Some(finish_reason(reply, tool))), false);
    if include_usage {
        let last = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": ctx.now,
            "model": ctx.model,
            "system_fingerprint": "fp_mock",
            "choices": [],
            "usage": usage(reply),
        });
        sse.data(&last, false);
    }
    sse.done();
    sse.into_response()
}
