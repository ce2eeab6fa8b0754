//! AI providers' API hosts. A tunnel or request to one of them through the egress proxy is
//! an LLM call that never came through Airlock's base URL — "shadow AI" — and is recorded
//! as one, with the provider's name, even when it is not intercepted.

use super::hosts::HostRule;

/// The built-in catalogue, host rule → provider name: the public API endpoints of the
/// providers agents most often call directly.
const BUILT_IN: &[(&str, &str)] = &[
    ("api.openai.com:443", "openai"),
    ("api.anthropic.com:443", "anthropic"),
    ("generativelanguage.googleapis.com:443", "google-gemini"),
    ("aiplatform.googleapis.com:443", "google-vertex"),
    ("*-aiplatform.googleapis.com:443", "google-vertex"),
    ("*.openai.azure.com:443", "azure-openai"),
    ("bedrock-runtime.*.amazonaws.com:443", "aws-bedrock"),
    ("bedrock-runtime-fips.*.amazonaws.com:443", "aws-bedrock"),
    ("api.mistral.ai:443", "mistral"),
    ("api.groq.com:443", "groq"),
    ("api.together.xyz:443", "together"),
    ("api.together.ai:443", "together"),
    ("api.fireworks.ai:443", "fireworks"),
    ("api.deepseek.com:443", "deepseek"),
    ("api.cohere.com:443", "cohere"),
    ("api.cohere.ai:443", "cohere"),
    ("openrouter.ai:443", "openrouter"),
    ("api.x.ai:443", "xai"),
    ("api.perplexity.ai:443", "perplexity"),
];

/// The catalogue in force: `egress.ai_hosts` first, then the built-in entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AiHosts {
    rules: Vec<(HostRule, String)>,
}

impl Default for AiHosts {
    fn default() -> Self {
        AiHosts::new(&[]).expect("the built-in catalogue parses")
    }
}

impl AiHosts {
    /// The built-in catalogue plus `extra` (`egress.ai_hosts`: host globs with an optional
    /// port). An extra entry's provider is its host as written.
    pub fn new(extra: &[String]) -> Result<AiHosts, String> {
        let mut rules = Vec::with_capacity(extra.len() + BUILT_IN.len());
        for entry in extra {
            let rule = HostRule::parse(entry).map_err(|e| format!("egress.ai_hosts: {e}"))?;
            rules.push((rule, provider_name(entry)));
        }
        for (entry, provider) in BUILT_IN {
            rules.push((HostRule::parse(entry)?, (*provider).to_owned()));
        }
        Ok(AiHosts { rules })
    }

    /// The AI provider behind `host:port` (in the compared spelling of [`super::hosts`]),
    /// if it is one.
    pub fn provider(&self, host: &str, port: u16) -> Option<&str> {
        self.rules
            .iter()
            .find(|(rule, _)| rule.matches(host, port))
            .map(|(_, provider)| provider.as_str())
    }
}

/// `llm.internal.example.com:8443` → `llm.internal.example.com`; `[::1]:443` → `::1`.
fn provider_name(entry: &str) -> String {
    let host = match entry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => entry.rsplit_once(':').map_or(entry, |(h, _)| h),
    };
    host.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_names_the_provider() {
        let hosts = AiHosts::default();
        assert_eq!(hosts.provider("api.openai.com", 443), Some("openai"));
        assert_eq!(hosts.provider("api.openai.com", 8443), None, "ports count");
        assert_eq!(
            hosts.provider("myco.openai.azure.com", 443),
            Some("azure-openai")
        );
        assert_eq!(
            hosts.provider("bedrock-runtime.eu-west-1.amazonaws.com", 443),
            Some("aws-bedrock")
        );
        assert_eq!(
            hosts.provider("europe-west4-aiplatform.googleapis.com", 443),
            Some("google-vertex")
        );
        assert_eq!(hosts.provider("s3.amazonaws.com", 443), None);
        assert_eq!(hosts.provider("openai.com", 443), None);
    }

    #[test]
    fn config_entries_come_first_and_name_themselves() {
        let hosts =
            AiHosts::new(&["llm.internal.example.com".into(), "127.0.0.1:9000".into()]).unwrap();
        assert_eq!(
            hosts.provider("llm.internal.example.com", 443),
            Some("llm.internal.example.com")
        );
        assert_eq!(hosts.provider("127.0.0.1", 9000), Some("127.0.0.1"));
        assert_eq!(hosts.provider("127.0.0.1", 9001), None);
        assert!(AiHosts::new(&["https://x.test".into()]).is_err());
    }
}
