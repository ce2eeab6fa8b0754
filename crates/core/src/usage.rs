//! Token usage as providers report it, normalised to one meaning.
//!
//! `input_tokens` counts every prompt token including cached ones (OpenAI's
//! `prompt_tokens`; Anthropic's `input_tokens + cache_read + cache_creation`),
//! `cached_input_tokens` the part read from cache, `cache_write_tokens` the part written
//! to it, `reasoning_tokens` the part of `output_tokens` spent thinking.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub cache_write_tokens: u64,
    pub output_tokens: u64,
    pub reasoning_tokens: u64,
}

impl Usage {
    pub fn uncached_input_tokens(&self) -> u64 {
        self.input_tokens
            .saturating_sub(self.cached_input_tokens)
            .saturating_sub(self.cache_write_tokens)
    }
}

/// Which API's usage object is being read: the same field name means different things.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// OpenAI Chat Completions and Embeddings (`prompt_tokens`, `completion_tokens`).
    OpenAiChat,
    /// OpenAI Responses (`input_tokens` includes cached tokens).
    OpenAiResponses,
    /// Anthropic Messages (`input_tokens` excludes cache reads and writes).
    Anthropic,
}

#[derive(Clone, Copy, Debug, Default, Deserialize)]
struct Details {
    cached_tokens: Option<u64>,
    cache_write_tokens: Option<u64>,
    reasoning_tokens: Option<u64>,
    thinking_tokens: Option<u64>,
}

/// A provider's usage object in any dialect; every field optional because streams report
/// it in pieces (Anthropic's `message_start` then cumulative `message_delta`).
#[derive(Clone, Copy, Debug, Default, Deserialize)]
pub struct UsageReport {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    prompt_tokens_details: Option<Details>,
    completion_tokens_details: Option<Details>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    input_tokens_details: Option<Details>,
    output_tokens_details: Option<Details>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
}

impl UsageReport {
    /// Takes every field `later` reports, keeping the ones it leaves out.
    pub fn merge(&mut self, later: UsageReport) {
        macro_rules! take {
            ($($f:ident),*) => { $( if later.$f.is_some() { self.$f = later.$f; } )* };
        }
        take!(
            prompt_tokens,
            completion_tokens,
            prompt_tokens_details,
            completion_tokens_details,
            input_tokens,
            output_tokens,
            input_tokens_details,
            output_tokens_details,
            cache_read_input_tokens,
            cache_creation_input_tokens
        );
    }

    pub fn normalise(&self, dialect: Dialect) -> Usage {
        let n = |v: Option<u64>| v.unwrap_or(0);
        let d = |v: Option<Details>| v.unwrap_or_default();
        match dialect {
            Dialect::OpenAiChat => {
                let pd = d(self.prompt_tokens_details);
                Usage {
                    input_tokens: n(self.prompt_tokens),
                    cached_input_tokens: n(pd.cached_tokens),
                    cache_write_tokens: n(pd.cache_write_tokens),
                    output_tokens: n(self.completion_tokens),
                    reasoning_tokens: n(d(self.completion_tokens_details).reasoning_tokens),
                }
            }
            Dialect::OpenAiResponses => {
                let id = d(self.input_tokens_details);
                Usage {
                    input_tokens: n(self.input_tokens),
                    cached_input_tokens: n(id.cached_tokens),
                    cache_write_tokens: n(id.cache_write_tokens),
                    output_tokens: n(self.output_tokens),
                    reasoning_tokens: n(d(self.output_tokens_details).reasoning_tokens),
                }
            }
            Dialect::Anthropic => {
                let read = n(self.cache_read_input_tokens);
                let write = n(self.cache_creation_input_tokens);
                let od = d(self.output_tokens_details);
                Usage {
                    input_tokens: n(self.input_tokens) + read + write,
                    cached_input_tokens: read,
                    cache_write_tokens: write,
                    output_tokens: n(self.output_tokens),
                    reasoning_tokens: n(od.thinking_tokens.or(od.reasoning_tokens)),
                }
            }
        }
    }
}

/// The `usage` member of a whole JSON response body, if it has one.
pub fn usage_of_body(body: &[u8]) -> Option<UsageReport> {
    #[derive(Deserialize)]
    struct WithUsage {
        usage: Option<UsageReport>,
    }
    serde_json::from_slice::<WithUsage>(body).ok()?.usage
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(json: &str) -> UsageReport {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn openai_chat_counts_cached_inside_prompt() {
        let u = report(
            r#"{"prompt_tokens":100,"completion_tokens":20,"total_tokens":120,
               "prompt_tokens_details":{"cached_tokens":40,"audio_tokens":0},
               "completion_tokens_details":{"reasoning_tokens":5}}"#,
        )
        .normalise(Dialect::OpenAiChat);
        assert_eq!(
            u,
            Usage {
                input_tokens: 100,
                cached_input_tokens: 40,
                cache_write_tokens: 0,
                output_tokens: 20,
                reasoning_tokens: 5
            }
        );
        assert_eq!(u.uncached_input_tokens(), 60);
    }

    #[test]
    fn null_details_are_zero() {
        let u =
            report(r#"{"prompt_tokens":3,"completion_tokens":null,"prompt_tokens_details":null}"#)
                .normalise(Dialect::OpenAiChat);
        assert_eq!(u.input_tokens, 3);
        assert_eq!(u.output_tokens, 0);
    }

    #[test]
    fn responses_usage() {
        let u = report(
            r#"{"input_tokens":50,"input_tokens_details":{"cached_tokens":10},
               "output_tokens":7,"output_tokens_details":{"reasoning_tokens":2},"total_tokens":57}"#,
        )
        .normalise(Dialect::OpenAiResponses);
        assert_eq!(
            (
                u.input_tokens,
                u.cached_input_tokens,
                u.output_tokens,
                u.reasoning_tokens
            ),
            (50, 10, 7, 2)
        );
    }

    #[test]
    fn anthropic_input_adds_cache_reads_and_writes_and_streams_merge() {
        let mut r = report(
            r#"{"input_tokens":10,"cache_read_input_tokens":30,"cache_creation_input_tokens":5,"output_tokens":1}"#,
        );
        r.merge(report(r#"{"output_tokens":42}"#));
        let u = r.normalise(Dialect::Anthropic);
        assert_eq!(
            u,
            Usage {
                input_tokens: 45,
                cached_input_tokens: 30,
                cache_write_tokens: 5,
                output_tokens: 42,
                reasoning_tokens: 0
            }
        );
        assert_eq!(u.uncached_input_tokens(), 10);
    }

    #[test]
    fn body_usage() {
        assert!(usage_of_body(br#"{"id":"x","usage":{"prompt_tokens":1}}"#).is_some());
        assert!(usage_of_body(br#"{"id":"x"}"#).is_none());
        assert!(usage_of_body(b"not json").is_none());
    }
}
