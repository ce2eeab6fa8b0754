//! Stage 1 for LLM calls: which API, which model, streaming or not. The body is parsed
//! one level deep (member values stay raw JSON) and re-serialised only when Airlock has
//! to change it: the upstream model name, or asking for stream usage.

use std::fmt;

use airlock_core::config::ProviderKind;
use airlock_core::usage::Dialect;
use airlock_core::{Denial, Reason};
use bytes::Bytes;
use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_json::value::RawValue;

use super::errors::ErrorStyle;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    ChatCompletions,
    Responses,
    Embeddings,
    Messages,
}

impl Api {
    pub fn operation(self) -> &'static str {
        match self {
            Api::ChatCompletions => "chat.completions",
            Api::Responses => "responses",
            Api::Embeddings => "embeddings",
            Api::Messages => "messages",
        }
    }

    pub fn dialect(self) -> Dialect {
        match self {
            Api::ChatCompletions | Api::Embeddings => Dialect::OpenAiChat,
            Api::Responses => Dialect::OpenAiResponses,
            Api::Messages => Dialect::Anthropic,
        }
    }

    pub fn style(self) -> ErrorStyle {
        match self {
            Api::Messages => ErrorStyle::Anthropic,
            _ => ErrorStyle::OpenAi,
        }
    }

    /// The path appended to a provider's base URL.
    /// OpenAI base URLs carry their version prefix (`…/v1`); Anthropic's is the host root.
    pub fn upstream_path(self) -> &'static str {
        match self {
            Api::Messages => "/v1/messages",
            Api::ChatCompletions => "/chat/completions",
            Api::Responses => "/responses",
            Api::Embeddings => "/embeddings",
        }
    }

    /// Where an output limit goes for a provider of `kind` (OpenAI's reasoning models
    /// refuse the older `max_tokens`; compatible servers mostly know only that one).
    pub fn output_limit_field(self, kind: ProviderKind) -> Option<&'static str> {
        match (self, kind) {
            (Api::ChatCompletions, ProviderKind::Openai) => Some("max_completion_tokens"),
            (Api::ChatCompletions, _) => Some("max_tokens"),
            (Api::Responses, _) => Some("max_output_tokens"),
            (Api::Messages, _) => Some("max_tokens"),
            (Api::Embeddings, _) => None,
        }
    }

    /// Whether a provider of `kind` speaks this API. Airlock relays wire formats; it does
    /// not translate between them (see README: "One API per provider kind").
    pub fn served_by(self, kind: ProviderKind) -> bool {
        match self {
            Api::Messages => kind == ProviderKind::Anthropic,
            _ => kind != ProviderKind::Anthropic,
        }
    }
}

