use super::*;

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn policy(allow: &[&str], deny: &[&str]) -> HostPolicy {
    HostPolicy::parse(&strings(allow), &strings(deny)).unwrap()
}

#[test]
fn rules_match_host_globs_and_ports() {
    let table: &[(&str, &str, u16, bool)] = &[
        ("api.github.com:443", "api.github.com", 443, true),
        ("api.github.com:443", "API.GitHub.com.", 443, true),
        ("api.github.com:443", "api.github.com", 80, false),
        ("api.github.com", "api.github.com", 8080, true),
        ("api.github.com", "github.com", 443, false),
        ("*.slack.com", "a.slack.com", 443, true),
        ("*.slack.com", "a.b.slack.com", 443, true),
        ("*.slack.com", "slack.com", 443, false),
        ("*.slack.com", "evilslack.com", 443, false),
        ("*.slack.com", "a.slack.com.evil.com", 443, false),
        ("*.slack.com", "evil.com%00.slack.com", 443, false),
        ("*.slack.com", "evil.com/.slack.com", 443, false),
        ("*.SLACK.com.", "a.slack.com", 443, true),
        ("*", "anything.example", 1, true),
        ("*:443", "anything.example", 443, true),
        ("*:443", "anything.example", 444, false),
        ("[::1]:8443", "[::1]", 8443, true),
        ("[::1]:8443", "::1", 8443, true),
        ("[::1]:8443", "[0:0::1]", 8443, true),
        ("[::1]:8443", "[::1]", 443, false),
        ("[::1]", "[::1]", 1, true),
        ("127.0.0.1", "0x7f.1", 80, true),
        ("127.0.0.1", "2130706433", 80, true),
        ("127.0.0.1", "[::ffff:127.0.0.1]", 80, true),
        ("[::ffff:10.0.0.1]", "10.0.0.1", 80, true),
        ("10.0.0.*", "10.0.0.7", 80, true),
        ("10.0.0.*", "012.0.0.7", 80, true),
        ("10.0.0.*", "10.0.1.7", 80, false),
        ("0x7f.1", "127.0.0.1", 80, true),
        ("pastebin.com", "pastebin.com.", 443, true),
    ];
    for &(rule, host, port, expected) in table {
        let parsed = HostRule::parse(rule).unwrap();
        assert_eq!(
            parsed.matches(host, port),
            expected,
            "{rule} vs {host}:{port}"
        );
    }
}

#[test]
fn bad_rules_are_named() {
    let table = [
        ("https://api.github.com", "without a scheme"),
        ("::1", "bracket IPv6 addresses"),
        ("::1:443", "bracket IPv6 addresses"),
        ("[::1", "`[` without `]`"),
        ("[::1]443", "expected `:port`"),
        ("[nope]:443", "is not an IPv6 address"),
        ("api.github.com:0", "port must be 1 to 65535"),
        ("api.github.com:65536", "port must be 1 to 65535"),
        ("api.github.com:", "port must be 1 to 65535"),
        ("api.github.com:+1", "port must be 1 to 65535"),
        ("api.github.com/v1", "is not a host name"),
        ("", "is not a host name"),
        (":443", "is not a host name"),
        ("a..b", "is not a host name"),
        ("*.slack com", "is not a host glob"),
    ];
    for (rule, message) in table {
        let err = HostRule::parse(rule).unwrap_err();
        assert!(err.contains(&format!("`{rule}`")), "{rule}: {err}");
        assert!(err.contains(message), "{rule}: {err}");
    }
    let err = HostPolicy::parse(&[], &strings(&["ok.com", "bad:x"])).unwrap_err();
    assert!(err.starts_with("egress.deny: `bad:x`"), "{err}");
}

