//! Prompt-size estimates for budget reservations. OpenAI models are counted with their
//! own tokenizer (o200k_base, cl100k_base for older models; the tables ship inside the
//! crate, nothing downloads); other models get a deliberately high estimate of one token
//! per three bytes of text, so a reservation stays an upper bound.

use std::sync::OnceLock;

use serde_json::Value;
use tiktoken_rs::CoreBPE;

/// Tokens a chat message costs beyond its text (role and framing), per OpenAI's guidance.
const PER_MESSAGE: u64 = 4;

fn o200k() -> &'static CoreBPE {
    static BPE: OnceLock<CoreBPE> = OnceLock::new();
    BPE.get_or_init(|| tiktoken_rs::o200k_base().expect("o200k_base ships with tiktoken-rs"))
}

fn cl100k() -> &'static CoreBPE {
    static BPE: OnceLock<CoreBPE> = OnceLock::new();
    BPE.get_or_init(|| tiktoken_rs::cl100k_base().expect("cl100k_base ships with tiktoken-rs"))
}

/// Loads the tokenizer tables (a few hundred milliseconds), so the first call that needs
/// an estimate does not pay for it. Run it off the async runtime.
pub fn warm_up() {
    o200k();
    cl100k();
}

/// The tokenizer of an OpenAI model, if it is one.
fn tokenizer(model: &str) -> Option<&'static CoreBPE> {
    let b = model.as_bytes();
    let o_series = b.first() == Some(&b'o') && b.get(1).is_some_and(u8::is_ascii_digit);
    if model.starts_with("gpt-4o")
        || model.starts_with("gpt-4.1")
        || model.starts_with("gpt-5")
        || o_series
    {
        Some(o200k())
    } else if model.starts_with("gpt-") || model.starts_with("text-embedding-") {
        Some(cl100k())
    } else {
        None
    }
}

/// Estimated prompt tokens of the request members that carry text (`messages`, `input`,
/// `system`, `instructions`, `tools`) for `model`.
pub fn prompt_tokens(model: &str, parts: &[&Value]) -> u64 {
    let mut text = String::new();
    let mut messages = 0u64;
    for part in parts {
        if let Value::Array(items) = part {
            messages += items.len() as u64;
        }
        collect_text(part, &mut text);
    }
    let body = match tokenizer(model) {
        Some(bpe) => bpe.encode_ordinary(&text).len() as u64,
        None => (text.len() as u64).div_ceil(3),
    };
    body + PER_MESSAGE * messages + 3
}

/// Every string in `v`, keys excepted, joined by newlines.
fn collect_text(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        Value::Array(items) => items.iter().for_each(|i| collect_text(i, out)),
        Value::Object(map) => map.values().for_each(|i| collect_text(i, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn openai_models_use_their_tokenizer() {
        let msgs = json!([{"role": "user", "content": "hello world"}]);
        // "user\nhello world\n" is 5 o200k tokens; +4 for the message, +3 priming.
        assert_eq!(prompt_tokens("gpt-4o-mini", &[&msgs]), 5 + 4 + 3);
        assert!(prompt_tokens("gpt-4-turbo", &[&msgs]) > 4);
    }

    #[test]
    fn other_models_get_a_high_estimate() {
        let text = "a".repeat(300);
        let v = json!(text);
        assert_eq!(prompt_tokens("claude-sonnet-4-5", &[&v]), 101 + 3);
    }
}
