//! OpenAI Responses API (`POST /v1/responses`).

use hyper::{Response, StatusCode};
use serde_json::{Value, json};

use crate::body::{self, MockBody, Sse};
use crate::input;
use crate::reply::{Ctx, Reply, TOOL_ARGUMENT_FRAGMENTS, TOOL_ARGUMENTS};

pub(crate) fn handle(ctx: &Ctx, request: &Value) -> Response<MockBody> {
    let json_mode = matches!(
        request.pointer("/text/format/type").and_then(Value::as_str),
        Some("json_object" | "json_schema")
    );
    let max_tokens = request.get("max_output_tokens").and_then(Value::as_u64);
    let reply = Reply::new(
        ctx.directives,
        input::responses(request),
        max_tokens,
        json_mode,
    );
    let answer = Answer {
        ctx,
        request,
        reply: &reply,
        tool: tool_to_call(request),
    };
    if request.get("stream").and_then(Value::as_bool) == Some(true) {
        answer.stream()
    } else {
        body::json(StatusCode::OK, &answer.response(Stage::Done))
    }
}

/// The first function tool, unless the input already answers a call or the
/// client forbade tools.
fn tool_to_call(request: &Value) -> Option<&str> {
    if request.get("tool_choice").and_then(Value::as_str) == Some("none") {
        return None;
    }
    let answered = request
        .get("input")
        .and_then(Value::as_array)
        .is_some_and(|items| {
            items.iter().any(|item| {
                item.get("type").and_then(Value::as_str) == Some("function_call_output")
            })
        });
    if answered {
        return None;
    }
    request
        .get("tools")?
        .as_array()?
        .iter()
        .find(|tool| tool.get("type").and_then(Value::as_str) == Some("function"))?
        .get("name")?
        .as_str()
}

#[derive(Clone, Copy, PartialEq)]
enum Stage {
    InProgress,
    Done,
}

struct Answer<'a> {
    ctx: &'a Ctx<'a>,
    request: &'a Value,
    reply: &'a Reply,
    tool: Option<&'a str>,
}

