//! Fuzzing what an agent's LLM request goes through before it leaves: classification for
//! each API, the worst-case estimate, and the body rewritten for the upstream. Any body is
//! a 400 or a request, never a panic; a rewritten body is still JSON with the new model.

use std::sync::LazyLock;

use airlock_core::Config;
use airlock_core::config::{ProviderKind, Target};
use bytes::Bytes;
use serde_json::Value;

use super::classify::{Api, LlmRequest};
use super::estimate::estimate;
use crate::hostile_json::{self, Item};

/// Random inputs after the corpus in a `cargo test` run (about 0.5 s each in a debug build, after ~1 s loading the tokenizer once);
/// `BOLERO_RANDOM_ITERATIONS` overrides it for a longer campaign (README "Fuzzing").
const RANDOM_INPUTS: usize = 1_000;

const APIS: [Api; 4] = [
    Api::ChatCompletions,
    Api::Responses,
    Api::Embeddings,
    Api::Messages,
];
const KINDS: [ProviderKind; 3] = [
    ProviderKind::Openai,
    ProviderKind::Anthropic,
    ProviderKind::OpenaiCompatible,
];

/// The example config: its prices and output cap are what the estimate reads.
static CONFIG: LazyLock<Config> = LazyLock::new(|| {
    let text = include_str!("../../../../examples/airlock.example.yaml");
    Config::parse(text, &|_| Some("fuzz-value".to_string())).unwrap()
});

fn targets() -> Vec<Target> {
    let target = |provider: &str, model: &str| Target {
        provider: provider.to_string(),
        model: model.to_string(),
    };
    vec![
        target("openai", "gpt-4o-mini"),
        target("anthropic", "claude-sonnet-4-5"),
    ]
}

/// Every API's reading of `body`; what it accepts is estimated and rewritten.
fn classify(body: &[u8]) {
    // Nesting past serde_json's limit is still relayed (members stay raw), but cannot be
    // read back as a `Value` to check.
    let readable = serde_json::from_slice::<Value>(body).is_ok();
    for api in APIS {
        let Ok(mut request) = LlmRequest::classify(api, Bytes::copy_from_slice(body)) else {
            continue;
        };
        let _ = (request.prompt_estimate(), request.body_len());
        let _ = estimate(&mut request, &targets(), &CONFIG);
        for kind in KINDS {
            let same = request.body_for(&request.model.clone(), kind);
            let renamed = request.body_for("upstream-model", kind);
            if readable {
                let renamed: Value = serde_json::from_slice(&renamed).expect("still JSON");
                assert_eq!(renamed["model"], "upstream-model");
            }
            if request.output_cap.is_none() && !request.injected_usage {
                assert_eq!(same, body, "an unchanged request goes upstream as it came");
            }
        }
    }
}

/// Corpus: `__fuzz__/llm__fuzz__bodies/corpus`, real bodies of the four APIs.
#[test]
fn bodies() {
    bolero::check!()
        .with_iterations(RANDOM_INPUTS)
        .for_each(classify);
}

#[test]
fn hostile_bodies() {
    bolero::check!()
        .with_iterations(RANDOM_INPUTS)
        .with_type::<Vec<Item>>()
        .for_each(|items: &Vec<Item>| classify(hostile_json::object(items).as_bytes()));
}