#[test]
fn global_policy_denies_first_and_defaults_to_deny_under_an_allow_list() {
    let listed = policy(
        &["api.github.com:443", "*.slack.com"],
        &["*.pastebin.com", "files.slack.com"],
    );
    let open = policy(&[], &["*.pastebin.com"]);
    let table: &[(&HostPolicy, &str, u16, Result<(), &str>)] = &[
        (&listed, "api.github.com", 443, Ok(())),
        (&listed, "api.github.com", 80, Err("egress.allow")),
        (&listed, "a.slack.com", 443, Ok(())),
        (&listed, "files.slack.com", 443, Err("egress.deny")),
        (&listed, "x.pastebin.com", 443, Err("egress.deny")),
        (&listed, "example.com", 443, Err("egress.allow")),
        (&listed, "bad host", 443, Err("invalid_host")),
        (&open, "example.com", 443, Ok(())),
        (&open, "10.0.0.1", 443, Ok(())), // addresses are addr::check's business
        (&open, "x.pastebin.com", 443, Err("egress.deny")),
        (&open, "X.PASTEBIN.COM.", 443, Err("egress.deny")),
        (&open, "bad host", 443, Err("invalid_host")),
        (&HostPolicy::default(), "example.com", 1, Ok(())),
    ];
    for &(policy, host, port, expected) in table {
        assert_eq!(policy.decide(host, port), expected, "{host}:{port}");
    }
}

/// (global, agent allow, agent deny, host, expected)
type Row<'a> = (
    &'a HostPolicy,
    Option<&'a [String]>,
    &'a [String],
    &'a str,
    Result<(), Refusal>,
);

#[test]
fn agent_lists_narrow_the_global_policy() {
    let global = policy(&["*.github.com", "*.slack.com"], &["gist.github.com"]);
    let open = HostPolicy::default();
    let github = strings(&["api.github.com"]);
    let none: Vec<String> = Vec::new();
    let no_slack = strings(&["*.slack.com"]);
    let bad = strings(&["bad:x"]);
    let table: &[Row] = &[
        (&global, None, &none, "api.github.com", Ok(())),
        (&global, None, &none, "a.slack.com", Ok(())),
        (
            &global,
            None,
            &none,
            "example.com",
            Err(Refusal::GlobalAllow),
        ),
        (&global, Some(&github), &none, "api.github.com", Ok(())),
        (
            &global,
            Some(&github),
            &none,
            "a.slack.com",
            Err(Refusal::AgentAllow),
        ),
        // Both allow lists must admit the host: the global one is checked first.
        (
            &global,
            Some(&github),
            &none,
            "example.com",
            Err(Refusal::GlobalAllow),
        ),
        (
            &global,
            Some(&none),
            &none,
            "api.github.com",
            Err(Refusal::AgentAllow),
        ),
        (
            &global,
            None,
            &no_slack,
            "a.slack.com",
            Err(Refusal::AgentDeny),
        ),
        (&global, None, &no_slack, "api.github.com", Ok(())),
        // Deny lists win over allow lists, the global one named first.
        (
            &global,
            Some(&github),
            &github,
            "api.github.com",
            Err(Refusal::AgentDeny),
        ),
        (
            &global,
            None,
            &none,
            "gist.github.com",
            Err(Refusal::GlobalDeny),
        ),
        (
            &global,
            None,
            &strings(&["gist.github.com"]),
            "gist.github.com",
            Err(Refusal::GlobalDeny),
        ),
        (&open, None, &none, "example.com", Ok(())),
        (
            &open,
            Some(&github),
            &none,
            "example.com",
            Err(Refusal::AgentAllow),
        ),
        (
            &open,
            None,
            &none,
            "evil.com%00.slack.com",
            Err(Refusal::InvalidHost),
        ),
        // Entries config loading should have rejected fail closed.
        (&open, None, &bad, "example.com", Err(Refusal::AgentDeny)),
        (
            &open,
            Some(&bad),
            &none,
            "example.com",
            Err(Refusal::AgentAllow),
        ),
    ];
    for (i, &(global, allow, deny, host, expected)) in table.iter().enumerate() {
        assert_eq!(
            decide_for(global, allow, deny, host, 443),
            expected,
            "row {i}: {host}"
        );
    }
}

#[test]
fn refusals_read_as_sentences() {
    assert_eq!(
        format!("example.com:443 is {}", Refusal::AgentAllow),
        "example.com:443 is not in the agent's allow.hosts"
    );
    assert_eq!(Refusal::GlobalDeny.as_str(), "egress.deny");
}