impl Answer<'_> {
    /// A token limit makes the response "incomplete", as OpenAI reports it.
    fn status(&self) -> &'static str {
        if self.reply.truncated && self.tool.is_none() {
            "incomplete"
        } else {
            "completed"
        }
    }

    fn item_id(&self) -> String {
        match self.tool {
            Some(_) => format!("fc_mock_{}", self.ctx.n),
            None => format!("msg_mock_{}", self.ctx.n),
        }
    }

    fn output_item(&self, stage: Stage) -> Value {
        let status = match stage {
            Stage::InProgress => "in_progress",
            Stage::Done => self.status(),
        };
        match self.tool {
            Some(name) => json!({
                "type": "function_call",
                "id": self.item_id(),
                "call_id": format!("call_mock_{}", self.ctx.n),
                "name": name,
                "arguments": if stage == Stage::Done { TOOL_ARGUMENTS } else { "" },
                "status": status,
            }),
            None => {
                let content = match stage {
                    Stage::InProgress => json!([]),
                    Stage::Done => json!([self.text_part(&self.reply.text)]),
                };
                json!({
                    "type": "message",
                    "id": self.item_id(),
                    "status": status,
                    "role": "assistant",
                    "content": content,
                })
            }
        }
    }

    fn text_part(&self, text: &str) -> Value {
        json!({"type": "output_text", "text": text, "annotations": []})
    }

    fn response(&self, stage: Stage) -> Value {
        let reply = self.reply;
        let (status, output, usage) = match stage {
            Stage::InProgress => ("in_progress", json!([]), Value::Null),
            Stage::Done => {
                let output = reply.output();
                let usage = json!({
                    "input_tokens": reply.input,
                    "input_tokens_details": {"cached_tokens": reply.cached, "cache_write_tokens": 0},
                    "output_tokens": output,
                    "output_tokens_details": {"reasoning_tokens": reply.reasoning},
                    "total_tokens": reply.input + output,
                });
                (self.status(), json!([self.output_item(stage)]), usage)
            }
        };
        let incomplete = (status == "incomplete").then(|| json!({"reason": "max_output_tokens"}));
        let echo = |key: &str, default: Value| self.request.get(key).cloned().unwrap_or(default);
        json!({
            "id": format!("resp_mock_{}", self.ctx.n),
            "object": "response",
            "created_at": self.ctx.now,
            "status": status,
            "error": null,
            "incomplete_details": incomplete,
            "instructions": echo("instructions", Value::Null),
            "max_output_tokens": echo("max_output_tokens", Value::Null),
            "model": self.ctx.model,
            "output": output,
            "parallel_tool_calls": true,
            "previous_response_id": echo("previous_response_id", Value::Null),
            "temperature": echo("temperature", json!(1.0)),
            "top_p": echo("top_p", json!(1.0)),
            "tool_choice": echo("tool_choice", json!("auto")),
            "tools": echo("tools", json!([])),
            "text": echo("text", json!({"format": {"type": "text"}})),
            "truncation": "disabled",
            "metadata": {},
            "usage": usage,
        })
    }

    fn stream(&self) -> Response<MockBody> {
        let mut events = Events {
            sse: Sse::new(self.ctx.directives),
            sequence: 0,
        };
        let item_id = self.item_id();
        let started = self.response(Stage::InProgress);
        events.send("response.created", json!({"response": started}), false);
        events.send("response.in_progress", json!({"response": started}), false);
        let added = json!({"output_index": 0, "item": self.output_item(Stage::InProgress)});
        events.send("response.output_item.added", added, false);
        match self.tool {
            Some(_) => {
                for fragment in TOOL_ARGUMENT_FRAGMENTS {
                    let delta = json!({"item_id": item_id, "output_index": 0, "delta": fragment});
                    events.send("response.function_call_arguments.delta", delta, true);
                }
                let done =
                    json!({"item_id": item_id, "output_index": 0, "arguments": TOOL_ARGUMENTS});
                events.send("response.function_call_arguments.done", done, false);
            }
            None => self.stream_text(&mut events, &item_id),
        }
        let done = json!({"output_index": 0, "item": self.output_item(Stage::Done)});
        events.send("response.output_item.done", done, false);
        // Even a truncated response ends with `response.completed` (its
        // status says "incomplete"): the openai SDK's stream helper fails
        // without that event.
        let completed = json!({"response": self.response(Stage::Done)});
        events.send("response.completed", completed, false);
        events.sse.into_response()
    }

    fn stream_text(&self, events: &mut Events, item_id: &str) {
        let part = |text: &str| {
            json!({
                "item_id": item_id,
                "output_index": 0,
                "content_index": 0,
                "part": self.text_part(text),
            })
        };
        events.send("response.content_part.added", part(""), false);
        for word in self.reply.deltas() {
            let delta = json!({
                "item_id": item_id,
                "output_index": 0,
                "content_index": 0,
                "delta": word,
                "logprobs": [],
            });
            events.send("response.output_text.delta", delta, true);
        }
        let done = json!({
            "item_id": item_id,
            "output_index": 0,
            "content_index": 0,
            "text": self.reply.text,
            "logprobs": [],
        });
        events.send("response.output_text.done", done, false);
        events.send("response.content_part.done", part(&self.reply.text), false);
    }
}

/// Stamps each event with its type and the next sequence number.
struct Events {
    sse: Sse,
    sequence: u64,
}

impl Events {
    fn send(&mut self, kind: &str, mut data: Value, delta: bool) {
        if let Value::Object(fields) = &mut data {
            fields.insert("type".into(), Value::String(kind.to_owned()));
            fields.insert("sequence_number".into(), self.sequence.into());
        }
        self.sequence += 1;
        self.sse.event(kind, &data, delta);
    }
}
