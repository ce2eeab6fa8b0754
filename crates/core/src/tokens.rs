//! An upper bound of the tokens an LLM request can be billed for, reserved against budgets
//! before the call is forwarded. It is a proof, not an estimate, for every provider:
//!
//! - **Text**: a byte-level BPE tokenizer (OpenAI's o200k/cl100k, Anthropic's, Llama 3's,
//!   Mistral's Tekken) emits at most one token per byte of the text it is given, because
//!   every token stands for at least one byte; SentencePiece with byte fallback and no NFKC
//!   (Llama 2, Gemma) emits at most one per byte plus a dummy prefix. So each JSON value the
//!   model may see is counted at its compact JSON length, strings unescaped (which is at
//!   least the bytes of its text, of its key, and of the punctuation a template that renders
//!   JSON would print), plus [`PER_VALUE`] tokens for whatever syntax a template adds around
//!   it in another notation (OpenAI renders tool schemas as TypeScript: `// `, `?: `, `" | "`).
//! - **Framing**: [`PER_MESSAGE`] special tokens per message or input item, [`PER_REQUEST`]
//!   for the reply's priming, [`PER_TOOL`] per tool definition and [`TOOLS_PREAMBLE`] once
//!   when tools are declared (Anthropic's tool-use system prompt).
//! - **Media**: an image costs a documented maximum however large its bytes
//!   ([`image_cap`]); inputs that no request-side figure bounds (a file id, a PDF, audio,
//!   encrypted reasoning, a `previous_response_id`, server-side tools that fetch content)
//!   make the bound [`PromptBound::unbounded`], and the caller reserves its configured
//!   maximum (`limits.max_reserve_tokens`).
//!
//! What the bound costs in over-reservation on real prompts is measured in the tests below
//! and stated in README "Budgets".

use serde_json::{Map, Value};

/// Template tokens one message or input item may add beyond its JSON: OpenAI's
/// `<|im_start|>`/`<|im_sep|>`/`<|im_end|>` (3), Llama 3's `<|start_header_id|>`,
/// `<|end_header_id|>`, `<|eot_id|>` and `\n\n` (4), Anthropic's `\n\nHuman:` turns (≤ 4),
/// SentencePiece's dummy prefix (1); the role's own text is in the JSON already.
pub const PER_MESSAGE: u64 = 8;
/// The reply's priming (`<|im_start|>assistant<|im_sep|>`, a BOS token): at most 8.
pub const PER_REQUEST: u64 = 8;
/// Syntax a template may print around one JSON value beyond the value's own JSON text.
pub const PER_VALUE: u64 = 2;
/// Framing of one tool definition (OpenAI's `type name = (_: {` … `}) => any;`).
pub const PER_TOOL: u64 = 32;
/// Added once when tools are declared: Anthropic documents a tool-use system prompt of 346
/// tokens (313 with `tool_choice` `any`/`tool`) for Claude 3.7 and 4 models; OpenAI's
/// `namespace functions {` wrapper is a few tokens.
pub const TOOLS_PREAMBLE: u64 = 512;
/// One Anthropic-defined client tool (`computer_*`, `text_editor_*`, `bash_*`, `memory_*`):
/// Anthropic documents at most 735 tokens for the computer tool's definition plus 499 for
/// its system prompt (text editor 700, bash 245).
pub const ANTHROPIC_CLIENT_TOOL: u64 = 2_000;

/// The request shape, which says where the prompt is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    ChatCompletions,
    Responses,
    Messages,
    Embeddings,
}

/// Every top-level member the bound reads, for callers that parse only these.
pub const MEMBERS: &[&str] = &[
    "messages",
    "input",
    "system",
    "instructions",
    "tools",
    "functions",
    "tool_choice",
    "function_call",
    "response_format",
    "text",
    "prediction",
    "previous_response_id",
    "conversation",
    "prompt",
    "web_search_options",
    "mcp_servers",
    "container",
];

/// The bound of one request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PromptBound {
    /// Input-side tokens (uncached, cached or written to a cache: all the same count).
    pub input: u64,
    /// Tokens billed as output that the request's output limit does not cap: OpenAI bills a
    /// `prediction`'s rejected tokens as completion tokens.
    pub extra_output: u64,
    /// Why no request-side figure bounds the input, when that is so (the member or block
    /// type); `input` then counts only what is bounded.
    pub unbounded: Option<&'static str>,
}

