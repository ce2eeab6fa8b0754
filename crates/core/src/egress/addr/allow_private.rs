//! `egress.allow_private`: the operator's exemptions from [`classify`](super::classify).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{Blocked, Host, classify, in_net, is_host_name, parse_host};

/// `egress.allow_private`: networks and host names exempt from the private-address block.
///
/// A listed name may reach whatever non-public address it resolves to, so list names whose
/// DNS you control. An IPv4-mapped address (`::ffff:10.0.0.1`) is matched as its IPv4 form;
/// other IPv6 wrappings (NAT64, 6to4) are not unwrapped and must be listed as written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowPrivate {
    nets: Vec<Net>,
    names: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Net {
    V4 { net: u32, len: u32 },
    V6 { net: u128, len: u32 },
}

impl Net {
    /// `::ffff:a.b.c.d` and `a.b.c.d` are the same socket, so they meet the same rules.
    fn contains(self, ip: IpAddr) -> bool {
        match self {
            Net::V4 { net, len } => match ip {
                IpAddr::V4(v4) => in_net(v4.to_bits(), net, len, 32),
                IpAddr::V6(v6) => v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| in_net(v4.to_bits(), net, len, 32)),
            },
            Net::V6 { net, len } => {
                let v6 = match ip {
                    IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                    IpAddr::V6(v6) => v6,
                };
                in_net(v6.to_bits(), net, len, 128)
            }
        }
    }
}

impl AllowPrivate {
    /// Reads entries such as `10.1.2.0/24`, `127.0.0.1`, `::1/128`, `[fd00::1]` or
    /// `metadata.internal`. The error names the first bad entry.
    pub fn parse(entries: &[String]) -> Result<AllowPrivate, String> {
        let mut allow = AllowPrivate::default();
        for entry in entries {
            if let Some((addr, len)) = entry.split_once('/') {
                allow.nets.push(parse_net(entry, addr, len)?);
            } else if let Some(ip) = parse_plain_ip(entry) {
                let len = if ip.is_ipv4() { 32 } else { 128 };
                allow.nets.push(net_of(ip, len));
            } else if let Host::Ip(ip) = parse_host(entry) {
                return Err(format!("`{entry}`: write the address as {ip}"));
            } else {
                let name = entry
                    .strip_suffix('.')
                    .unwrap_or(entry)
                    .to_ascii_lowercase();
                if !is_host_name(&name, false) {
                    return Err(format!(
                        "`{entry}` is not an IP address, a CIDR network or a host name"
                    ));
                }
                allow.names.push(name);
            }
        }
        Ok(allow)
    }

    /// Whether a refused `ip` is exempt: it lies in a listed network, or the request named a
    /// listed host (`host_name` is the name the client asked for, before resolution).
    pub fn allows(&self, host_name: Option<&str>, ip: IpAddr) -> bool {
        if self.nets.iter().any(|net| net.contains(ip)) {
            return true;
        }
        host_name.is_some_and(|name| {
            let name = name.strip_suffix('.').unwrap_or(name);
            self.names.iter().any(|n| n.eq_ignore_ascii_case(name))
        })
    }
}

/// An address in its standard spelling, optionally bracketed; no `inet_aton` shortcuts.
fn parse_plain_ip(s: &str) -> Option<IpAddr> {
    match s.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        Some(v6) => v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        None => s.parse().ok(),
    }
}

fn parse_net(entry: &str, addr: &str, len: &str) -> Result<Net, String> {
    let ip =
        parse_plain_ip(addr).ok_or_else(|| format!("`{entry}`: `{addr}` is not an IP address"))?;
    let width = if ip.is_ipv4() { 32 } else { 128 };
    let len = Some(len)
        .filter(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|l| l.parse::<u32>().ok())
        .filter(|&l| l <= width)
        .ok_or_else(|| format!("`{entry}`: the prefix length must be 0 to {width}"))?;
    let base = masked(ip, len);
    if base != ip {
        return Err(format!(
            "`{entry}` has bits set after the prefix; did you mean {base}/{len}?"
        ));
    }
    Ok(net_of(ip, len))
}

fn masked(ip: IpAddr, len: u32) -> IpAddr {
    match ip {
        IpAddr::V4(ip) => {
            let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from_bits(ip.to_bits() & mask))
        }
        IpAddr::V6(ip) => {
            let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from_bits(ip.to_bits() & mask))
        }
    }
}

/// A network as the matcher keeps it: IPv4-mapped IPv6 networks become IPv4 ones.
fn net_of(ip: IpAddr, len: u32) -> Net {
    match ip {
        IpAddr::V4(ip) => Net::V4 {
            net: ip.to_bits(),
            len,
        },
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) if len >= 96 => Net::V4 {
                net: v4.to_bits(),
                len: len - 96,
            },
            _ => Net::V6 {
                net: v6.to_bits(),
                len,
            },
        },
    }
}

/// Refuses a non-public `ip` unless `allow` exempts it. `host_name` is the name the client
/// asked for (`None` when it gave an address).
pub fn check(host_name: Option<&str>, ip: IpAddr, allow: &AllowPrivate) -> Result<(), Blocked> {
    match classify(ip) {
        Some(class) if !allow.allows(host_name, ip) => Err(class),
        _ => Ok(()),
    }
}
