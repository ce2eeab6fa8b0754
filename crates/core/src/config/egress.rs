//! The `egress` section: which hosts the egress proxy lets agents reach.

use super::ConfigError;
use super::raw::RawEgress;
use crate::egress::addr::AllowPrivate;
use crate::egress::catalogue::AiHosts;
use crate::egress::hosts::HostPolicy;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Egress {
    /// `egress.allow` and `egress.deny`.
    pub hosts: HostPolicy,
    /// Private addresses (CIDRs) and host names exempt from the private-address block.
    pub allow_private: AllowPrivate,
    /// The AI provider hosts whose traffic is recorded as LLM calls.
    pub ai_hosts: AiHosts,
}

pub(super) fn normalise(raw: Option<&RawEgress>, text: &str) -> Result<Egress, ConfigError> {
    let Some(raw) = raw else {
        return Ok(Egress::default());
    };
    let hosts = HostPolicy::parse(&raw.allow, &raw.deny)
        .map_err(|e| ConfigError::about(text, "allow:", e))?;
    let allow_private = AllowPrivate::parse(&raw.allow_private).map_err(|e| {
        ConfigError::about(text, "allow_private:", format!("egress.allow_private: {e}"))
    })?;
    let ai_hosts =
        AiHosts::new(&raw.ai_hosts).map_err(|e| ConfigError::about(text, "ai_hosts:", e))?;
    Ok(Egress {
        hosts,
        allow_private,
        ai_hosts,
    })
}
