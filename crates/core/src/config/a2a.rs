//! The `a2a` section: the remote agents (Agent2Agent protocol) agents reach through
//! `/a2a/<name>`.

use std::collections::BTreeMap;

use super::raw::RawA2a;
use super::{ConfigError, Secret};
use crate::http_url;

/// One remote agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteAgent {
    pub name: String,
    /// Its base URL, without a trailing slash: the card is read from
    /// `<url>/.well-known/agent-card.json` (or `agent.json`).
    pub url: String,
    /// Headers sent with every request to it (credentials from config).
    pub headers: Vec<(String, Secret)>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct A2a {
    pub agents: BTreeMap<String, RemoteAgent>,
}

pub(super) fn normalise(raw: Option<RawA2a>, text: &str) -> Result<A2a, ConfigError> {
    let Some(raw) = raw else {
        return Ok(A2a::default());
    };
    let mut agents = BTreeMap::new();
    for (name, a) in raw.agents {
        let bad = |message: String| ConfigError::about(text, &format!("{name}:"), message);
        // The name is a path segment of `/a2a/<name>` and the target of events.
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        {
            return Err(bad(format!(
                "a2a agent name `{name}` must be one or more of A-Z a-z 0-9 _ - ."
            )));
        }
        let url = a.url.trim_end_matches('/').to_string();
        if let Err(why) = http_url::parse_base(&url) {
            let key = format!("a2a.agents.{name}.url");
            return Err(ConfigError::bad_url(
                text,
                &format!("{name}:"),
                &key,
                &url,
                why,
            ));
        }
        let mut headers = Vec::new();
        for (header, value) in a.headers {
            if header.is_empty() || !header.bytes().all(is_token_byte) {
                return Err(bad(format!(
                    "a2a.agents.{name}.headers: `{header}` is not a valid header name"
                )));
            }
            if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
                return Err(bad(format!(
                    "a2a.agents.{name}.headers.{header} must not contain control characters"
                )));
            }
            headers.push((header, Secret(value)));
        }
        agents.insert(name.clone(), RemoteAgent { name, url, headers });
    }
    Ok(A2a { agents })
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use crate::Config;

    fn parse(yaml: &str) -> Result<Config, crate::ConfigError> {
        Config::parse(yaml, &|name| {
            (name == "TOKEN").then(|| "s3cret".to_string())
        })
    }

    #[test]
    fn remote_agents_are_normalised_with_secret_headers() {
        let c = parse(
            "a2a:\n  agents:\n    planner:\n      url: http://127.0.0.1:9100/\n      headers: { Authorization: \"Bearer ${TOKEN}\" }\n",
        )
        .unwrap();
        let planner = &c.a2a.agents["planner"];
        assert_eq!(planner.url, "http://127.0.0.1:9100");
        assert_eq!(planner.headers[0].0, "Authorization");
        assert_eq!(planner.headers[0].1.expose(), "Bearer s3cret");
        assert!(!format!("{planner:?}").contains("s3cret"));
        assert!(parse("agents: []\n").unwrap().a2a.agents.is_empty());
    }

    #[test]
    fn bad_names_urls_and_headers_are_refused_with_their_line() {
        for (yaml, needle) in [
            (
                "a2a:\n  agents:\n    bad/name:\n      url: http://x\n",
                "name",
            ),
            ("a2a:\n  agents:\n    ok:\n      url: ftp://x\n", "http://"),
            ("a2a:\n  agents:\n    ok:\n      url: http://\n", "http://"),
            (
                "a2a:\n  agents:\n    ok:\n      url: http://x/?a=1\n",
                "query",
            ),
            (
                "a2a:\n  agents:\n    ok:\n      url: http://x\n      headers: { \"a b\": v }\n",
                "header name",
            ),
        ] {
            let e = parse(yaml).unwrap_err();
            assert!(e.message.contains(needle), "{yaml}: {e}");
            assert_eq!(e.line, Some(3), "{yaml}: {e}");
        }
        let e =
            parse("a2a:\n  agents:\n    ok:\n      url: http://x\n      token: 1\n").unwrap_err();
        assert!(e.message.contains("token"), "{e}");
    }
}
