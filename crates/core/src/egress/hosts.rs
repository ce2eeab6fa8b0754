//! Which hosts agents may reach through the egress proxy: `egress.allow` and `egress.deny`
//! for everyone, then each agent's own `allow.hosts` and `deny.hosts`.
//!
//! A rule is a host glob with an optional port: `api.github.com:443`, `*.slack.com`,
//! `[::1]:8443`. `*` matches any run of characters, dots included, so `*.slack.com` matches
//! `a.slack.com` and `a.b.slack.com` but not `slack.com` itself (list both to allow both).
//! Hosts are compared in one spelling: lowercase, no trailing dot, addresses written the
//! standard way (`0x7f.1` is `127.0.0.1`, `[::ffff:10.0.0.1]` is `10.0.0.1`), so a deny rule
//! cannot be sidestepped by spelling the same host differently.

use std::fmt;
use std::net::IpAddr;

use super::addr::{Host, is_host_name, parse_host};
use crate::glob;

/// One `host[:port]` entry of an allow or deny list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRule {
    /// In the compared spelling; see the module doc.
    host_glob: String,
    /// `None` matches every port.
    port: Option<u16>,
}

impl HostRule {
    /// Reads `api.github.com:443`, `*.slack.com`, `[::1]:8443`, `10.0.0.*`. IPv6 addresses
    /// must be bracketed; a URL is not a rule.
    pub fn parse(s: &str) -> Result<HostRule, String> {
        if s.contains("://") {
            return Err(format!("`{s}`: write the host without a scheme"));
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (v6, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("`{s}`: `[` without `]`"))?;
            let ip: std::net::Ipv6Addr = v6
                .parse()
                .map_err(|_| format!("`{s}`: `{v6}` is not an IPv6 address"))?;
            let port = match after {
                "" => None,
                _ => Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| format!("`{s}`: expected `:port` after `]`"))?,
                ),
            };
            (canonical_ip(IpAddr::V6(ip)), port)
        } else {
            let (host, port) = match s.rsplit_once(':') {
                Some((host, _)) if host.contains(':') => {
                    return Err(format!("`{s}`: bracket IPv6 addresses, as in `[::1]:443`"));
                }
                Some((host, port)) => (host, Some(port)),
                None => (s, None),
            };
            (canonical_rule_host(s, host)?, port)
        };
        let port = port.map(|p| parse_port(s, p)).transpose()?;
        Ok(HostRule {
            host_glob: host,
            port,
        })
    }

    /// Whether a request for `host` (as the client wrote it, without the port; IPv6 with or
    /// without brackets) on `port` falls under this rule. Malformed hosts match nothing.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        canonical_host(host).is_some_and(|host| self.matches_canonical(&host, port))
    }

    fn matches_canonical(&self, host: &str, port: u16) -> bool {
        self.port.is_none_or(|p| p == port) && glob::matches(&self.host_glob, host)
    }
}

fn canonical_rule_host(rule: &str, host: &str) -> Result<String, String> {
    let lower = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if lower.contains(['*', '?']) {
        return match is_host_name(&lower, true) {
            true => Ok(lower),
            false => Err(format!("`{rule}`: `{host}` is not a host glob")),
        };
    }
    canonical_host(&lower).ok_or_else(|| format!("`{rule}`: `{host}` is not a host name"))
}

fn parse_port(rule: &str, port: &str) -> Result<u16, String> {
    Some(port)
        .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|p| p.parse::<u16>().ok())
        .filter(|&p| p != 0)
        .ok_or_else(|| format!("`{rule}`: the port must be 1 to 65535"))
}

/// The spelling rules are compared in, or `None` for something that is no host at all.
fn canonical_host(host: &str) -> Option<String> {
    match parse_host(host) {
        Host::Ip(ip) => Some(canonical_ip(ip)),
        Host::Name(name) => is_host_name(&name, false).then_some(name),
    }
}

fn canonical_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4).to_string(),
        IpAddr::V4(_) => ip.to_string(),
    }
}

/// `egress.allow` and `egress.deny`. Deny wins; a non-empty allow list admits only the hosts
/// it names; an empty one admits every host (the private-address check still applies).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostPolicy {
    allow: Vec<HostRule>,
    deny: Vec<HostRule>,
}

impl HostPolicy {
    /// The error names the list and the bad entry.
    pub fn parse(allow: &[String], deny: &[String]) -> Result<HostPolicy, String> {
        let rules = |list: &[String], name: &str| {
            list.iter()
                .map(|s| HostRule::parse(s).map_err(|e| format!("egress.{name}: {e}")))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(HostPolicy {
            allow: rules(allow, "allow")?,
            deny: rules(deny, "deny")?,
        })
    }

    /// The global decision alone; the error is [`Refusal::as_str`] of the refusing list.
    pub fn decide(&self, host: &str, port: u16) -> Result<(), &'static str> {
        decide_for(self, None, &[], host, port).map_err(Refusal::as_str)
    }
}

/// Why a host was refused: the list that refused it, named as in the config file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// Not a DNS name or an IP address, so no rule can speak for it.
    InvalidHost,
    GlobalDeny,
    AgentDeny,
    GlobalAllow,
    AgentAllow,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::InvalidHost => "invalid_host",
            Refusal::GlobalDeny => "egress.deny",
            Refusal::AgentDeny => "deny.hosts",
            Refusal::GlobalAllow => "egress.allow",
            Refusal::AgentAllow => "allow.hosts",
        }
    }
}

/// Completes "`host:port` is …" in an error message.
impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::InvalidHost => "not a valid host name",
            Refusal::GlobalDeny => "refused by egress.deny",
            Refusal::AgentDeny => "refused by the agent's deny.hosts",
            Refusal::GlobalAllow => "not in egress.allow",
            Refusal::AgentAllow => "not in the agent's allow.hosts",
        })
    }
}

/// The global policy, then the agent's lists: `agent_allow` `None` adds no restriction,
/// `Some([])` allows no host. Deny lists are consulted first, so a refusal names a deny
/// rule whenever one matched.
///
/// The agent's entries are parsed here; config loading should have rejected bad ones with
/// [`HostRule::parse`], but should one slip through it fails closed: a bad deny entry refuses
/// every host, a bad allow entry admits none.
pub fn decide_for(
    global: &HostPolicy,
    agent_allow: Option<&[String]>,
    agent_deny: &[String],
    host: &str,
    port: u16,
) -> Result<(), Refusal> {
    let host = canonical_host(host).ok_or(Refusal::InvalidHost)?;
    let hit = |rule: &HostRule| rule.matches_canonical(&host, port);
    let raw_hit = |raw: &String, if_bad: bool| HostRule::parse(raw).map_or(if_bad, |r| hit(&r));
    if global.deny.iter().any(hit) {
        return Err(Refusal::GlobalDeny);
    }
    if agent_deny.iter().any(|raw| raw_hit(raw, true)) {
        return Err(Refusal::AgentDeny);
    }
    if !global.allow.is_empty() && !global.allow.iter().any(hit) {
        return Err(Refusal::GlobalAllow);
    }
    if agent_allow.is_some_and(|list| !list.iter().any(|raw| raw_hit(raw, false))) {
        return Err(Refusal::AgentAllow);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
