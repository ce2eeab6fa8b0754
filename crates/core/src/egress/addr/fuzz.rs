//! Fuzzing the address classifier with the spellings an agent can use to hide an address
//! (`0x7f.1`, `017700000001`, `[::ffff:7f00:1]`, NAT64, 6to4…): every spelling of an
//! address must read as that address, and a spelling of a non-public one is refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;

/// Random inputs after the corpus in a `cargo test` run (about 0.3 s each in a debug build);
/// `BOLERO_RANDOM_ITERATIONS` overrides it for a longer campaign (README "Fuzzing").
const RANDOM_INPUTS: usize = 50_000;

/// Addresses an attacker aims at, so random ones land in and around them.
const TARGETS: &[[u8; 4]] = &[
    [127, 0, 0, 1],
    [169, 254, 169, 254],
    [169, 254, 170, 2],
    [100, 100, 100, 200],
    [10, 0, 0, 1],
    [172, 16, 0, 1],
    [192, 168, 0, 1],
    [100, 64, 0, 1],
    [0, 0, 0, 0],
    [255, 255, 255, 255],
    [8, 8, 8, 8],
];

#[derive(Debug, bolero::TypeGenerator)]
struct Spelled {
    /// A target with its low bits flipped by `noise`, or `noise` itself as an address.
    target: Option<u8>,
    noise: u32,
    form: Form,
    /// Per part: decimal, octal or hex, with extra leading zeros; uppercase hex.
    radix: [u8; 4],
    bracket: bool,
    zone: bool,
    trailing_dot: bool,
}

#[derive(Debug, bolero::TypeGenerator)]
enum Form {
    /// `inet_aton` with this many parts (1 to 4).
    Inet(u8),
    /// An IPv6 address carrying the IPv4 one, written in one of several styles.
    Mapped(u8),
    Compatible(u8),
    Nat64(u8),
    SixToFour(u8),
}

impl Spelled {
    fn v4(&self) -> Ipv4Addr {
        match self.target {
            Some(t) => {
                let base = u32::from_be_bytes(TARGETS[usize::from(t) % TARGETS.len()]);
                Ipv4Addr::from_bits(base ^ (self.noise & 0xff_ffff) >> (t % 24))
            }
            None => Ipv4Addr::from_bits(self.noise),
        }
    }

    /// The text, and the address it must read as.
    fn write(&self) -> (String, IpAddr) {
        let v4 = self.v4();
        let bits = u128::from(v4.to_bits());
        let (v6, style) = match self.form {
            Form::Inet(parts) => {
                let mut text = self.inet(v4, usize::from(parts % 4) + 1);
                if self.trailing_dot {
                    text.push('.');
                }
                return (text, IpAddr::V4(v4));
            }
            Form::Mapped(style) => (v4.to_ipv6_mapped(), style),
            Form::Compatible(style) => (Ipv6Addr::from_bits(bits), style),
            Form::Nat64(style) => (Ipv6Addr::from_bits(0x64_ff9b << 96 | bits), style),
            Form::SixToFour(style) => (Ipv6Addr::from_bits(0x2002 << 112 | bits << 80), style),
        };
        let mut text = match style % 4 {
            0 => v6.to_string(),
            1 => join(v6.segments().map(|s| format!("{s:x}"))),
            2 => join(v6.segments().map(|s| format!("{s:04X}"))),
            // The last 32 bits as dotted IPv4, as `::ffff:1.2.3.4` is usually written.
            _ => {
                let [a, b, c, d] = (v6.to_bits() as u32).to_be_bytes();
                let high = join(v6.segments()[..6].iter().map(|s| format!("{s:x}")));
                format!("{high}:{a}.{b}.{c}.{d}")
            }
        };
        if self.zone {
            text.push_str("%25eth0");
        }
        if self.bracket {
            text = format!("[{text}]");
        }
        (text, IpAddr::V6(v6))
    }

    /// `v4` as `parts` numbers, the last filling the bytes the others leave.
    fn inet(&self, v4: Ipv4Addr, parts: usize) -> String {
        let octets = v4.octets();
        let last = octets[parts - 1..]
            .iter()
            .fold(0u32, |acc, &b| acc << 8 | u32::from(b));
        let numbers = octets[..parts - 1].iter().map(|&b| u32::from(b));
        let numbers = numbers.chain([last]).zip(self.radix);
        let written: Vec<String> = numbers.map(|(n, r)| number(n, r)).collect();
        written.join(".")
    }
}

fn join(parts: impl IntoIterator<Item = String>) -> String {
    parts.into_iter().collect::<Vec<_>>().join(":")
}

/// `n` in decimal, octal or hex, as `radix` picks, with up to three extra zeros.
fn number(n: u32, radix: u8) -> String {
    let zeros = "0".repeat(usize::from(radix >> 4) % 4);
    match radix % 4 {
        0 => n.to_string(),
        1 => format!("0{zeros}{n:o}"),
        2 => format!("0x{zeros}{n:x}"),
        _ => format!("0X{zeros}{n:X}"),
    }
}

#[test]
fn every_spelling_reads_as_its_address_and_a_private_one_is_refused() {
    bolero::check!()
        .with_iterations(RANDOM_INPUTS)
        .with_type::<Spelled>()
        .for_each(|s: &Spelled| {
            let (text, ip) = s.write();
            assert_eq!(parse_host(&text), Host::Ip(ip), "{text}");
            let allowed = check(None, ip, &AllowPrivate::default()).is_ok();
            if let Some(class) = classify_v4(s.v4()) {
                assert!(!allowed, "{text} reaches {} ({class})", s.v4());
            }
            if allowed {
                assert!(
                    matches!(
                        s.form,
                        Form::Inet(_) | Form::Mapped(_) | Form::Nat64(_) | Form::SixToFour(_)
                    ),
                    "{text}: IPv4-compatible is never public"
                );
            }
        });
}

/// Corpus: `__fuzz__/egress__addr__fuzz__any_text/corpus`, hosts as agents write them.
/// Any text as a host, and as an `allow_private` entry, reads or is refused: no panic.
#[test]
fn any_text() {
    bolero::check!()
        .with_iterations(RANDOM_INPUTS)
        .for_each(|bytes: &[u8]| {
            let text = String::from_utf8_lossy(bytes);
            if let Host::Ip(ip) = parse_host(&text) {
                let _ = check(Some(&text), ip, &AllowPrivate::default());
            }
            let entries: Vec<String> = text.lines().map(str::to_string).collect();
            if let Ok(allow) = AllowPrivate::parse(&entries) {
                let _ = allow.allows(Some(&text), IpAddr::V4(Ipv4Addr::LOCALHOST));
            }
        });
}
