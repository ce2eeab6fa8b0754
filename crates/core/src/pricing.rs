//! What a call costs: a built-in price table for current OpenAI and Anthropic models,
//! overridable per `provider/model` or per model name from config.
//!
//! Rates are nano-dollars per one million tokens (USD per 1M × 1e9), so every published
//! price is an integer and a call's cost is one exact division, rounded up: a one-token
//! call costs something, never zero.

use std::collections::HashMap;

use crate::usage::Usage;

/// Prices of one model, in nano-dollars per 1M tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Price {
    pub input: u64,
    pub cached_input: u64,
    pub cache_write: u64,
    pub output: u64,
}

impl Price {
    /// The cost of `usage` in nano-dollars. Uncached input, cached input, cache writes and
    /// output are each billed at their own rate.
    pub fn cost(&self, usage: &Usage) -> u64 {
        let uncached = usage.uncached_input_tokens();
        let micro: u128 = uncached as u128 * self.input as u128
            + usage.cached_input_tokens as u128 * self.cached_input as u128
            + usage.cache_write_tokens as u128 * self.cache_write as u128
            + usage.output_tokens as u128 * self.output as u128;
        u64::try_from(micro.div_ceil(1_000_000)).unwrap_or(u64::MAX)
    }
}

/// USD per 1M tokens written as thousandths of a dollar (so the table stays exact):
/// (model prefix, input, cached input, cache write, output).
const BUILT_IN_MILLI_USD: &[(&str, u64, u64, u64, u64)] = &[
    // OpenAI: cache writes are not billed separately, so they cost plain input.
    ("gpt-5", 1_250, 125, 1_250, 10_000),
    ("gpt-5-mini", 250, 25, 250, 2_000),
    ("gpt-5-nano", 50, 5, 50, 400),
    ("gpt-4.1", 2_000, 500, 2_000, 8_000),
    ("gpt-4.1-mini", 400, 100, 400, 1_600),
    ("gpt-4.1-nano", 100, 25, 100, 400),
    ("gpt-4o", 2_500, 1_250, 2_500, 10_000),
    ("gpt-4o-mini", 150, 75, 150, 600),
    ("gpt-4-turbo", 10_000, 10_000, 10_000, 30_000),
    ("gpt-3.5-turbo", 500, 500, 500, 1_500),
    ("o1", 15_000, 7_500, 15_000, 60_000),
    ("o1-mini", 1_100, 550, 1_100, 4_400),
    ("o3", 2_000, 500, 2_000, 8_000),
    ("o3-mini", 1_100, 550, 1_100, 4_400),
    ("o4-mini", 1_100, 275, 1_100, 4_400),
    ("text-embedding-3-small", 20, 20, 20, 0),
    ("text-embedding-3-large", 130, 130, 130, 0),
    ("text-embedding-ada-002", 100, 100, 100, 0),
    // Anthropic: cache reads at 0.1x input, 5-minute cache writes at 1.25x input.
    ("claude-opus-4-5", 5_000, 500, 6_250, 25_000),
    ("claude-opus-4-1", 15_000, 1_500, 18_750, 75_000),
    ("claude-opus-4", 15_000, 1_500, 18_750, 75_000),
    ("claude-sonnet-4-5", 3_000, 300, 3_750, 15_000),
    ("claude-sonnet-4", 3_000, 300, 3_750, 15_000),
    ("claude-3-7-sonnet", 3_000, 300, 3_750, 15_000),
    ("claude-haiku-4-5", 1_000, 100, 1_250, 5_000),
    ("claude-3-5-haiku", 800, 80, 1_000, 4_000),
    ("claude-3-haiku", 250, 30, 300, 1_250),
];

/// Where a call's price came from, as its event says (`price_source`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PriceSource {
    /// `pricing:` names the model (`provider/model` or the model).
    Config,
    /// The built-in table has it (a dated snapshot by its entry).
    Table,
    /// Unknown, but of a known family: priced as the family's dearest known member.
    Family,
    /// `pricing.default`.
    Default,
}

impl PriceSource {
    pub fn as_str(self) -> &'static str {
        match self {
            PriceSource::Config => "config",
            PriceSource::Table => "table",
            PriceSource::Family => "family",
            PriceSource::Default => "default",
        }
    }
}

/// The families of the built-in table: a model of one that the table does not know yet (a
/// new `claude-sonnet-5`) costs what its dearest known member costs, never nothing.
const FAMILIES: &[&str] = &[
    "gpt-",
    "claude-opus-",
    "claude-sonnet-",
    "claude-haiku-",
    "gemini-",
];

