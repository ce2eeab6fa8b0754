//! The worst case of an LLM call, reserved against budgets and token limits before it is
//! forwarded: a true upper bound of what any target it may fall back to can bill.
//!
//! - Input: [`airlock_core::tokens::prompt_bound`] (at most one token per byte of what the
//!   model sees, framing and media caps on top), or `limits.max_reserve_tokens` when the
//!   body can't bound the prompt (a `previous_response_id`, a file id, hosted tools).
//! - Output: the request's own limit × `n`, or the configured cap, which is then sent
//!   upstream as the limit.
//! - Price: every input token at the dearest input-side rate (uncached, cached, cache write;
//!   for Claude models at least 2× input, what a one-hour cache write costs), output at the
//!   output rate, at the dearest target.

use airlock_core::config::{Config, ProviderKind, Target};
use airlock_core::pricing::Price;
use airlock_core::tokens::{MEMBERS, PromptBound, Shape, prompt_bound};
use serde_json::{Map, Value};

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
    let members: Map<String, Value> = MEMBERS
        .iter()
        .filter_map(|&m| {
            let v = serde_json::from_str(request.member(m)?.get()).ok()?;
            Some((m.to_owned(), v))
        })
        .collect();
    let shape = match request.api {
        Api::ChatCompletions => Shape::ChatCompletions,
        Api::Responses => Shape::Responses,
        Api::Messages => Shape::Messages,
        Api::Embeddings => Shape::Embeddings,
    };
    let output = output.saturating_mul(choices);

    let mut nanos = 0;
    let mut tokens = 0;
    let models = targets.iter().map(|t| (Some(t), t.model.as_str()));
    let models: Vec<_> = if targets.is_empty() {
        vec![(None, request.model.as_str())]
    } else {
        models.collect()
    };
    for (target, model) in models {
        let bound = prompt_bound(shape, model, &members);
        let input = input_tokens(&bound, config.limits.max_reserve_tokens);
        let output = output.saturating_add(bound.extra_output);
        // `output` is u64::MAX for `"n": 1e16` or `"max_tokens": 2^64-1`: a plain sum
        // wrapped to a tiny reservation in release builds, slipping past token limits.
        tokens = tokens.max(input.saturating_add(output));
        let Some(target) = target else { continue };
        let Some(price) = config.prices.lookup(&target.provider, &target.model) else {
            continue;
        };
        let anthropic = config
            .providers
            .get(&target.provider)
            .is_some_and(|p| p.kind == ProviderKind::Anthropic)
            || target.model.contains("claude");
        nanos = nanos.max(worst_cost(&price, anthropic, input, output));
    }
    Estimate { nanos, tokens }
}

fn input_tokens(bound: &PromptBound, max_reserve: u64) -> u64 {
    match bound.unbounded {
        Some(_) => bound.input.max(max_reserve),
        None => bound.input,
    }
}

/// `input` tokens at the dearest input-side rate and `output` at the output rate. Any input
/// token may be billed uncached, read from a cache or written to one; Anthropic bills a
/// one-hour cache write at 2× input, above the five-minute 1.25× in the price table, so
/// Claude's input is reserved at 2× input unless the configured cache-write price is dearer.
fn worst_cost(price: &Price, anthropic: bool, input: u64, output: u64) -> u64 {
    let mut rate = price.input.max(price.cached_input).max(price.cache_write);
    if anthropic {
        rate = rate.max(price.input.saturating_mul(2));
    }
    let micro =
        u128::from(input) * u128::from(rate) + u128::from(output) * u128::from(price.output);
    u64::try_from(micro.div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_core::usage::Usage;

    #[test]
    fn the_worst_cost_bounds_any_split_of_the_input() {
        let sonnet = Price {
            input: 3_000_000_000,
            cached_input: 300_000_000,
            cache_write: 3_750_000_000,
            output: 15_000_000_000,
        };
        let reserved = worst_cost(&sonnet, true, 1_000, 10);
        for (cached, written) in [(0, 0), (1_000, 0), (0, 1_000), (300, 700)] {
            let billed = sonnet.cost(&Usage {
                input_tokens: 1_000,
                cached_input_tokens: cached,
                cache_write_tokens: written,
                output_tokens: 10,
                ..Usage::default()
            });
            assert!(billed <= reserved, "{cached} {written}");
        }
        // A one-hour cache write: 2× input, $6 per 1M for Sonnet.
        assert_eq!(reserved, 1_000 * 6_000 + 10 * 15_000);
        assert_eq!(worst_cost(&sonnet, false, 1_000, 0), 1_000 * 3_750);
    }

    #[test]
    fn an_unbounded_prompt_reserves_the_configured_maximum() {
        let b = PromptBound {
            input: 40,
            extra_output: 0,
            unbounded: Some("previous_response_id"),
        };
        assert_eq!(input_tokens(&b, 200_000), 200_000);
        let big = PromptBound {
            input: 300_000,
            ..b
        };
        assert_eq!(input_tokens(&big, 200_000), 300_000);
    }
}
