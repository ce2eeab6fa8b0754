//! Which upstream targets serve a model name.

use std::borrow::Cow;

use super::Config;

/// One upstream target: a provider from config and the model name it knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub provider: String,
    pub model: String,
}

impl Target {
    /// `provider/model`; the model part may itself contain '/' (OpenRouter-style names).
    pub fn parse(text: &str) -> Option<Target> {
        let (provider, model) = text.split_once('/')?;
        (!provider.is_empty() && !model.is_empty()).then(|| Target {
            provider: provider.into(),
            model: model.into(),
        })
    }
}

/// `provider/model`; a target without a model (an A2A remote agent) is its name alone.
impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.model.is_empty() {
            f.write_str(&self.provider)
        } else {
            write!(f, "{}/{}", self.provider, self.model)
        }
    }
}

impl Config {
    /// The ordered targets for `model`: a `models` entry; else `provider/model` naming a
    /// configured provider; else, when the file has no `models` section, the provider a
    /// well-known name belongs to (`gpt-*`, `o<digit>*`, `text-embedding-*` → `openai`,
    /// `claude-*` → `anthropic`), if configured.
    pub fn resolve_model(&self, model: &str) -> Option<Cow<'_, [Target]>> {
        if let Some(targets) = self.models.as_ref().and_then(|m| m.get(model)) {
            return Some(Cow::Borrowed(targets));
        }
        if let Some(t) = Target::parse(model).filter(|t| self.providers.contains_key(&t.provider)) {
            return Some(Cow::Owned(vec![t]));
        }
        if self.models.is_some() {
            return None;
        }
        let provider = default_provider(model)?;
        self.providers.contains_key(provider).then(|| {
            Cow::Owned(vec![Target {
                provider: provider.into(),
                model: model.into(),
            }])
        })
    }

    /// The public model names an agent may list (`GET /v1/models`).
    pub fn public_models(&self) -> Vec<&str> {
        self.models
            .iter()
            .flat_map(|m| m.keys().map(String::as_str))
            .collect()
    }
}

fn default_provider(model: &str) -> Option<&'static str> {
    let b = model.as_bytes();
    let o_series = b.first() == Some(&b'o') && b.get(1).is_some_and(u8::is_ascii_digit);
    if model.starts_with("gpt-") || o_series || model.starts_with("text-embedding-") {
        Some("openai")
    } else if model.starts_with("claude-") {
        Some("anthropic")
    } else {
        None
    }
}