/// The body's top-level members in their original order, values untouched.
struct Members(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(entry) = map.next_entry::<String, Box<RawValue>>()? {
                    out.push(entry);
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl Members {
    fn get(&self, name: &str) -> Option<&RawValue> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
    }
}

/// An LLM request, classified.
pub struct LlmRequest {
    pub api: Api,
    pub model: String,
    pub stream: bool,
    /// Airlock added `stream_options.include_usage`; the usage chunk is hidden from the client.
    pub injected_usage: bool,
    /// An output limit Airlock adds because the request set none and a budget reserved
    /// this much: the reservation stays a true upper bound.
    pub output_cap: Option<u32>,
    original: Bytes,
    members: Members,
}

fn bad(message: impl Into<String>) -> Denial {
    Denial::new(Reason::BadRequest, message)
}

impl LlmRequest {
    pub fn classify(api: Api, body: Bytes) -> Result<LlmRequest, Denial> {
        if std::str::from_utf8(&body).is_err() {
            return Err(bad("the request body is not valid UTF-8"));
        }
        let members: Members = serde_json::from_slice(&body)
            .map_err(|e| bad(format!("the request body is not a valid JSON object: {e}")))?;
        let model = match members
            .get("model")
            .map(|v| serde_json::from_str::<String>(v.get()))
        {
            Some(Ok(m)) if !m.is_empty() => m,
            Some(_) => return Err(bad("`model` must be a non-empty string")),
            None => return Err(bad("`model` is required")),
        };
        let stream = match members.get("stream").map(|v| v.get()) {
            None | Some("false") | Some("null") => false,
            Some("true") => true,
            Some(_) => return Err(bad("`stream` must be a boolean")),
        };
        require_fields(api, &members)?;
        let injected_usage =
            api == Api::ChatCompletions && stream && !client_asked_usage(&members)?;
        Ok(LlmRequest {
            api,
            model,
            stream,
            injected_usage,
            output_cap: None,
            original: body,
            members,
        })
    }

    pub fn body_len(&self) -> u64 {
        self.original.len() as u64
    }

    /// A rough prompt size for settling a stream cut before the provider reported usage
    /// (about four bytes a token).
    pub fn prompt_estimate(&self) -> u64 {
        let prompt = ["messages", "input", "system", "instructions"]
            .iter()
            .filter_map(|k| self.members.get(k))
            .map(|v| v.get().len() as u64)
            .sum::<u64>();
        prompt.div_ceil(4)
    }

    /// The body as the client sent it.
    pub fn original(&self) -> &Bytes {
        &self.original
    }

    /// A top-level member as raw JSON.
    pub fn member(&self, name: &str) -> Option<&RawValue> {
        self.members.get(name)
    }

    /// The output limit the request sets itself, if any.
    pub fn declared_max_output(&self) -> Option<u64> {
        let fields: &[&str] = match self.api {
            Api::ChatCompletions => &["max_completion_tokens", "max_tokens"],
            Api::Responses => &["max_output_tokens"],
            Api::Messages => &["max_tokens"],
            Api::Embeddings => return Some(0),
        };
        fields.iter().find_map(|f| {
            self.member(f)
                .and_then(|v| serde_json::from_str::<u64>(v.get()).ok())
        })
    }

    /// The body to send for `upstream_model`: the client's bytes as they came when nothing
    /// changes, otherwise the same members with `model` (and `stream_options`) replaced.
    pub fn body_for(&self, upstream_model: &str, kind: ProviderKind) -> Bytes {
        if upstream_model == self.model && !self.injected_usage && self.output_cap.is_none() {
            return self.original.clone();
        }
        let mut out = Vec::with_capacity(self.original.len() + 48);
        out.push(b'{');
        let mut first = true;
        let mut wrote_options = false;
        for (key, value) in &self.members.0 {
            let replaced;
            let value: &str = match key.as_str() {
                "model" => {
                    replaced = serde_json::to_string(upstream_model).expect("a string serialises");
                    &replaced
                }
                "stream_options" if self.injected_usage => {
                    wrote_options = true;
                    replaced = with_include_usage(value);
                    &replaced
                }
                _ => value.get(),
            };
            push_member(&mut out, &mut first, key, value);
        }
        if self.injected_usage && !wrote_options {
            push_member(
                &mut out,
                &mut first,
                "stream_options",
                r#"{"include_usage":true}"#,
            );
        }
        if let (Some(cap), Some(field)) = (self.output_cap, self.api.output_limit_field(kind)) {
            push_member(&mut out, &mut first, field, &cap.to_string());
        }
        out.push(b'}');
        Bytes::from(out)
    }
}

fn push_member(out: &mut Vec<u8>, first: &mut bool, key: &str, value: &str) {
    if !std::mem::take(first) {
        out.push(b',');
    }
    out.extend_from_slice(
        serde_json::to_string(key)
            .expect("a string serialises")
            .as_bytes(),
    );
    out.push(b':');
    out.extend_from_slice(value.as_bytes());
}

/// The members each API cannot do without, checked here so a malformed request is a
/// clear 400 from Airlock rather than a provider error (or a billed call).
fn require_fields(api: Api, members: &Members) -> Result<(), Denial> {
    let starts = |name: &str, prefix: char| {
        members
            .get(name)
            .is_some_and(|v| v.get().starts_with(prefix))
    };
    let integer = |name: &str| {
        members
            .get(name)
            .is_some_and(|v| serde_json::from_str::<u64>(v.get()).is_ok())
    };
    match api {
        Api::ChatCompletions if !starts("messages", '[') => Err(bad("`messages` must be an array")),
        Api::Messages if !starts("messages", '[') => Err(bad("`messages` must be an array")),
        Api::Messages if !integer("max_tokens") => Err(bad(
            "`max_tokens` is required and must be a positive integer",
        )),
        Api::Embeddings if members.get("input").is_none() => Err(bad("`input` is required")),
        _ => Ok(()),
    }
}

fn client_asked_usage(members: &Members) -> Result<bool, Denial> {
    #[derive(Deserialize)]
    struct StreamOptions {
        include_usage: Option<bool>,
    }
    match members
        .get("stream_options")
        .map(|v| serde_json::from_str::<Option<StreamOptions>>(v.get()))
    {
        None | Some(Ok(None)) => Ok(false),
        Some(Ok(Some(o))) => Ok(o.include_usage == Some(true)),
        Some(Err(_)) => Err(bad("`stream_options` must be an object")),
    }
}

/// The client's `stream_options` with `include_usage` set, keeping its other options.
fn with_include_usage(value: &RawValue) -> String {
    let mut options: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(value.get()).unwrap_or_default();
    options.insert("include_usage".into(), serde_json::Value::Bool(true));
    serde_json::Value::Object(options).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn classify(api: Api, v: Value) -> LlmRequest {
        LlmRequest::classify(api, Bytes::from(v.to_string())).unwrap()
    }

    #[test]
    fn unchanged_bodies_go_upstream_byte_for_byte() {
        let raw = Bytes::from_static(
            br#"{"model":"gpt-4o-mini", "messages":[{"role":"user","content":"hi"}]}"#,
        );
        let r = LlmRequest::classify(Api::ChatCompletions, raw.clone()).unwrap();
        assert_eq!(r.body_for("gpt-4o-mini", ProviderKind::Openai), raw);
    }

    #[test]
    fn model_is_renamed_and_order_kept() {
        let raw = br#"{"temperature":0.5,"model":"alias","messages":[ {"role":"user"} ]}"#;
        let r = LlmRequest::classify(Api::ChatCompletions, Bytes::from_static(raw)).unwrap();
        assert_eq!(
            r.body_for("real-model", ProviderKind::Openai),
            Bytes::from_static(
                br#"{"temperature":0.5,"model":"real-model","messages":[ {"role":"user"} ]}"#
            ),
            "members keep their order and their bytes"
        );
    }

    #[test]
    fn stream_usage_is_requested_when_the_client_did_not() {
        let r = classify(
            Api::ChatCompletions,
            json!({"model": "m", "messages": [], "stream": true}),
        );
        assert!(r.injected_usage);
        let out: Value = serde_json::from_slice(&r.body_for("m", ProviderKind::Openai)).unwrap();
        assert_eq!(out["stream_options"], json!({"include_usage": true}));

        let r = classify(
            Api::ChatCompletions,
            json!({"model": "m", "messages": [], "stream": true, "stream_options": {"include_obfuscation": false}}),
        );
        let out: Value = serde_json::from_slice(&r.body_for("m", ProviderKind::Openai)).unwrap();
        assert_eq!(
            out["stream_options"],
            json!({"include_usage": true, "include_obfuscation": false})
        );

        let r = classify(
            Api::ChatCompletions,
            json!({"model": "m", "messages": [], "stream": true, "stream_options": {"include_usage": true}}),
        );
        assert!(!r.injected_usage, "the client asked, so it sees the chunk");
        assert!(
            !classify(
                Api::Messages,
                json!({"model": "m", "messages": [], "max_tokens": 5, "stream": true})
            )
            .injected_usage
        );
    }

    #[test]
    fn bad_bodies_are_bad_requests() {
        for body in [
            &b"{"[..],
            b"[1]",
            b"{\"model\": 5}",
            b"{}",
            b"{\"model\":\"m\",\"stream\":\"yes\"}",
            b"\xff\xfe",
            b"{\"model\":\"\"}",
        ] {
            let err = LlmRequest::classify(Api::ChatCompletions, Bytes::copy_from_slice(body))
                .err()
                .unwrap();
            assert_eq!(err.reason, Reason::BadRequest, "{body:?}");
        }
    }

    #[test]
    fn required_fields_per_api() {
        let missing = |api, v: Value| {
            LlmRequest::classify(api, Bytes::from(v.to_string()))
                .err()
                .map(|d| d.message)
        };
        assert!(
            missing(Api::ChatCompletions, json!({"model": "m"}))
                .unwrap()
                .contains("messages")
        );
        assert!(
            missing(Api::Messages, json!({"model": "m", "messages": []}))
                .unwrap()
                .contains("max_tokens")
        );
        assert!(
            missing(
                Api::Messages,
                json!({"model": "m", "messages": [], "max_tokens": "5"})
            )
            .is_some()
        );
        assert!(
            missing(Api::Embeddings, json!({"model": "m"}))
                .unwrap()
                .contains("input")
        );
        assert!(missing(Api::Responses, json!({"model": "m", "input": "hi"})).is_none());
    }

    #[test]
    fn apis_and_provider_kinds() {
        assert!(Api::Messages.served_by(ProviderKind::Anthropic));
        assert!(!Api::Messages.served_by(ProviderKind::Openai));
        assert!(!Api::ChatCompletions.served_by(ProviderKind::Anthropic));
        assert!(Api::Embeddings.served_by(ProviderKind::OpenaiCompatible));
    }
}
