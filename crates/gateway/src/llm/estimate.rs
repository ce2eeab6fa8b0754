//! The worst case of an LLM call, reserved against budgets and token limits before it is
//! forwarded: prompt tokens from the request's text, output from its own limit (or the
//! configured cap, which is then sent upstream as the limit), priced at the dearest
//! target it may fall back to.

use airlock_core::config::{Config, Target};
use airlock_core::pricing::Price;
use airlock_core::tokens::prompt_tokens;
use airlock_core::usage::Usage;
use serde_json::Value;

use super::classify::{Api, LlmRequest};
use crate::controls::Estimate;

pub fn estimate(request: &mut LlmRequest, targets: &[Target], config: &Config) -> Estimate {
    let output = match request.declared_max_output() {
        Some(n) => n,
        None => {
            let cap = config.limits.max_output_tokens;
            request.output_cap = Some(cap);
            u64::from(cap)
        }
    };
    let choices = match request.api {
        Api::ChatCompletions => request
            .member("n")
            .and_then(|v| serde_json::from_str::<u64>(v.get()).ok())
            .unwrap_or(1)
            .max(1),
        _ => 1,
    };
    let parts: Vec<Value> = ["messages", "input", "system", "instructions", "tools"]
        .iter()
        .filter_map(|m| request.member(m))
        .filter_map(|v| serde_json::from_str(v.get()).ok())
        .collect();
    let model = targets
        .first()
        .map_or(request.model.as_str(), |t| t.model.as_str());
    let prompt = prompt_tokens(model, &parts.iter().collect::<Vec<_>>());
    let output = output.saturating_mul(choices);

    // Prompt tokens may be billed as cache writes, dearer than input for Anthropic.
    let worst = targets
        .iter()
        .filter_map(|t| config.prices.lookup(&t.provider, &t.model))
        .map(|p| Price {
            input: p.input.max(p.cache_write),
            cached_input: 0,
            cache_write: 0,
            output: p.output,
        })
        .map(|p| {
            p.cost(&Usage {
                input_tokens: prompt,
                output_tokens: output,
                ..Usage::default()
            })
        })
        .max()
        .unwrap_or(0);
    Estimate {
        nanos: worst,
        // `output` is u64::MAX for `"n": 1e16` or `"max_tokens": 2^64-1`: a plain sum wrapped
        // to a tiny reservation in release builds, slipping past tokens-per-minute limits.
        tokens: prompt.saturating_add(output),
    }
}
