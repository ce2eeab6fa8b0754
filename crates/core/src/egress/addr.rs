//! Which addresses the egress proxy refuses to connect to, and how clients spell them.
//!
//! An agent that can reach `127.0.0.1`, the cloud metadata service or the office LAN through
//! the proxy can read what the proxy host can read (SSRF). So every address the proxy is about
//! to connect to goes through [`check`]: [`classify`] names the class of a non-public address,
//! and [`AllowPrivate`] (`egress.allow_private`) exempts the networks and host names an
//! operator has chosen to expose.
//!
//! [`parse_host`] reads the host part of a URL or CONNECT authority the way C resolvers do
//! (`inet_aton`), so `0x7f.1` and `2130706433` are the loopback address they would connect
//! to, not names to look up. A [`Host::Name`] must still be resolved by the gateway and
//! every resulting address checked: a name is only as public as what it resolves to.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

mod allow_private;
pub use allow_private::{AllowPrivate, check};

/// The host part of a URL or CONNECT authority, without the port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    Ip(IpAddr),
    /// ASCII-lowercased, one trailing dot removed. Not validated: resolve it, then [`check`].
    Name(String),
}

/// Reads `host` as an address where any common resolver would, else as a name.
///
/// Accepts `[::1]`, `::1`, zone ids (`fe80::1%25eth0`, dropped), dotted IPv4, and every
/// `inet_aton` form: one to four parts, each decimal, octal (`0177`) or hex (`0x7f`), the last
/// filling the remaining bytes (`127.1`, `0x7f.1`, `2130706433`). A string in that grammar
/// whose parts overflow is not an address, so it is a name (and resolves to nothing).
pub fn parse_host(host: &str) -> Host {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return match parse_ipv6(inner) {
            Some(ip) => Host::Ip(IpAddr::V6(ip)),
            None => Host::Name(host.to_ascii_lowercase()),
        };
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    let ip = if host.contains(':') {
        parse_ipv6(host).map(IpAddr::V6)
    } else {
        parse_inet_aton(host).map(IpAddr::V4)
    };
    match ip {
        Some(ip) => Host::Ip(ip),
        None => Host::Name(host.to_ascii_lowercase()),
    }
}

/// IPv6 text with an optional zone id (`%eth0`, or `%25eth0` as URLs escape it) ignored.
fn parse_ipv6(s: &str) -> Option<Ipv6Addr> {
    let addr = s.split_once('%').map_or(s, |(addr, _zone)| addr);
    addr.parse().ok()
}

fn parse_inet_aton(s: &str) -> Option<Ipv4Addr> {
    let mut parts = [0u64; 4];
    let mut count = 0;
    for part in s.split('.') {
        *parts.get_mut(count)? = parse_inet_part(part)?;
        count += 1;
    }
    let (last, leading) = parts[..count].split_last()?;
    if leading.iter().any(|&p| p > 0xff) {
        return None;
    }
    // The last part fills every byte the leading parts did not.
    let last_bits = 8 * (4 - leading.len() as u32);
    if *last >= 1 << last_bits {
        return None;
    }
    let high = leading.iter().fold(0u64, |acc, &p| acc << 8 | p) << last_bits;
    Some(Ipv4Addr::from_bits((high | last) as u32))
}

