//! The `egress` section: which hosts the egress proxy lets agents reach.

use std::collections::BTreeMap;

use super::ConfigError;
use super::raw::{RawEgress, RawIntercept};
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
    /// Hosts whose TLS the proxy ends, by host in the compared spelling (lowercase, no
    /// trailing dot): their requests go through the LLM pipeline to a configured provider.
    pub intercept: BTreeMap<String, Intercept>,
    /// The CA that signs the intercepted hosts' certificates: files, made at first start
    /// when missing. Set whenever `intercept` is not empty.
    pub ca: Option<CaFiles>,
}

/// Where an intercepted host's requests go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Intercept {
    /// A provider from `providers`: its `base_url` and `api_key` are used.
    pub provider: String,
    /// Send the agent's own `Authorization`/`x-api-key` instead of the provider's key.
    pub pass_credentials: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaFiles {
    pub cert: String,
    pub key: String,
}

/// The CA files when `egress.ca` does not name them, in the working directory.
pub const DEFAULT_CA: (&str, &str) = ("airlock-ca.pem", "airlock-ca.key");

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
    let mut intercept = BTreeMap::new();
    for (host, rule) in &raw.intercept {
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        if name.is_empty() || name.contains(['/', ':', '*', ' ']) {
            return Err(ConfigError::about(
                text,
                host,
                format!("egress.intercept: `{host}` must be a host name (no scheme, port or glob)"),
            ));
        }
        let (provider, pass_credentials) = match rule {
            RawIntercept::Provider(p) => (p.clone(), false),
            RawIntercept::Detailed {
                provider,
                pass_credentials,
            } => (provider.clone(), *pass_credentials),
        };
        intercept.insert(
            name,
            Intercept {
                provider,
                pass_credentials,
            },
        );
    }
    let ca = match &raw.ca {
        Some(ca) => Some(CaFiles {
            cert: ca.cert.clone(),
            key: ca.key.clone(),
        }),
        None if !intercept.is_empty() => Some(CaFiles {
            cert: DEFAULT_CA.0.to_owned(),
            key: DEFAULT_CA.1.to_owned(),
        }),
        None => None,
    };
    Ok(Egress {
        hosts,
        allow_private,
        ai_hosts,
        intercept,
        ca,
    })
}
