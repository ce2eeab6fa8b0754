use super::*;
use Blocked::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// What the proxy would decide for `host` with nothing exempt: the class refused, or `None`.
fn verdict(host: &str) -> Result<Option<Blocked>, String> {
    match parse_host(host) {
        Host::Ip(ip) => Ok(classify(ip)),
        Host::Name(name) => Err(name),
    }
}

#[test]
fn every_spelling_of_a_non_public_address_is_refused_with_its_class() {
    let table: &[(&str, Blocked)] = &[
        ("0.0.0.0", Unspecified),
        ("0", Unspecified),
        ("0x", Unspecified),
        ("0.1.2.3", Reserved),
        ("127.0.0.1", Loopback),
        ("127.1", Loopback),
        ("127.0.1", Loopback),
        ("127.0.0.1.", Loopback),
        ("127.255.255.254", Loopback),
        ("2130706433", Loopback),
        ("0x7f000001", Loopback),
        ("0X7F000001", Loopback),
        ("0x7f.1", Loopback),
        ("0x7f.0.0.0x1", Loopback),
        ("0177.0.0.1", Loopback),
        ("0177.1", Loopback),
        ("017700000001", Loopback),
        ("00000000177.0.0.1", Loopback),
        ("[::1]", Loopback),
        ("::1", Loopback),
        ("[0:0:0:0:0:0:0:1]", Loopback),
        ("[::ffff:127.0.0.1]", Loopback),
        ("[::ffff:7f00:1]", Loopback),
        ("::ffff:7f00:1", Loopback),
        ("[::127.0.0.1]", Loopback),
        ("[64:ff9b::7f00:1]", Loopback),
        ("[64:ff9b::127.0.0.1]", Loopback),
        ("[64:ff9b:1::7f00:1]", Loopback),
        ("[64:ff9b:1:7f00:0:100::]", Loopback), // RFC 6052 /48 layout
        ("[2002:7f00:1::]", Loopback),
        ("169.254.169.254", CloudMetadata),
        ("0xa9fea9fe", CloudMetadata),
        ("2852039166", CloudMetadata),
        ("0251.0376.0251.0376", CloudMetadata),
        ("169.254.43518", CloudMetadata),
        ("[::ffff:169.254.169.254]", CloudMetadata),
        ("[64:ff9b::a9fe:a9fe]", CloudMetadata),
        ("[2002:a9fe:a9fe::]", CloudMetadata),
        ("[fd00:ec2::254]", CloudMetadata),
        ("169.254.170.2", CloudMetadata),
        ("100.100.100.200", CloudMetadata),
        ("169.254.0.1", LinkLocal),
        ("10.0.0.1", Private),
        ("10.255.255.255", Private),
        ("012.1", Private),
        ("167772161", Private),
        ("172.16.0.1", Private),
        ("172.31.255.255", Private),
        ("192.168.1.1", Private),
        ("[::ffff:192.168.1.1]", Private),
        ("[::ffff:c0a8:101]", Private),
        ("[::10.0.0.1]", Private),
        ("[64:ff9b::10.0.0.1]", Private),
        ("[2002:a00:1::1]", Private),
        ("100.64.0.1", SharedAddress),
        ("100.127.255.254", SharedAddress),
        ("[fc00::1]", UniqueLocal),
        ("[fd12:3456::1]", UniqueLocal),
        ("[fe80::1]", LinkLocal),
        ("[fe80::1%25eth0]", LinkLocal),
        ("fe80::1%eth0", LinkLocal),
        ("[FE80::1]", LinkLocal),
        ("[febf::1]", LinkLocal),
        ("224.0.0.1", Multicast),
        ("239.255.255.250", Multicast),
        ("[ff02::1]", Multicast),
        ("[ff05::1:3]", Multicast),
        ("255.255.255.255", Broadcast),
        ("4294967295", Broadcast),
        ("240.0.0.1", Reserved),
        ("192.0.0.1", Reserved),
        ("198.18.0.1", Reserved),
        ("198.19.255.255", Reserved),
        ("192.88.99.1", Reserved),
        ("192.0.2.1", Documentation),
        ("198.51.100.7", Documentation),
        ("203.0.113.9", Documentation),
        ("[2001:db8::1]", Documentation),
        ("[3fff::1]", Documentation),
        ("[::]", Unspecified),
        ("[fec0::1]", Private),
        ("[2001::1]", Reserved),
        ("[2001:0:4136:e378:8000:63bf:3fff:fdd2]", Reserved), // Teredo
        ("[2001:2::1]", Reserved),                            // benchmarking
        ("[100::1]", Reserved),                               // discard
        ("[::8.8.8.8]", Reserved), // IPv4-compatible is deprecated even for public addresses
        ("[5f00::1]", Reserved),   // SRv6, outside 2000::/3
        ("[4000::1]", Reserved),
    ];
    assert!(table.len() >= 60);
    for &(host, class) in table {
        assert_eq!(verdict(host), Ok(Some(class)), "{host}");
    }
}