fn parse_inet_part(part: &str) -> Option<u64> {
    let (digits, radix) = if let Some(hex) = part.strip_prefix("0x").or(part.strip_prefix("0X")) {
        // A bare `0x` is zero to inet_aton and to browsers alike.
        if hex.is_empty() {
            return Some(0);
        }
        (hex, 16)
    } else if part.len() > 1 && part.starts_with('0') {
        (&part[1..], 8)
    } else {
        (part, 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// Why an address is not public.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Blocked {
    Loopback,
    /// RFC 1918, and the deprecated IPv6 site-local `fec0::/10`.
    Private,
    LinkLocal,
    /// IPv6 `fc00::/7`.
    UniqueLocal,
    /// Carrier-grade NAT, `100.64.0.0/10`.
    SharedAddress,
    Multicast,
    Unspecified,
    Broadcast,
    Documentation,
    /// Everything else not globally routable: `0/8`, `240/4`, `192.0.0/24`, benchmarking,
    /// Teredo and other IETF assignments, IPv6 outside `2000::/3`.
    Reserved,
    /// `169.254.169.254` and kin: credentials for the proxy host's cloud role live there.
    CloudMetadata,
}

impl Blocked {
    /// A short snake_case id for logs and error bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            Blocked::Loopback => "loopback",
            Blocked::Private => "private",
            Blocked::LinkLocal => "link_local",
            Blocked::UniqueLocal => "unique_local",
            Blocked::SharedAddress => "shared_address",
            Blocked::Multicast => "multicast",
            Blocked::Unspecified => "unspecified",
            Blocked::Broadcast => "broadcast",
            Blocked::Documentation => "documentation",
            Blocked::Reserved => "reserved",
            Blocked::CloudMetadata => "cloud_metadata",
        }
    }
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const fn v4(a: u8, b: u8, c: u8, d: u8) -> u32 {
    Ipv4Addr::new(a, b, c, d).to_bits()
}

/// First match wins, so single addresses come before the networks holding them.
#[rustfmt::skip]
const V4_BLOCKED: &[(u32, u32, Blocked)] = &[
    (v4(169, 254, 169, 254), 32, Blocked::CloudMetadata), // AWS, GCP, Azure, OCI, ...
    (v4(169, 254, 170, 2),   32, Blocked::CloudMetadata), // AWS ECS task credentials
    (v4(100, 100, 100, 200), 32, Blocked::CloudMetadata), // Alibaba Cloud
    (v4(0, 0, 0, 0),         32, Blocked::Unspecified),   // connect() reaches this host
    (v4(255, 255, 255, 255), 32, Blocked::Broadcast),
    (v4(0, 0, 0, 0),          8, Blocked::Reserved),      // "this network"
    (v4(10, 0, 0, 0),         8, Blocked::Private),
    (v4(172, 16, 0, 0),      12, Blocked::Private),
    (v4(192, 168, 0, 0),     16, Blocked::Private),
    (v4(100, 64, 0, 0),      10, Blocked::SharedAddress),
    (v4(127, 0, 0, 0),        8, Blocked::Loopback),
    (v4(169, 254, 0, 0),     16, Blocked::LinkLocal),
    (v4(192, 0, 0, 0),       24, Blocked::Reserved),      // IETF protocol assignments
    (v4(192, 0, 2, 0),       24, Blocked::Documentation),
    (v4(198, 51, 100, 0),    24, Blocked::Documentation),
    (v4(203, 0, 113, 0),     24, Blocked::Documentation),
    (v4(192, 88, 99, 0),     24, Blocked::Reserved),      // deprecated 6to4 relay anycast
    (v4(198, 18, 0, 0),      15, Blocked::Reserved),      // benchmarking
    (v4(224, 0, 0, 0),        4, Blocked::Multicast),
    (v4(240, 0, 0, 0),        4, Blocked::Reserved),
];

/// IPv6 networks are `u128` literals, one `_`-separated group per hextet.
#[rustfmt::skip]
const V6_BLOCKED: &[(u128, u32, Blocked)] = &[
    (0xfd00_0ec2_0000_0000_0000_0000_0000_0254, 128, Blocked::CloudMetadata), // AWS
    (0xfc00_0000_0000_0000_0000_0000_0000_0000,   7, Blocked::UniqueLocal),
    (0xfe80_0000_0000_0000_0000_0000_0000_0000,  10, Blocked::LinkLocal),
    (0xfec0_0000_0000_0000_0000_0000_0000_0000,  10, Blocked::Private), // site-local
    (0xff00_0000_0000_0000_0000_0000_0000_0000,   8, Blocked::Multicast),
    (0x2001_0db8_0000_0000_0000_0000_0000_0000,  32, Blocked::Documentation),
    (0x3fff_0000_0000_0000_0000_0000_0000_0000,  20, Blocked::Documentation),
    // IETF protocol assignments, Teredo (2001::/32) among them: its embedded addresses are
    // obfuscated and its relays reach anywhere, so it is refused outright.
    (0x2001_0000_0000_0000_0000_0000_0000_0000,  23, Blocked::Reserved),
];

const NAT64: u128 = 0x0064_ff9b_0000_0000_0000_0000_0000_0000; // /96
const NAT64_LOCAL: u128 = 0x0064_ff9b_0001_0000_0000_0000_0000_0000; // /48
const SIX_TO_FOUR: u128 = 0x2002_0000_0000_0000_0000_0000_0000_0000; // /16
const GLOBAL_UNICAST: u128 = 0x2000_0000_0000_0000_0000_0000_0000_0000; // /3

fn in_net<T>(addr: T, net: T, len: u32, width: u32) -> bool
where
    T: Copy + std::ops::BitXor<Output = T> + std::ops::Shr<u32, Output = T> + PartialEq + From<u8>,
{
    len == 0 || (addr ^ net) >> (width - len) == T::from(0)
}

/// The class of a non-public address; `None` for a public one.
///
/// IPv6 forms that carry an IPv4 address (mapped, compatible, NAT64, 6to4) are judged by the
/// IPv4 address inside, since that is where the packets end up.
pub fn classify(ip: IpAddr) -> Option<Blocked> {
    match ip {
        IpAddr::V4(ip) => classify_v4(ip),
        IpAddr::V6(ip) => classify_v6(ip),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Blocked> {
    let bits = ip.to_bits();
    V4_BLOCKED
        .iter()
        .find(|&&(net, len, _)| in_net(bits, net, len, 32))
        .map(|&(_, _, class)| class)
}

fn classify_v6(ip: Ipv6Addr) -> Option<Blocked> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let bits = ip.to_bits();
    let low32 = Ipv4Addr::from_bits(bits as u32);
    match bits {
        0 => return Some(Blocked::Unspecified),
        1 => return Some(Blocked::Loopback),
        // IPv4-compatible (`::a.b.c.d`), deprecated: nothing public is reached this way.
        _ if in_net(bits, 0, 96, 128) => {
            return Some(classify_v4(low32).unwrap_or(Blocked::Reserved));
        }
        _ if in_net(bits, NAT64, 96, 128) => return classify_v4(low32),
        // Local-use NAT64 (RFC 8215) may embed at any RFC 6052 length that fits; refuse if
        // any reading lands somewhere non-public. Readings in 0.0.0.0/8 are what zero padding
        // looks like, and translators do not forward there, so they count only if all agree.
        _ if in_net(bits, NAT64_LOCAL, 48, 128) => {
            let readings = [96, 64, 56, 48].map(|len| rfc6052_embedded(bits, len));
            let padding = |v4: &Ipv4Addr| v4.octets()[0] == 0;
            if readings.iter().all(padding) {
                return classify_v4(readings[0]);
            }
            return readings
                .into_iter()
                .filter(|v4| !padding(v4))
                .find_map(classify_v4);
        }
        _ => {}
    }
    if let Some(&(_, _, class)) = V6_BLOCKED
        .iter()
        .find(|&&(net, len, _)| in_net(bits, net, len, 128))
    {
        return Some(class);
    }
    if in_net(bits, SIX_TO_FOUR, 16, 128) {
        return classify_v4(Ipv4Addr::from_bits((bits >> 80) as u32));
    }
    if !in_net(bits, GLOBAL_UNICAST, 3, 128) {
        return Some(Blocked::Reserved);
    }
    None
}

/// The IPv4 address RFC 6052 embeds after a `prefix_len` NAT64 prefix, skipping bits 64..72.
fn rfc6052_embedded(bits: u128, prefix_len: u32) -> Ipv4Addr {
    // Squeeze out the reserved octet, leaving 120 meaningful bits.
    let squeezed = (bits >> 64) << 56 | (bits & ((1 << 56) - 1));
    let start = match prefix_len {
        64 => 64,
        96 => 88,
        len => len,
    };
    Ipv4Addr::from_bits((squeezed >> (120 - start - 32)) as u32)
}

/// A DNS name of letters, digits, `-` and `_` (and with `glob`, `*` and `?`), lowercase,
/// without empty labels. Hosts outside this grammar match no rule, so tricks like
/// `evil.com%00.slack.com` cannot satisfy a `*.slack.com` allow rule.
pub(super) fn is_host_name(name: &str, glob: bool) -> bool {
    let char_ok = |c: char| {
        c.is_ascii_lowercase()
            || c.is_ascii_digit()
            || c == '-'
            || c == '_'
            || glob && (c == '*' || c == '?')
    };
    !name.is_empty()
        && name.len() <= 253
        && name
            .split('.')
            .all(|label| !label.is_empty() && label.chars().all(char_ok))
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