/// The effective price table: config overrides first, then the built-in table by the
/// longest model-name prefix (so dated snapshots such as `gpt-4o-mini-2024-07-18` match),
/// then the model's family, then `pricing.default`. Table and family match whatever the
/// case of the name (`mock/GPT-4O-MINI` is `gpt-4o-mini`).
#[derive(Clone, Debug, Default)]
pub struct PriceTable {
    overrides: HashMap<String, Price>,
    default: Option<Price>,
}

impl PriceTable {
    pub fn new(overrides: HashMap<String, Price>, default: Option<Price>) -> Self {
        PriceTable { overrides, default }
    }

    /// The price of `model` served by `provider`; `None` when nothing prices it.
    pub fn lookup(&self, provider: &str, model: &str) -> Option<Price> {
        self.resolve(provider, model).map(|(price, _)| price)
    }

    /// The price of `model` served by `provider` and where it came from.
    pub fn resolve(&self, provider: &str, model: &str) -> Option<(Price, PriceSource)> {
        if let Some(p) = self
            .overrides
            .get(&format!("{provider}/{model}"))
            .or_else(|| self.overrides.get(model))
        {
            return Some((*p, PriceSource::Config));
        }
        let lower = model.to_ascii_lowercase();
        if let Some(p) = built_in(&lower) {
            return Some((p, PriceSource::Table));
        }
        if let Some(p) = family(&lower) {
            return Some((p, PriceSource::Family));
        }
        self.default.map(|p| (p, PriceSource::Default))
    }

    /// The name of the entry that prices `model` served by `provider`: `model` itself when
    /// config prices it or the built-in table has it exactly, the table's entry when it is
    /// priced by prefix (`gpt-4o-mini-2024-07-18` → `gpt-4o-mini`); `None` when it is not
    /// in either. The answers form a set bounded by config and the table, whatever names
    /// agents send, which is what a metrics label needs.
    pub fn entry_name<'a>(&self, provider: &str, model: &'a str) -> Option<&'a str> {
        if self.overrides.contains_key(model)
            || self.overrides.contains_key(&format!("{provider}/{model}"))
        {
            return Some(model);
        }
        built_in_entry(model).map(|&(prefix, ..)| prefix)
    }
}

/// The dearest known member of `model`'s family (by input plus output rate), for a model
/// the table does not have. `o<digit>…` is OpenAI's reasoning family.
fn family(model: &str) -> Option<Price> {
    let b = model.as_bytes();
    let reasoning = b.first() == Some(&b'o') && b.get(1).is_some_and(u8::is_ascii_digit);
    let of = |name: &str| -> bool {
        if reasoning {
            let n = name.as_bytes();
            n.first() == Some(&b'o') && n.get(1).is_some_and(u8::is_ascii_digit)
        } else {
            FAMILIES
                .iter()
                .any(|f| model.starts_with(f) && name.starts_with(f))
        }
    };
    BUILT_IN_MILLI_USD
        .iter()
        .filter(|(name, ..)| of(name))
        .max_by_key(|(_, input, _, _, output)| input + output)
        .and_then(|(name, ..)| built_in(name))
}

fn built_in(model: &str) -> Option<Price> {
    let milli = |m: u64| m * 1_000_000; // thousandths of a USD -> nano-dollars
    built_in_entry(model).map(|&(_, input, cached, write, output)| Price {
        input: milli(input),
        cached_input: milli(cached),
        cache_write: milli(write),
        output: milli(output),
    })
}

