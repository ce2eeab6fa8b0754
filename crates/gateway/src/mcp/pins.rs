//! Tool pinning and the poisoning scan, as the gateway applies them. The ledger holds each
//! tool's approved definition hash (shared by every replica); this keeps a copy, plus the
//! hash of the definition each upstream offers now, so checking a call costs no I/O.

use std::collections::HashMap;
use std::sync::Mutex;

use airlock_core::config::mcp::{Mcp, McpServer};
use airlock_core::mcp::{pin::definition_hash, scan::scan_tool};
use airlock_core::{Denial, Reason};
use airlock_state::{SeenTool, ToolPin};
use serde_json::Value;

use super::lock;
use crate::controls::now_ms;
use crate::gateway::Gateway;

#[derive(Clone, Debug, Default)]
struct Known {
    approved: Option<String>,
    /// The definition the upstream offers now.
    current: Option<String>,
    flags: Vec<String>,
}

/// Whether a tool may be listed and called.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Changed,
    Flagged(Vec<String>),
}

#[derive(Default)]
pub struct Pins {
    known: Mutex<HashMap<(String, String), Known>>,
}

impl Pins {
    /// Takes in the tools `server` lists now: hashes and scans them, records in the ledger
    /// what is new or different, and says of each whether it may be offered.
    pub async fn observe(
        &self,
        gateway: &Gateway,
        mcp: &Mcp,
        server: &McpServer,
        tools: &[Value],
    ) -> Vec<Verdict> {
        let seen: Vec<SeenTool> = tools
            .iter()
            .map(|t| SeenTool {
                tool: t["name"].as_str().unwrap_or_default().to_string(),
                hash: definition_hash(t),
                definition: t.to_string(),
                flags: scan_tool(t)
                    .into_iter()
                    .map(|f| f.rule.to_string())
                    .collect(),
            })
            .collect();
        let news = {
            let known = lock(&self.known);
            seen.iter().any(|s| {
                known
                    .get(&(server.name.clone(), s.tool.clone()))
                    .is_none_or(|k| k.current.as_deref() != Some(&s.hash) || k.flags != s.flags)
            })
        };
        if news {
            let auto = server.auto_approve || !mcp.pin_tools;
            match gateway
                .ledger
                .observe_tools(server.name.clone(), seen.clone(), now_ms(), auto)
                .await
            {
                Ok(pins) => self.absorb(&pins),
                Err(e) => {
                    // Without the ledger, first sight in this process is the pin.
                    tracing::error!(error = %e, server = %server.name, "could not record tool pins");
                    let mut known = lock(&self.known);
                    for s in &seen {
                        let k = known
                            .entry((server.name.clone(), s.tool.clone()))
                            .or_default();
                        k.approved.get_or_insert_with(|| s.hash.clone());
                    }
                }
            }
        }
        let mut known = lock(&self.known);
        seen.into_iter()
            .map(|s| {
                let k = known.entry((server.name.clone(), s.tool)).or_default();
                k.current = Some(s.hash);
                k.flags = s.flags;
                verdict(k, mcp)
            })
            .collect()
    }

    /// Whether `tool` of `server` may be called; `None` when it has not been listed yet.
    pub fn check(&self, mcp: &Mcp, server: &str, tool: &str) -> Option<Result<(), Denial>> {
        let known = lock(&self.known);
        let k = known.get(&(server.to_string(), tool.to_string()))?;
        k.current.as_ref()?;
        Some(match verdict(k, mcp) {
            Verdict::Ok => Ok(()),
            Verdict::Changed => Err(Denial::new(
                Reason::ToolChanged,
                format!(
                    "tool `{tool}` of MCP server `{server}` changed since it was approved; an operator must approve it (`airlock tools approve {server} {tool}`)"
                ),
            )),
            Verdict::Flagged(flags) => Err(Denial::new(
                Reason::ToolFlagged,
                format!(
                    "tool `{tool}` of MCP server `{server}` is blocked: its description looks poisoned ({})",
                    flags.join(", ")
                ),
            )),
        })
    }

    /// Takes in pins read from the ledger (approvals by an operator, or other replicas).
    pub fn absorb(&self, pins: &[ToolPin]) {
        let mut known = lock(&self.known);
        for p in pins {
            let k = known.entry((p.server.clone(), p.tool.clone())).or_default();
            k.approved = Some(p.approved_hash.clone());
        }
    }

    /// Re-reads every pin from the ledger.
    pub async fn refresh(&self, gateway: &Gateway) {
        match gateway.ledger.tool_pins().await {
            Ok(pins) => self.absorb(&pins),
            Err(e) => tracing::warn!(error = %e, "could not re-read tool pins from the ledger"),
        }
    }
}

fn verdict(k: &Known, mcp: &Mcp) -> Verdict {
    if mcp.pin_tools && k.approved.is_some() && k.approved != k.current {
        Verdict::Changed
    } else if mcp.block_flagged_descriptions && !k.flags.is_empty() {
        Verdict::Flagged(k.flags.clone())
    } else {
        Verdict::Ok
    }
}