#[test]
fn public_addresses_pass_in_every_spelling() {
    for host in [
        "8.8.8.8",
        "1.1.1.1",
        "134744072", // 8.8.8.8
        "0x8.0x8.0x8.0x8",
        "[2606:4700::1111]",
        "93.184.216.34",
        "172.32.0.1",
        "172.15.255.255",
        "100.128.0.1",
        "100.63.255.255",
        "11.0.0.1",
        "9.255.255.255",
        "198.20.0.1",
        "223.255.255.255",
        "[2a00:1450::1]",
        "[::ffff:8.8.8.8]",
        "[64:ff9b::808:808]",
        "[2002:808:808::1]",
        "[2001:200::1]",
    ] {
        assert_eq!(verdict(host), Ok(None), "{host}");
    }
}

#[test]
fn anything_outside_the_address_grammars_is_a_name() {
    let table = [
        ("localhost", "localhost"),
        ("LOCALHOST.", "localhost"),
        ("api.openai.com.", "api.openai.com"),
        ("Api.OpenAI.com", "api.openai.com"),
        ("0x7f.example", "0x7f.example"),
        ("1.2.3.a", "1.2.3.a"),
        ("08.0.0.1", "08.0.0.1"),         // 8 is no octal digit
        ("0x1g", "0x1g"),                 // g is no hex digit
        ("256.0.0.1", "256.0.0.1"),       // a leading part over 255
        ("1.2.3.256", "1.2.3.256"),       // the last part overflows its byte
        ("127.16777216", "127.16777216"), // ... its three bytes
        ("4294967296", "4294967296"),     // 2^32
        ("1.2.3.4.5", "1.2.3.4.5"),
        ("127..1", "127..1"),
        ("127.0.0.1..", "127.0.0.1."),
        ("+1", "+1"),
        ("", ""),
        ("[not-v6]", "[not-v6]"),
        ("[127.0.0.1]", "[127.0.0.1]"),
        ("1:2", "1:2"),
    ];
    for (host, name) in table {
        assert_eq!(verdict(host), Err(name.to_string()), "{host}");
    }
}

#[test]
fn nat64_local_use_is_refused_if_any_embedding_is_private() {
    // 10.0.0.1 embedded at /56: bits 56..64 = 0x0a, then 72..96 = 00 00 01.
    assert_eq!(classify(ip("64:ff9b:1:a:0:1::")), Some(Private));
    // 10.0.0.1 embedded at /64.
    assert_eq!(classify(ip("64:ff9b:1:0:a:0:100::")), Some(Private));
    // Public under every reading.
    assert_eq!(classify(ip("64:ff9b:1:808:8:808:0:808")), None);
}

#[test]
fn class_ids_are_snake_case() {
    assert_eq!(CloudMetadata.as_str(), "cloud_metadata");
    assert_eq!(SharedAddress.to_string(), "shared_address");
    assert_eq!(LinkLocal.as_str(), "link_local");
}

fn allow(entries: &[&str]) -> AllowPrivate {
    let entries: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
    AllowPrivate::parse(&entries).unwrap()
}

