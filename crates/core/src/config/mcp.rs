//! The `mcp` section: which tool servers the gateway federates and how it guards them.

use std::collections::BTreeMap;

use super::raw::RawMcp;
use super::{ConfigError, Secret};
use crate::http_url;

/// How Airlock reaches one upstream MCP server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Streamable HTTP (MCP 2025-03-26 onward) at this URL.
    Http { url: String },
    /// The deprecated HTTP+SSE transport: this URL is the SSE stream.
    Sse { url: String },
    /// A process Airlock starts and supervises, speaking JSON-RPC on stdin/stdout.
    Stdio {
        command: String,
        args: Vec<String>,
        env: Vec<(String, Secret)>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct McpServer {
    pub name: String,
    pub transport: Transport,
    /// Headers sent upstream on HTTP transports (credentials from config).
    pub headers: Vec<(String, Secret)>,
    /// Changed tool definitions are accepted without an operator's approval.
    pub auto_approve: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mcp {
    pub separator: String,
    pub servers: BTreeMap<String, McpServer>,
    pub pin_tools: bool,
    pub allowed_origins: Vec<String>,
    pub block_flagged_descriptions: bool,
}

impl Default for Mcp {
    fn default() -> Self {
        Mcp {
            separator: "__".into(),
            servers: BTreeMap::new(),
            pin_tools: true,
            allowed_origins: Vec::new(),
            block_flagged_descriptions: false,
        }
    }
}

impl Mcp {
    /// The federated name of `tool` on `server`.
    pub fn tool_name(&self, server: &str, tool: &str) -> String {
        format!("{server}{}{tool}", self.separator)
    }

    /// Splits a federated name into (server, upstream name); the server must be configured.
    pub fn split<'a>(&self, name: &'a str) -> Option<(&'a str, &'a str)> {
        let (server, tool) = name.split_once(self.separator.as_str())?;
        self.servers.contains_key(server).then_some((server, tool))
    }
}

pub(super) fn normalise(raw: Option<RawMcp>, text: &str) -> Result<Mcp, ConfigError> {
    let Some(raw) = raw else {
        return Ok(Mcp::default());
    };
    let separator = raw.separator.unwrap_or_else(|| "__".into());
    // Tool names reach LLM function-calling APIs, which allow only [A-Za-z0-9_-].
    if separator.is_empty()
        || !separator
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(ConfigError::about(
            text,
            "separator:",
            "mcp.separator must be one or more of A-Z a-z 0-9 _ -",
        ));
    }
    let mut servers = BTreeMap::new();
    for (name, s) in raw.servers {
        let bad = |message: String| ConfigError::about(text, &format!("{name}:"), message);
        if name.is_empty()
            || name.contains(separator.as_str())
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(bad(format!(
                "mcp server name `{name}` must be A-Z a-z 0-9 _ - and must not contain the separator `{separator}`"
            )));
        }
        let transport = match (s.url, s.command) {
            (Some(url), None) => {
                if let Err(why) = http_url::parse(&url) {
                    let key = format!("mcp.servers.{name}.url");
                    return Err(ConfigError::bad_url(
                        text,
                        &format!("{name}:"),
                        &key,
                        &url,
                        why,
                    ));
                }
                match s.transport.as_deref() {
                    None | Some("streamable-http") | Some("http") => Transport::Http { url },
                    Some("sse") => Transport::Sse { url },
                    Some(other) => {
                        return Err(bad(format!(
                            "mcp.servers.{name}.transport `{other}` must be streamable-http or sse"
                        )));
                    }
                }
            }
            (None, Some(command)) => {
                if s.transport.as_deref().is_some_and(|t| t != "stdio") {
                    return Err(bad(format!(
                        "mcp.servers.{name} has a command, so its transport is stdio"
                    )));
                }
                Transport::Stdio {
                    command,
                    args: s.args,
                    env: s.env.into_iter().map(|(k, v)| (k, Secret(v))).collect(),
                }
            }
            _ => {
                return Err(bad(format!(
                    "mcp.servers.{name} needs exactly one of `url` or `command`"
                )));
            }
        };
        for (header, value) in &s.headers {
            if !valid_header_name(header) {
                return Err(bad(format!(
                    "mcp.servers.{name}.headers: `{header}` is not a valid HTTP header name"
                )));
            }
            // The value may be a credential: it is never quoted.
            if !valid_header_value(value) {
                return Err(bad(format!(
                    "mcp.servers.{name}.headers.{header}: the value must be printable ASCII (no line breaks)"
                )));
            }
        }
        servers.insert(
            name.clone(),
            McpServer {
                name,
                transport,
                headers: s.headers.into_iter().map(|(k, v)| (k, Secret(v))).collect(),
                auto_approve: s.auto_approve.unwrap_or(false),
            },
        );
    }
    Ok(Mcp {
        separator,
        servers,
        pin_tools: raw.pin_tools.unwrap_or(true),
        allowed_origins: raw.allowed_origins.unwrap_or_default(),
        block_flagged_descriptions: raw.block_flagged_descriptions.unwrap_or(false),
    })
}

/// An RFC 9110 token, what an HTTP header name must be.
fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Printable ASCII and tabs: what an HTTP client sends as a header value as it is.
fn valid_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::{valid_header_name, valid_header_value};

    #[test]
    fn header_names_and_values_must_be_sendable() {
        assert!(valid_header_name("Authorization"));
        assert!(valid_header_name("x-api-key"));
        assert!(!valid_header_name(""));
        assert!(!valid_header_name("x api key"));
        assert!(!valid_header_name("x-key:"));
        assert!(valid_header_value("Bearer abc.def"));
        assert!(!valid_header_value("abc\r\nx-injected: 1"));
        assert!(!valid_header_value("clé"));
    }
}