/// Most tokens one image can cost on `model`, whatever its size and detail:
/// - Claude: images above ~1.15 megapixels are scaled down, and cost `w·h/750` tokens:
///   1,092×1,092 is 1,590, "about 1,600" in Anthropic's vision guide.
/// - gpt-4o-mini: 2,833 + 5,667 per 512-px tile, at most 8 tiles (2,048×768 after scaling):
///   48,169 (OpenAI's vision guide prices its images like gpt-4o's by inflating tokens).
/// - Other OpenAI models: tiles, 85 + 170 × 8 = 1,445 (gpt-4o, gpt-4.1; o1/o3 and gpt-5 less),
///   or 32-px patches capped at 1,536 × a multiplier of at most 2.46 (gpt-4.1-nano) = 3,779.
/// - Anything else (an OpenAI-compatible server): 16,384, Qwen2-VL's most visual tokens per
///   image, the largest documented among open models served that way.
pub fn image_cap(model: &str) -> u64 {
    let m = model.rsplit('/').next().unwrap_or(model);
    if m.starts_with("claude") {
        1_600
    } else if m.starts_with("gpt-4o-mini") {
        48_169
    } else if m.starts_with("gpt-")
        || (m.starts_with('o') && m.as_bytes().get(1).is_some_and(u8::is_ascii_digit))
    {
        3_779
    } else {
        16_384
    }
}

/// The bound of a request of `shape` for `model`, from its top-level `members`.
pub fn prompt_bound(shape: Shape, model: &str, members: &Map<String, Value>) -> PromptBound {
    let mut walk = Walk {
        tokens: PER_REQUEST,
        unbounded: None,
        image_cap: image_cap(model),
    };
    let unbounded_members: &[&'static str] = match shape {
        Shape::ChatCompletions => &["web_search_options"],
        Shape::Responses => &["previous_response_id", "conversation", "prompt"],
        Shape::Messages => &["mcp_servers", "container"],
        Shape::Embeddings => &[],
    };
    for &name in unbounded_members {
        if members.get(name).is_some_and(|v| !v.is_null()) {
            walk.unbounded.get_or_insert(name);
        }
    }
    let prompt: &[&str] = match shape {
        Shape::ChatCompletions => &["messages"],
        Shape::Responses => &["input", "instructions"],
        Shape::Messages => &["system", "messages"],
        Shape::Embeddings => &["input"],
    };
    for name in prompt {
        match members.get(*name) {
            Some(Value::Array(items)) if shape != Shape::Embeddings => {
                for item in items {
                    walk.tokens += PER_MESSAGE;
                    walk.value(item);
                }
            }
            Some(v) => {
                walk.tokens += PER_MESSAGE;
                walk.value(v);
            }
            None => {}
        }
    }
    let mut tools = 0;
    for name in ["tools", "functions"] {
        if let Some(Value::Array(defs)) = members.get(name) {
            for def in defs {
                tools += 1;
                walk.tool(shape, def);
            }
        }
    }
    if tools > 0 {
        walk.tokens += TOOLS_PREAMBLE;
    }
    // Rendered into the prompt: the tool choice, and a structured-output schema.
    for name in ["tool_choice", "function_call", "response_format", "text"] {
        if let Some(v) = members.get(name) {
            walk.plain(v);
        }
    }
    let extra_output = match (shape, members.get("prediction")) {
        (Shape::ChatCompletions, Some(p)) => json_len(p),
        _ => 0,
    };
    PromptBound {
        input: walk.tokens,
        extra_output,
        unbounded: walk.unbounded,
    }
}

struct Walk {
    tokens: u64,
    unbounded: Option<&'static str>,
    image_cap: u64,
}

impl Walk {
    /// A prompt value: its JSON text, with media blocks at their cap.
    fn value(&mut self, v: &Value) {
        self.tokens = self.tokens.saturating_add(PER_VALUE);
        match v {
            Value::Array(items) => {
                self.tokens += 1 + items.len().max(1) as u64;
                items.iter().for_each(|i| self.value(i));
            }
            Value::Object(map) => {
                if let Some(kind) = map.get("type").and_then(Value::as_str)
                    && self.block(kind, map)
                {
                    return;
                }
                self.tokens += 1 + map.len().max(1) as u64;
                for (k, v) in map {
                    self.tokens = self.tokens.saturating_add(k.len() as u64 + 3);
                    self.value(v);
                }
            }
            scalar => self.tokens = self.tokens.saturating_add(json_len(scalar)),
        }
    }

