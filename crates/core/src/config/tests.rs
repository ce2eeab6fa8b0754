use super::*;

fn env(name: &str) -> Option<String> {
    match name {
        "OPENAI_API_KEY" => Some("sk-test-openai".into()),
        "ANTHROPIC_API_KEY" => Some("sk-ant-test".into()),
        "GITHUB_TOKEN" | "PLANNER_TOKEN" | "SLACK_HOOK_PATH" => Some("x".into()),
        _ => None,
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn the_example_config_is_accepted() {
    let text = include_str!("../../../../examples/airlock.example.yaml");
    let c = Config::parse(text, &env).unwrap();
    assert_eq!(c.listen.gateway.port(), 4000);
    assert_eq!(c.limits.max_body, 10 << 20);
    assert_eq!(
        c.providers["openai"].api_key.as_ref().unwrap().expose(),
        "sk-test-openai"
    );
    assert!(
        c.providers["local"].api_key.is_none(),
        "`none` means no credential"
    );
    let targets = c.resolve_model("gpt-4o-mini").unwrap();
    assert_eq!(
        targets.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
        ["openai/gpt-4o-mini", "local/qwen2.5-7b"]
    );
    assert_eq!(c.prices.lookup("local", "qwen2.5-7b").unwrap().output, 0);
    assert_eq!(
        c.prices
            .lookup("openai", "gpt-4o-mini")
            .unwrap()
            .cached_input,
        75_000_000
    );
    let bot = c.agent("support-bot").unwrap();
    assert_eq!(
        bot.allow.models.as_deref(),
        Some(&["gpt-4o-mini".to_string()][..])
    );
    assert!(bot.keys[0].matches(&KeyDigest::of("al-example-support-bot-key")));
}

#[test]
fn secrets_never_print() {
    let c = Config::parse(
        include_str!("../../../../examples/airlock.example.yaml"),
        &env,
    )
    .unwrap();
    let debug = format!("{c:?}");
    assert!(!debug.contains("sk-test-openai"), "{debug}");
}

#[test]
fn missing_env_names_variable_and_line() {
    let err = Config::parse(
        include_str!("../../../../examples/airlock.example.yaml"),
        &no_env,
    )
    .unwrap_err();
    assert!(err.message.contains("OPENAI_API_KEY"), "{err}");
    let line = include_str!("../../../../examples/airlock.example.yaml")
        .lines()
        .position(|l| l.contains("${OPENAI_API_KEY}"))
        .map(|i| i + 1);
    assert_eq!(err.line, line);
}

#[test]
fn unknown_keys_are_rejected_with_their_line() {
    let err = Config::parse(
        "listen:\n  gateway: 127.0.0.1:4000\nlimits:\n  max_bdy: 1MiB\n",
        &no_env,
    )
    .unwrap_err();
    assert!(err.message.contains("max_bdy"), "{err}");
    assert_eq!(err.line, Some(4), "{err}");
}

#[test]
fn bad_values_are_rejected_with_their_line() {
    let err = Config::parse("limits:\n  upstream_timeout: soon\n", &no_env).unwrap_err();
    assert!(err.message.contains("duration"), "{err}");
    assert_eq!(err.line, Some(2), "{err}");
    let err = Config::parse(
        "providers:\n  p:\n    kind: openia\n    base_url: http://x\n",
        &no_env,
    )
    .unwrap_err();
    assert!(err.message.contains("openia"), "{err}");
    assert_eq!(err.line, Some(3), "{err}");
}

#[test]
fn targets_must_name_configured_providers() {
    let yaml = "providers:\n  a:\n    kind: openai\n    base_url: http://127.0.0.1:1/v1\nmodels:\n  m:\n    targets: [b/x]\n";
    let err = Config::parse(yaml, &no_env).unwrap_err();
    assert!(err.message.contains("b/x"), "{err}");
    assert_eq!(err.line, Some(7));
}

#[test]
fn default_routing_applies_only_without_a_models_section() {
    let c = Config::builtin(&env);
    assert_eq!(
        c.resolve_model("gpt-4o").unwrap()[0].to_string(),
        "openai/gpt-4o"
    );
    assert_eq!(c.resolve_model("o3-mini").unwrap()[0].provider, "openai");
    assert_eq!(
        c.resolve_model("text-embedding-3-small").unwrap()[0].provider,
        "openai"
    );
    assert_eq!(
        c.resolve_model("claude-sonnet-4-5").unwrap()[0].provider,
        "anthropic"
    );
    assert_eq!(
        c.resolve_model("anthropic/claude-x").unwrap()[0].model,
        "claude-x"
    );
    assert!(c.resolve_model("llama-3").is_none());
    assert!(c.resolve_model("other/llama-3").is_none());
    assert_eq!(c.agents[0].id, DEFAULT_AGENT);
    let dlp = c.agents[0]
        .guards
        .dlp
        .as_ref()
        .expect("the default config watches content");
    assert_eq!(
        dlp.action("aws_access_key"),
        crate::config::policy::DlpAction::Monitor,
        "and only records what it sees"
    );
    let without = Config::builtin(&no_env);
    assert!(without.providers.is_empty());
    assert!(without.resolve_model("gpt-4o").is_none());

    let text = include_str!("../../../../examples/airlock.example.yaml");
    let c = Config::parse(text, &env).unwrap();
    assert!(
        c.resolve_model("gpt-4o").is_none(),
        "a models section turns name defaults off"
    );
    assert_eq!(c.resolve_model("openai/gpt-4o").unwrap()[0].model, "gpt-4o");
}

#[test]
fn duplicate_agents_and_shared_keys_are_rejected() {
    let k = KeyDigest::of("k");
    let yaml = format!("agents:\n  - id: a\n    keys: [\"{k}\"]\n  - id: b\n    keys: [\"{k}\"]\n");
    assert!(
        Config::parse(&yaml, &no_env)
            .unwrap_err()
            .message
            .contains("both")
    );
    let yaml = "agents:\n  - id: a\n  - id: a\n";
    assert!(
        Config::parse(yaml, &no_env)
            .unwrap_err()
            .message
            .contains("twice")
    );
}

#[test]
fn a_key_digest_with_a_multi_byte_character_is_a_config_error_with_its_line() {
    let yaml = format!(
        "agents:\n  - id: a\n    keys: [\"sha256:a\u{e9}{}\"]\n",
        "0".repeat(61)
    );
    let err = Config::parse(&yaml, &no_env).unwrap_err();
    assert!(err.message.contains("hexadecimal"), "{err}");
    assert_eq!(err.line, Some(3), "{err}");
}

#[test]
fn admin_never_shares_the_agent_port() {
    let err = Config::parse(
        "listen:\n  gateway: 127.0.0.1:4000\n  admin: 127.0.0.1:4000\n",
        &no_env,
    )
    .unwrap_err();
    assert!(err.message.contains("admin"));
}

#[test]
fn budgets_limits_and_guards_are_normalised_with_agent_overrides() {
    use crate::config::policy::GuardMode;
    use crate::window::Period;
    let c = Config::parse(
        include_str!("../../../../examples/airlock.example.yaml"),
        &env,
    )
    .unwrap();
    let bot = c.agent("support-bot").unwrap();
    assert_eq!(bot.budgets.len(), 3);
    assert_eq!(bot.budgets[0].period, Period::Day);
    assert_eq!(bot.budgets[0].limit_nanos, 20_000_000_000);
    assert_eq!(bot.budgets[2].period, Period::Run);
    assert_eq!(bot.rates.overall.requests_per_minute, Some(600));
    let loops = bot.guards.loops.as_ref().unwrap();
    assert_eq!(
        loops.mode,
        GuardMode::Monitor,
        "the agent's `guards.mode: monitor` wins"
    );
    assert_eq!(loops.identical_calls, Some(5));
    assert_eq!(loops.window, std::time::Duration::from_secs(60));
    assert_eq!(bot.guards.velocity.unwrap().nanos_per_minute, 5_000_000_000);
    assert_eq!(c.team("support").unwrap().budgets[0].period, Period::Month);
    assert_eq!(c.limits.max_output_tokens, 4096);
    assert_eq!(
        c.webhooks,
        vec![Webhook {
            url: "https://hooks.slack.com/services/x".into(),
            slack: true
        }]
    );
}

#[test]
fn checkpoints_default_beside_a_sqlite_ledger_only() {
    let state = |yaml: &str| Config::parse(yaml, &no_env).unwrap().state;
    let sqlite = state("state: { ledger: \"sqlite:///var/lib/airlock/ledger.db\" }\n");
    assert_eq!(
        sqlite.checkpoint,
        Some("/var/lib/airlock/ledger.db.checkpoint".into())
    );
    assert!(!sqlite.durable, "asynchronous by default");
    let postgres = state("state: { ledger: \"postgres://u@h/db\" }\n");
    assert_eq!(postgres.checkpoint, None, "each replica names its own");
    let set = state(
        "state:\n  ledger: postgres://u@h/db\n  checkpoint: /srv/a.checkpoint\n  durable: true\n",
    );
    assert_eq!(set.checkpoint, Some("/srv/a.checkpoint".into()));
    assert!(set.durable);
    assert_eq!(
        Config::builtin(&no_env).state.checkpoint,
        Some("airlock.db.checkpoint".into())
    );
}

#[test]
fn urls_in_messages_hide_passwords() {
    assert_eq!(
        redact_url("postgres://airlock:s3cret@db:5432/ledger"),
        "postgres://airlock:***@db:5432/ledger"
    );
    assert_eq!(
        redact_url("redis://:pw@127.0.0.1:6379"),
        "redis://:***@127.0.0.1:6379"
    );
    assert_eq!(
        redact_url("postgres://airlock@db/ledger"),
        "postgres://airlock@db/ledger"
    );
    assert_eq!(redact_url("sqlite://airlock.db"), "sqlite://airlock.db");
    let err = Config::parse("state: { ledger: \"mysql://u:s3cret@h/db\" }\n", &no_env).unwrap_err();
    assert!(!err.to_string().contains("s3cret"), "{err}");
}

#[test]
fn content_guards_are_normalised_with_agent_overrides() {
    use crate::config::policy::{DlpAction, InjectionAction};
    let text = "
guards:
  dlp:
    default_action: redact
    actions: { private_key: block, email: monitor }
    custom:
      - { id: employee_id, pattern: 'EMP-[0-9]{6}', action: block }
      - { id: account, pattern: '\\bACC[0-9]{12,19}\\b', validator: luhn }
  injection: { action: block }
agents:
  - id: strict
    guards: { dlp: { actions: { email: block } } }
  - id: watcher
    guards: { mode: monitor }
";
    let c = Config::parse(text, &no_env).unwrap();
    let strict = c.agent("strict").unwrap().guards.dlp.as_ref().unwrap();
    assert_eq!(
        strict.action("email"),
        DlpAction::Block,
        "the agent's action wins"
    );
    assert_eq!(strict.action("private_key"), DlpAction::Block);
    assert_eq!(
        strict.action("employee_id"),
        DlpAction::Block,
        "a custom detector's own action"
    );
    assert_eq!(strict.action("account"), DlpAction::Redact, "the default");
    assert_eq!(
        c.agent("strict").unwrap().guards.injection,
        InjectionAction::Block
    );
    let watcher = &c.agent("watcher").unwrap().guards;
    assert_eq!(
        watcher.dlp.as_ref().unwrap().action("private_key"),
        DlpAction::Monitor
    );
    assert_eq!(watcher.injection, InjectionAction::Monitor);
    assert!(c.detectors.ids().any(|id| id == "employee_id"));

    let plain = Config::parse("agents:\n  - id: a\n", &no_env).unwrap();
    assert!(
        plain.agents[0].guards.dlp.is_none(),
        "no dlp section, no scanning"
    );
    assert_eq!(plain.agents[0].guards.injection, InjectionAction::Monitor);
}

#[test]
fn content_guard_typos_are_errors() {
    for (text, says) in [
        (
            "guards:\n  dlp:\n    actions: { aws_key: block }\n",
            "no detector `aws_key`",
        ),
        ("guards:\n  dlp:\n    default_action: drop\n", "drop"),
        ("guards:\n  injection: { action: redact }\n", "redact"),
        (
            "guards:\n  dlp:\n    custom:\n      - { id: x, pattern: 'a(' }\n",
            "custom detector `x`",
        ),
        (
            "guards:\n  dlp:\n    custom:\n      - { id: x, pattern: 'a', validator: crc }\n",
            "crc",
        ),
        (
            "agents:\n  - id: a\n    guards: { dlp: { custom: [{ id: y, pattern: b }] } }\n",
            "declared once",
        ),
    ] {
        let err = Config::parse(text, &no_env).unwrap_err();
        assert!(err.to_string().contains(says), "{text}: {err}");
    }
}

#[test]
fn intercepted_hosts_map_to_providers_and_get_a_ca() {
    let base =
        "providers:\n  mock: { kind: openai, base_url: 'http://127.0.0.1:9/v1', api_key: k }\n";
    let c = Config::parse(
        &format!("{base}egress:\n  intercept:\n    API.OpenAI.test.: mock\n    b.test: {{ provider: mock, pass_credentials: true }}\n"),
        &no_env,
    )
    .unwrap();
    let rule = &c.egress.intercept["api.openai.test"];
    assert_eq!(rule.provider, "mock");
    assert!(!rule.pass_credentials && c.egress.intercept["b.test"].pass_credentials);
    let ca = c.egress.ca.as_ref().expect("interception needs a CA");
    assert_eq!((ca.cert.as_str(), ca.key.as_str()), egress::DEFAULT_CA);

    let err = Config::parse(
        &format!("{base}egress:\n  intercept:\n    a.test: nope\n"),
        &no_env,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("`nope` is not a provider"),
        "{err}"
    );
    let err = Config::parse(
        &format!("{base}egress:\n  intercept:\n    'https://a.test': mock\n"),
        &no_env,
    )
    .unwrap_err();
    assert!(err.to_string().contains("must be a host name"), "{err}");
    assert!(Config::parse(base, &no_env).unwrap().egress.ca.is_none());
}

#[test]
fn the_otlp_endpoint_becomes_the_traces_url() {
    let traces = |endpoint: &str| {
        Config::parse(
            &format!("telemetry:\n  otlp_endpoint: {endpoint}\n"),
            &no_env,
        )
        .map(|c| c.otlp_traces)
    };
    let ok = [
        ("http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"),
        ("http://127.0.0.1:4318/", "http://127.0.0.1:4318/v1/traces"),
        (
            "https://otel.example/v1/traces",
            "https://otel.example/v1/traces",
        ),
        (
            "https://otel.example/tenant/a",
            "https://otel.example/tenant/a/v1/traces",
        ),
    ];
    for (endpoint, url) in ok {
        assert_eq!(
            traces(endpoint).unwrap().as_deref(),
            Some(url),
            "{endpoint}"
        );
    }
    // Empty means off, so `${OTEL_EXPORTER_OTLP_ENDPOINT:-}` works.
    assert_eq!(traces("''").unwrap(), None);
    assert_eq!(
        Config::parse("agents: []\n", &no_env).unwrap().otlp_traces,
        None
    );

    for (endpoint, why) in [
        ("127.0.0.1:4318", "must start with http:// or https://"),
        (
            "grpc://127.0.0.1:4317",
            "must start with http:// or https://",
        ),
        ("http://", "is not a valid URL"),
        ("http://:4318", "names no host"),
        ("http://otel.example:99999", "port"),
        (
            "https://user:hunter2@otel.example",
            "must not carry credentials",
        ),
        ("http://otel.example/?x=1", "must not have a query"),
    ] {
        let err = traces(endpoint).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("telemetry.otlp_endpoint"), "{message}");
        assert!(message.contains(why), "{endpoint}: {message}");
        assert!(!message.contains("hunter2"), "{message}");
        assert_eq!(err.line, Some(2), "{message}");
    }
}

#[test]
fn every_upstream_url_is_parsed_and_a_bad_one_names_its_key_and_line() {
    let cases = [
        (
            "providers:\n  p:\n    kind: openai\n    base_url: http://api example/v1\n",
            "providers.p.base_url",
            4,
        ),
        (
            "providers:\n  p:\n    kind: openai\n    base_url: http://x:99999/v1\n",
            "providers.p.base_url",
            4,
        ),
        (
            "a2a:\n  agents:\n    far:\n      url: \"http://x/\\u001b[2J\"\n",
            "a2a.agents.far.url",
            3,
        ),
        (
            "mcp:\n  servers:\n    gh:\n      url: http://x:0/mcp\n",
            "mcp.servers.gh.url",
            3,
        ),
        (
            "mcp:\n  servers:\n    gh:\n      url: \"http://\u{e9}.example/mcp\"\n",
            "mcp.servers.gh.url",
            3,
        ),
        (
            "alerts:\n  webhooks:\n    - url: \"http://hooks example/x\"\n",
            "alerts.webhooks[].url",
            3,
        ),
        (
            "telemetry:\n  otlp_endpoint: \"http://otel example\"\n",
            "telemetry.otlp_endpoint",
            2,
        ),
    ];
    for (yaml, key, line) in cases {
        let err = Config::parse(yaml, &no_env).unwrap_err();
        assert!(err.message.contains(key), "{yaml}: {err}");
        assert_eq!(err.line, Some(line), "{yaml}: {err}");
    }
}

#[test]
fn an_airlock_key_is_never_taken_for_a_provider_key() {
    // The first-start banner exports the agent's key as OPENAI_API_KEY.
    let banner = |k: &str| match k {
        "OPENAI_API_KEY" => Some("al-0123456789abcdef".into()),
        "ANTHROPIC_API_KEY" => Some("sk-ant-real".into()),
        _ => None,
    };
    let c = Config::builtin(&banner);
    assert!(
        !c.providers.contains_key("openai"),
        "skipped on the defaults"
    );
    assert!(c.providers.contains_key("anthropic"));
    assert!(c.warnings[0].contains("OPENAI_API_KEY"), "{:?}", c.warnings);

    // In a config file it is an error naming the provider and its line.
    let err = Config::parse(
        "providers:\n  openai: { kind: openai, base_url: https://api.openai.com/v1, api_key: \"${OPENAI_API_KEY}\" }\n",
        &banner,
    )
    .unwrap_err();
    assert!(
        err.message
            .contains("providers.openai.api_key is an Airlock agent key"),
        "{err}"
    );
    assert_eq!(err.line, Some(2));
    // Also a key of another form that is one of the agents' own.
    let yaml = format!(
        "providers:\n  p: {{ kind: openai, base_url: http://127.0.0.1:1/v1, api_key: custom-agent-key }}\nagents:\n  - id: a\n    keys: [\"{}\"]\n",
        crate::keys::KeyDigest::of("custom-agent-key")
    );
    assert!(Config::parse(&yaml, &no_env).is_err());
}
