//! One virtual server made of many: names and URIs carry their server (`github__search`,
//! `files+note://readme`) on `/mcp` and stay as they are on `/mcp/<server>`; lists are
//! gathered from every upstream at once, filtered by the agent's policy and the pins, and
//! merged into one page. An upstream that fails is left out, never fatal.

use std::sync::Arc;
use std::time::Duration;

use airlock_core::config::Agent;
use airlock_core::config::mcp::McpServer;
use airlock_core::{Config, Denial, Reason, glob};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::pins::Verdict;
use super::session::{Scope, Session};
use super::upstream::{Link, UpstreamError};
use crate::gateway::Gateway;

/// Upstream pages drained per list, so a server paging forever cannot stall a session.
const MAX_PAGES: usize = 20;
/// The longest a merged list waits for any one server (less when `upstream_timeout` is
/// shorter): a slow server is left out of the list rather than holding up the others.
const LIST_DEADLINE: Duration = Duration::from_secs(10);

/// Everything a request on a session needs.
#[derive(Clone)]
pub struct Ctx {
    pub gateway: Arc<Gateway>,
    pub config: Arc<Config>,
    pub session: Arc<Session>,
    pub agent: Arc<Agent>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listing {
    Tools,
    Prompts,
    Resources,
    Templates,
}

impl Listing {
    pub fn of(method: &str) -> Option<Listing> {
        Some(match method {
            "tools/list" => Listing::Tools,
            "prompts/list" => Listing::Prompts,
            "resources/list" => Listing::Resources,
            "resources/templates/list" => Listing::Templates,
            _ => return None,
        })
    }

    fn method(self) -> &'static str {
        match self {
            Listing::Tools => "tools/list",
            Listing::Prompts => "prompts/list",
            Listing::Resources => "resources/list",
            Listing::Templates => "resources/templates/list",
        }
    }

    fn member(self) -> &'static str {
        match self {
            Listing::Tools => "tools",
            Listing::Prompts => "prompts",
            Listing::Resources => "resources",
            Listing::Templates => "resourceTemplates",
        }
    }
}

impl Ctx {
    pub fn timeout(&self) -> Duration {
        self.config.limits.upstream_timeout
    }

    pub fn servers(&self) -> Vec<McpServer> {
        let servers = &self.config.mcp.servers;
        match &self.session.scope {
            Scope::Federated => servers.values().cloned().collect(),
            Scope::Single(name) => servers.get(name).into_iter().cloned().collect(),
        }
    }

