//! What the mock answers, shared by every wire format: the reply text, its
//! stream deltas and the token counts to report.

use std::fmt::Write;

use crate::directives::Directives;

/// The arguments of every mocked tool call.
pub(crate) const TOOL_ARGUMENTS: &str = r#"{"q":"mock"}"#;
/// `TOOL_ARGUMENTS` split the way it is streamed, so clients must
/// reassemble fragments as with a real provider.
pub(crate) const TOOL_ARGUMENT_FRAGMENTS: [&str; 2] = [r#"{"q":"#, r#""mock"}"#];

/// Everything one request needs to render its answer.
pub(crate) struct Ctx<'a> {
    pub directives: &'a Directives,
    /// Makes ids unique within a mock.
    pub n: u64,
    /// Unix seconds.
    pub now: u64,
    pub model: &'a str,
}

pub(crate) struct Reply {
    pub input: u64,
    pub cached: u64,
    pub cache_write: u64,
    pub reasoning: u64,
    /// Words emitted, after capping by the request's token limit.
    pub words: u64,
    /// Whether the token limit cut the reply short.
    pub truncated: bool,
    pub text: String,
}

impl Reply {
    /// `json_mode` swaps the words for a small valid JSON document.
    pub fn new(d: &Directives, input: u64, max_tokens: Option<u64>, json_mode: bool) -> Reply {
        let words = max_tokens.map_or(d.words, |max| d.words.min(max));
        let text = if json_mode {
            format!(r#"{{"ok": true, "words": {words}}}"#)
        } else {
            let mut text = String::with_capacity(words as usize * 4);
            for i in 1..=words {
                let sep = if i == 1 { "" } else { " " };
                let _ = write!(text, "{sep}w{i}");
            }
            text
        };
        Reply {
            input: d.input_tokens.unwrap_or(input),
            cached: d.cached_tokens,
            cache_write: d.cache_write_tokens,
            reasoning: d.reasoning_tokens,
            words,
            truncated: words < d.words,
            text,
        }
    }

    /// Output tokens; reasoning tokens are part of them, as providers bill.
    pub fn output(&self) -> u64 {
        self.words + self.reasoning
    }

    /// One delta per word ("w1 ", "w2 ", …, "wN"); they concatenate to `text`.
    pub fn deltas(&self) -> impl Iterator<Item = &str> {
        self.text.split_inclusive(' ')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_by_max_tokens() {
        let d = Directives {
            words: 5,
            reasoning_tokens: 2,
            ..Directives::default()
        };
        let reply = Reply::new(&d, 10, Some(3), false);
        assert_eq!(reply.text, "w1 w2 w3");
        assert!(reply.truncated);
        assert_eq!(reply.output(), 5);
        assert_eq!(reply.deltas().collect::<Vec<_>>(), ["w1 ", "w2 ", "w3"]);
        assert!(!Reply::new(&d, 10, Some(5), false).truncated);
    }

    #[test]
    fn json_mode_is_valid_json() {
        let reply = Reply::new(&Directives::default(), 1, None, true);
        let parsed: serde_json::Value = serde_json::from_str(&reply.text).unwrap();
        assert_eq!(parsed["words"], 8);
        assert_eq!(reply.deltas().collect::<String>(), reply.text);
    }
}