#[test]
fn allow_private_exempts_listed_networks_and_names_only() {
    let a = allow(&[
        "10.1.2.0/24",
        "127.0.0.1",
        "::1/128",
        "[fd00::5]",
        "fd12::/16",
        "Metadata.Internal.",
    ]);
    let table: &[(Option<&str>, &str, bool)] = &[
        (None, "10.1.2.3", true),
        (None, "10.1.2.255", true),
        (None, "10.1.3.1", false),
        (None, "::ffff:10.1.2.3", true), // mapped meets the IPv4 network
        (None, "64:ff9b::a01:203", false), // NAT64 is not unwrapped
        (None, "127.0.0.1", true),
        (None, "::ffff:127.0.0.1", true),
        (None, "127.0.0.2", false),
        (None, "::1", true),
        (None, "::2", false),
        (None, "fd00::5", true),
        (None, "fd00::6", false),
        (None, "fd12:ffff::1", true),
        (None, "169.254.169.254", false),
        (Some("metadata.internal"), "169.254.169.254", true),
        (Some("METADATA.internal."), "10.9.9.9", true),
        (Some("other.internal"), "10.9.9.9", false),
        (Some("metadata.internal.evil.com"), "10.9.9.9", false),
    ];
    for &(name, addr, allowed) in table {
        assert_eq!(a.allows(name, ip(addr)), allowed, "{name:?} {addr}");
    }
}

#[test]
fn mapped_networks_cover_ipv4_and_everything_covers_everything() {
    let a = allow(&["::ffff:10.0.0.0/104"]);
    assert!(a.allows(None, ip("10.200.0.1")));
    assert!(!a.allows(None, ip("11.0.0.1")));
    let all = allow(&["0.0.0.0/0", "::/0"]);
    for addr in ["127.0.0.1", "::1", "::ffff:10.0.0.1", "fe80::1"] {
        assert!(all.allows(None, ip(addr)), "{addr}");
    }
    assert!(!AllowPrivate::default().allows(Some("localhost"), ip("127.0.0.1")));
}

#[test]
fn check_refuses_unless_exempt() {
    let a = allow(&["192.168.0.0/16", "printer.lan"]);
    assert_eq!(check(None, ip("8.8.8.8"), &a), Ok(()));
    assert_eq!(check(None, ip("192.168.7.7"), &a), Ok(()));
    assert_eq!(check(None, ip("10.0.0.1"), &a), Err(Private));
    assert_eq!(check(Some("printer.lan"), ip("10.0.0.1"), &a), Ok(()));
    assert_eq!(
        check(Some("evil.com"), ip("169.254.169.254"), &a),
        Err(CloudMetadata)
    );
}

#[test]
fn bad_allow_private_entries_are_named() {
    let table = [
        ("10.0.0.0/33", "prefix length must be 0 to 32"),
        ("::/129", "prefix length must be 0 to 128"),
        ("10.0.0.0/", "prefix length"),
        ("10.0.0.0/+8", "prefix length"),
        ("10.0.0.0/x", "prefix length"),
        ("10.1.2.3/24", "did you mean 10.1.2.0/24?"),
        ("fd00::1/8", "did you mean fd00::/8?"),
        ("10.0.0/8", "is not an IP address"),
        ("127.1", "write the address as 127.0.0.1"),
        ("0x7f000001", "write the address as 127.0.0.1"),
        ("fe80::1%eth0", "write the address as fe80::1"),
        (
            "*.internal",
            "is not an IP address, a CIDR network or a host name",
        ),
        ("", "is not an IP address"),
        ("a..b", "is not an IP address"),
        (" 10.0.0.1", "is not an IP address"),
    ];
    for (entry, message) in table {
        let entries = vec!["10.0.0.0/8".to_string(), entry.to_string()];
        let err = AllowPrivate::parse(&entries).unwrap_err();
        assert!(err.contains(&format!("`{entry}`")), "{entry}: {err}");
        assert!(err.contains(message), "{entry}: {err}");
    }
}

#[test]
fn rfc6052_embeddings_match_the_rfc_examples() {
    // RFC 6052 section 2.4: 192.0.2.33 behind 2001:db8:122:344::/len.
    let table = [
        (32, "2001:db8:c000:221::"),
        (40, "2001:db8:1c0:2:21::"),
        (48, "2001:db8:122:c000:2:2100::"),
        (56, "2001:db8:122:3c0:0:221::"),
        (64, "2001:db8:122:344:c0:2:2100:0"),
        (96, "2001:db8:122:344::192.0.2.33"),
    ];
    for (len, addr) in table {
        let IpAddr::V6(v6) = ip(addr) else {
            unreachable!()
        };
        assert_eq!(
            rfc6052_embedded(v6.to_bits(), len),
            Ipv4Addr::new(192, 0, 2, 33),
            "/{len}"
        );
    }
}