    /// The upstream of a tool or prompt name as the agent wrote it, and its upstream name.
    pub fn route_name<'a>(&self, name: &'a str) -> Option<(McpServer, &'a str)> {
        let (server, upstream) = match &self.session.scope {
            Scope::Federated => self.config.mcp.split(name)?,
            Scope::Single(server) => (server.as_str(), name),
        };
        Some((self.config.mcp.servers.get(server)?.clone(), upstream))
    }

    /// The upstream of a resource URI as the agent wrote it, and the upstream's URI.
    pub fn route_uri<'a>(&self, uri: &'a str) -> Option<(McpServer, &'a str)> {
        let (server, upstream) = match &self.session.scope {
            Scope::Federated => uri.split_once('+')?,
            Scope::Single(server) => (server.as_str(), uri),
        };
        Some((self.config.mcp.servers.get(server)?.clone(), upstream))
    }

    fn public_name(&self, server: &str, name: &str) -> String {
        match self.session.scope {
            Scope::Federated => self.config.mcp.tool_name(server, name),
            Scope::Single(_) => name.to_string(),
        }
    }

    fn public_uri(&self, server: &str, uri: &str) -> String {
        match self.session.scope {
            Scope::Federated => format!("{server}+{uri}"),
            Scope::Single(_) => uri.to_string(),
        }
    }

    /// May the agent use `tool` of `server`? Globs match `<server><separator><tool>` on
    /// either endpoint, so one policy covers both.
    pub fn decide_tool(&self, server: &str, tool: &str) -> Result<(), Denial> {
        let name = self.config.mcp.tool_name(server, tool);
        let agent = &self.agent;
        if glob::allowed(agent.allow.tools.as_deref(), &name)
            && !agent.deny.tools.iter().any(|g| glob::matches(g, &name))
        {
            Ok(())
        } else {
            Err(Denial::new(
                Reason::NotAllowed,
                format!("agent `{}` may not use tool `{name}`", agent.id),
            ))
        }
    }

    pub async fn link(&self, server: &McpServer) -> Result<Link, UpstreamError> {
        let mcp = &self.gateway.mcp;
        self.session
            .link(server, &self.gateway.upstream, &mcp.stdio, self.timeout())
            .await
    }

    /// One request to `server`; an expired upstream session is reopened once.
    pub async fn request(
        &self,
        server: &McpServer,
        method: &str,
        params: Option<Value>,
    ) -> Result<Value, UpstreamError> {
        let link = self.link(server).await?;
        match link.request(method, params.clone(), self.timeout()).await {
            Err(UpstreamError::SessionExpired { .. }) => {
                self.session.drop_link(&server.name, &link).await;
                let link = self.link(server).await?;
                link.request(method, params, self.timeout()).await
            }
            other => other,
        }
    }

    /// Everything `server` lists, every page of it.
    async fn drain(
        &self,
        server: &McpServer,
        listing: Listing,
    ) -> Result<Vec<Value>, UpstreamError> {
        let mut items = Vec::new();
        let mut cursor: Option<Value> = None;
        for _ in 0..MAX_PAGES {
            let params = cursor.take().map(|c| json!({"cursor": c}));
            let response = self.request(server, listing.method(), params).await?;
            let Some(result) = response.get("result") else {
                // A server without this capability answers -32601: it lists nothing.
                break;
            };
            if let Some(page) = result.get(listing.member()).and_then(Value::as_array) {
                items.extend(page.iter().cloned());
            }
            match result.get("nextCursor") {
                Some(c) if !c.is_null() => cursor = Some(c.clone()),
                _ => break,
            }
        }
        Ok(items)
    }

    /// Lists the tools of one server, so their pins are known before a first call.
    pub async fn list_server_tools(&self, server: &McpServer) -> Result<(), UpstreamError> {
        let items = self.drain(server, Listing::Tools).await?;
        self.offer(server, Listing::Tools, items).await;
        Ok(())
    }

    /// The merged list for the agent: every server at once, in the order of their names.
    pub async fn list(&self, listing: Listing) -> Value {
        let mut tasks = JoinSet::new();
        let servers = self.servers();
        let deadline = self.timeout().min(LIST_DEADLINE);
        for (i, server) in servers.iter().cloned().enumerate() {
            let ctx = self.clone();
            tasks.spawn(async move {
                let items = tokio::time::timeout(deadline, ctx.drain(&server, listing))
                    .await
                    .unwrap_or_else(|_| {
                        Err(UpstreamError::Timeout {
                            server: server.name.clone(),
                            secs: deadline.as_secs(),
                        })
                    });
                (i, items)
            });
        }
        let mut gathered: Vec<Option<Vec<Value>>> = vec![None; servers.len()];
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((i, Ok(items))) => gathered[i] = Some(items),
                Ok((_, Err(e))) => tracing::warn!(error = %e, "left an MCP server out of a list"),
                Err(e) => tracing::error!(error = %e, "listing an MCP server failed"),
            }
        }
        let mut out = Vec::new();
        for (server, items) in servers.iter().zip(gathered) {
            let Some(items) = items else { continue };
            out.extend(self.offer(server, listing, items).await);
        }
        json!({ listing.member(): out })
    }

    /// What of one server's list the agent gets to see, renamed for the scope.
    async fn offer(
        &self,
        server: &McpServer,
        listing: Listing,
        mut items: Vec<Value>,
    ) -> Vec<Value> {
        let verdicts = match listing {
            Listing::Tools => {
                // Never pinned, so never callable either.
                items.retain(|tool| {
                    let name = tool.get("name").and_then(Value::as_str).unwrap_or_default();
                    let valid = valid_tool_name(name);
                    if !valid {
                        tracing::warn!(server = %server.name, tool = %name.escape_debug(),
                            "withheld a tool whose name is not 1-128 of A-Z a-z 0-9 _ . -");
                    }
                    valid
                });
                let pins = &self.gateway.mcp.pins;
                pins.observe(&self.gateway, &self.config.mcp, server, &items)
                    .await
            }
            _ => vec![Verdict::Ok; items.len()],
        };
        let mut out = Vec::new();
        for (mut item, verdict) in items.into_iter().zip(verdicts) {
            let (field, is_uri) = match listing {
                Listing::Tools | Listing::Prompts => ("name", false),
                Listing::Resources => ("uri", true),
                Listing::Templates => ("uriTemplate", true),
            };
            let Some(slot) = item.get_mut(field) else {
                continue;
            };
            let Some(original) = slot.as_str().map(str::to_string) else {
                continue;
            };
            if listing == Listing::Tools
                && (verdict != Verdict::Ok || self.decide_tool(&server.name, &original).is_err())
            {
                continue;
            }
            *slot = json!(if is_uri {
                self.public_uri(&server.name, &original)
            } else {
                self.public_name(&server.name, &original)
            });
            out.push(item);
        }
        out
    }
}

/// MCP's rule for tool names; any other name could slip past globs and pins.
fn valid_tool_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::valid_tool_name;

    #[test]
    fn tool_names_follow_the_mcp_rule() {
        assert!(valid_tool_name("search_issues.v2-beta"));
        assert!(valid_tool_name(&"a".repeat(128)));
        assert!(!valid_tool_name(""));
        assert!(!valid_tool_name(&"a".repeat(129)));
        assert!(!valid_tool_name("read file"));
        assert!(!valid_tool_name("read\u{200b}file"));
        assert!(!valid_tool_name("read/*"));
    }
}