    /// Counts a media or opaque block and answers true, or answers false for a block whose
    /// JSON is its text.
    fn block(&mut self, kind: &str, map: &Map<String, Value>) -> bool {
        match kind {
            "image_url"
            | "input_image"
            | "image"
            | "computer_screenshot"
            | "image_generation_call" => {
                self.tokens = self.tokens.saturating_add(self.image_cap + 8);
                true
            }
            // A PDF by bytes, URL or file id: pages of text and images with no
            // request-side bound. Plain-text and content documents are their text.
            "document" => {
                let source = map.get("source").and_then(|s| s.get("type")?.as_str());
                if matches!(source, Some("text" | "content")) {
                    return false;
                }
                self.unbounded.get_or_insert("document");
                true
            }
            "file" | "input_file" | "input_audio" | "container_upload" => {
                self.unbounded.get_or_insert(static_kind(kind));
                true
            }
            // Reasoning the provider restores from an id or an encrypted blob (and Claude 4's
            // summarised thinking) is billed at its full length, which the request can't show.
            "reasoning" | "thinking" | "redacted_thinking" | "item_reference" => {
                self.unbounded.get_or_insert(static_kind(kind));
                true
            }
            // Results of server-side tools (web search, fetch, code execution) carry
            // encrypted or fetched content.
            "web_search_call" => {
                self.unbounded.get_or_insert("web_search_call");
                true
            }
            k if k.ends_with("_tool_result") && k != "mcp_tool_result" => {
                self.unbounded.get_or_insert("server_tool_result");
                true
            }
            _ => false,
        }
    }

    /// A tool definition: its JSON, a bounded fixed cost, or nothing that bounds it.
    fn tool(&mut self, shape: Shape, def: &Value) {
        self.tokens = self.tokens.saturating_add(PER_TOOL);
        let kind = def.get("type").and_then(Value::as_str);
        match (shape, kind) {
            (_, None | Some("function" | "custom")) => self.plain(def),
            (Shape::Messages, Some(k))
                if ["computer_", "text_editor_", "bash_", "memory_"]
                    .iter()
                    .any(|p| k.starts_with(p)) =>
            {
                self.tokens = self.tokens.saturating_add(ANTHROPIC_CLIENT_TOOL);
            }
            // Web search, file search, code execution, MCP and other hosted tools bring
            // content into the context that the request does not contain.
            _ => {
                self.unbounded.get_or_insert("hosted_tool");
            }
        }
    }

    /// A value counted as JSON text, with no media blocks (tool schemas, tool choices).
    fn plain(&mut self, v: &Value) {
        self.tokens = self
            .tokens
            .saturating_add(json_len(v) + PER_VALUE * values(v));
    }
}

fn static_kind(kind: &str) -> &'static str {
    match kind {
        "file" => "file",
        "input_file" => "input_file",
        "input_audio" => "input_audio",
        "container_upload" => "container_upload",
        "reasoning" => "reasoning",
        "thinking" => "thinking",
        "redacted_thinking" => "redacted_thinking",
        _ => "item_reference",
    }
}

/// The compact JSON length of `v` with strings unescaped: the bytes of every key, string
/// and literal, and of the punctuation between them.
pub fn json_len(v: &Value) -> u64 {
    match v {
        Value::Null => 4,
        Value::Bool(b) => 4 + u64::from(!*b),
        Value::Number(n) => n.to_string().len() as u64,
        Value::String(s) => s.len() as u64 + 2,
        Value::Array(items) => {
            1 + (items.len().max(1) as u64) + items.iter().map(json_len).sum::<u64>()
        }
        Value::Object(map) => {
            1 + (map.len().max(1) as u64)
                + map
                    .iter()
                    .map(|(k, v)| k.len() as u64 + 3 + json_len(v))
                    .sum::<u64>()
        }
    }
}

/// How many JSON values `v` holds, itself included.
fn values(v: &Value) -> u64 {
    1 + match v {
        Value::Array(items) => items.iter().map(values).sum(),
        Value::Object(map) => map.values().map(values).sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests;