/// The built-in entry for `model`: the longest prefix that ends where the name does or at
/// a `-`, `@` or `:`.
fn built_in_entry(model: &str) -> Option<&'static (&'static str, u64, u64, u64, u64)> {
    BUILT_IN_MILLI_USD
        .iter()
        .filter(|(prefix, ..)| {
            model.starts_with(prefix)
                && matches!(
                    model.as_bytes().get(prefix.len()),
                    None | Some(b'-' | b'@' | b':')
                )
        })
        .max_by_key(|(prefix, ..)| prefix.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input: u64, cached: u64, write: u64, output: u64) -> Usage {
        Usage {
            input_tokens: input,
            cached_input_tokens: cached,
            cache_write_tokens: write,
            output_tokens: output,
            reasoning_tokens: 0,
        }
    }

    #[test]
    fn entry_names_come_from_config_and_the_table_only() {
        let price = Price {
            input: 1,
            cached_input: 1,
            cache_write: 1,
            output: 1,
        };
        let t = PriceTable::new(
            HashMap::from([
                ("local/llama-3".to_string(), price),
                ("mistral-large".to_string(), price),
            ]),
            None,
        );
        assert_eq!(t.entry_name("openai", "gpt-4o-mini"), Some("gpt-4o-mini"));
        assert_eq!(
            t.entry_name("openai", "gpt-4o-mini-2024-07-18"),
            Some("gpt-4o-mini")
        );
        assert_eq!(
            t.entry_name("openai", "gpt-4o-mini-made-up-7"),
            Some("gpt-4o-mini")
        );
        assert_eq!(t.entry_name("local", "llama-3"), Some("llama-3"));
        assert_eq!(t.entry_name("other", "llama-3"), None);
        assert_eq!(t.entry_name("any", "mistral-large"), Some("mistral-large"));
        assert_eq!(t.entry_name("openai", "made-up-model"), None);
    }

    #[test]
    fn longest_prefix_wins_and_snapshots_match() {
        let t = PriceTable::default();
        assert_eq!(
            t.lookup("openai", "gpt-4o-mini").unwrap().input,
            150_000_000
        );
        assert_eq!(
            t.lookup("openai", "gpt-4o-mini-2024-07-18").unwrap().input,
            150_000_000
        );
        assert_eq!(t.lookup("openai", "gpt-4o").unwrap().input, 2_500_000_000);
        assert_eq!(t.lookup("openai", "o3-mini").unwrap().output, 4_400_000_000);
        assert_eq!(
            t.lookup("anthropic", "claude-sonnet-4-5-20250929")
                .unwrap()
                .cache_write,
            3_750_000_000
        );
        // "gpt-4o" must not be priced as "gpt-4" nor "gpt-4ox" as "gpt-4o": that one is an
        // unknown member of the gpt family.
        assert_eq!(
            t.resolve("openai", "gpt-4ox").unwrap().1,
            PriceSource::Family
        );
        assert!(t.lookup("openai", "mystery").is_none());
    }

    #[test]
    fn overrides_by_target_then_model() {
        let p = Price {
            input: 1,
            cached_input: 1,
            cache_write: 1,
            output: 1,
        };
        let mut o = HashMap::new();
        o.insert("local/gpt-4o-mini".to_string(), p);
        let t = PriceTable::new(o, None);
        assert_eq!(t.lookup("local", "gpt-4o-mini"), Some(p));
        assert_eq!(
            t.lookup("openai", "gpt-4o-mini").unwrap().input,
            150_000_000
        );
    }

    #[test]
    fn no_known_model_is_free_in_any_case_and_a_new_family_member_costs_the_dearest() {
        let t = PriceTable::new(HashMap::new(), None);
        let (p, source) = t.resolve("mock", "GPT-4O-MINI").unwrap();
        assert_eq!((p.input, source), (150_000_000, PriceSource::Table));
        // Unknown members: the family's dearest known member.
        let (sonnet, source) = t.resolve("anthropic", "claude-sonnet-9-0").unwrap();
        assert_eq!(source, PriceSource::Family);
        assert_eq!(sonnet, built_in("claude-sonnet-4-5").unwrap());
        let (opus, _) = t.resolve("anthropic", "claude-opus-7").unwrap();
        assert_eq!(opus, built_in("claude-opus-4").unwrap());
        assert_eq!(
            t.resolve("openai", "o9-pro").unwrap().0,
            built_in("o1").unwrap()
        );
        assert_eq!(t.resolve("openai", "gpt-7").unwrap().1, PriceSource::Family);
        // Nothing known: unpriced, unless a default is configured.
        assert_eq!(t.resolve("local", "qwen3-coder"), None);
        let d = Price {
            input: 9,
            cached_input: 9,
            cache_write: 9,
            output: 9,
        };
        let with_default = PriceTable::new(HashMap::new(), Some(d));
        assert_eq!(
            with_default.resolve("local", "qwen3-coder"),
            Some((d, PriceSource::Default))
        );
    }

    #[test]
    fn one_token_costs_something_exact() {
        let p = built_in("gpt-4o-mini").unwrap();
        assert_eq!(p.cost(&usage(1, 0, 0, 0)), 150);
        assert_eq!(p.cost(&usage(0, 0, 0, 1)), 600);
        // 1000 prompt tokens of which 400 cached, 50 out: 600*150 + 400*75 + 50*600.
        assert_eq!(p.cost(&usage(1000, 400, 0, 50)), 90_000 + 30_000 + 30_000);
        // Anthropic: uncached, cache read, cache write and output each at their own rate.
        let c = built_in("claude-sonnet-4-5").unwrap();
        assert_eq!(
            c.cost(&usage(100 + 20 + 30, 20, 30, 10)),
            300_000 + 6_000 + 112_500 + 150_000
        );
        // Fractions of a nano-dollar round up.
        let cheap = Price {
            input: 1,
            cached_input: 0,
            cache_write: 0,
            output: 0,
        };
        assert_eq!(cheap.cost(&usage(1, 0, 0, 0)), 1);
    }
}
