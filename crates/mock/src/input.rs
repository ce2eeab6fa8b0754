//! Deterministic input-token counts, so tests can predict the usage the mock
//! reports: one token per whitespace-separated word of text content, plus 3
//! per message or input item, at least 1.

use serde_json::Value;

const PER_MESSAGE: u64 = 3;

pub(crate) fn chat(request: &Value) -> u64 {
    messages(request.get("messages")).max(1)
}

pub(crate) fn anthropic(request: &Value) -> u64 {
    let system = request.get("system").map_or(0, content);
    (system + messages(request.get("messages"))).max(1)
}

pub(crate) fn responses(request: &Value) -> u64 {
    let instructions = request.get("instructions").map_or(0, content);
    let input = match request.get("input") {
        Some(Value::String(text)) => PER_MESSAGE + words(text),
        Some(Value::Array(items)) => items.iter().map(item).sum(),
        _ => 0,
    };
    (instructions + input).max(1)
}

/// Embedding inputs carry no per-item overhead; token-id arrays count one
/// per id.
pub(crate) fn embeddings(request: &Value) -> u64 {
    request.get("input").map_or(0, embedding_input).max(1)
}

fn embedding_input(value: &Value) -> u64 {
    match value {
        Value::String(text) => words(text),
        Value::Number(_) => 1,
        Value::Array(values) => values.iter().map(embedding_input).sum(),
        _ => 0,
    }
}

fn messages(value: Option<&Value>) -> u64 {
    match value {
        Some(Value::Array(messages)) => messages.iter().map(item).sum(),
        _ => 0,
    }
}

/// A chat/Anthropic message or a Responses input item.
fn item(value: &Value) -> u64 {
    // Responses `function_call_output` items carry their text in `output`.
    let output = value.get("output").map_or(0, content);
    PER_MESSAGE + value.get("content").map_or(0, content) + output
}

/// A content value: a string, or an array of blocks.
fn content(value: &Value) -> u64 {
    match value {
        Value::String(text) => words(text),
        Value::Array(blocks) => blocks.iter().map(block).sum(),
        _ => 0,
    }
}

fn block(value: &Value) -> u64 {
    let text = value.get("text").and_then(Value::as_str).map_or(0, words);
    // Anthropic tool results nest their own content.
    let nested = match value.get("type").and_then(Value::as_str) {
        Some("tool_result") => value.get("content").map_or(0, content),
        _ => 0,
    };
    text + nested
}

fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn chat_counts_words_and_overhead() {
        let request = json!({"messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hello  there world"}]},
        ]});
        assert_eq!(chat(&request), 3 + 2 + 3 + 3);
        assert_eq!(chat(&json!({})), 1);
    }

    #[test]
    fn anthropic_counts_system_and_tool_results() {
        let request = json!({
            "system": [{"type": "text", "text": "one two"}],
            "messages": [{"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "x", "content": "a b c"},
            ]}],
        });
        assert_eq!(anthropic(&request), 2 + 3 + 3);
    }

    #[test]
    fn responses_counts_string_and_items() {
        assert_eq!(
            responses(&json!({"input": "a b", "instructions": "c"})),
            2 + 3 + 1
        );
        let items = json!({"input": [
            {"role": "user", "content": [{"type": "input_text", "text": "x y"}]},
            {"type": "function_call_output", "call_id": "c", "output": "z"},
        ]});
        assert_eq!(responses(&items), 5 + 4);
    }

    #[test]
    fn embeddings_count_words_or_ids() {
        assert_eq!(embeddings(&json!({"input": ["a b", "c"]})), 3);
        assert_eq!(embeddings(&json!({"input": [[1, 2, 3]]})), 3);
        assert_eq!(embeddings(&json!({"input": ""})), 1);
    }
}
