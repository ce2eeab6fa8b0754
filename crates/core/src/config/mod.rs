//! Configuration: the YAML users write ([`raw`]) normalised into the validated snapshot the
//! gateway runs ([`Config`]). Parsing is pure: the caller supplies the text and a way to
//! read environment variables.

pub mod a2a;
mod access;
mod content;
pub mod egress;
mod env;
mod limits;
pub mod mcp;
pub mod policy;
pub mod raw;
mod routing;
pub mod units;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub use limits::Limits;
pub use raw::{CounterFailure, ProviderKind, Unpriced};
pub use routing::Target;

use crate::guards::dlp::Detectors;
use crate::http_url::{self, BadUrl};
use crate::keys::{self, KeyDigest};
use crate::pricing::{Price, PriceTable};
use raw::RawConfig;

/// A config problem, with the line it is on when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            // The YAML parser's messages already carry the line and a snippet.
            Some(l) if !self.message.contains(&format!("line {l}")) => {
                write!(f, "line {l}: {}", self.message)
            }
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    fn at(line: usize, message: impl Into<String>) -> Self {
        ConfigError {
            line: Some(line),
            message: message.into(),
        }
    }

    /// An unusable URL at config key `key` (as `a.b.c`), placed on the first line of `text`
    /// that mentions `needle`; user info is hidden in the message.
    pub(super) fn bad_url(
        text: &str,
        needle: &str,
        key: &str,
        url: &str,
        why: impl std::fmt::Display,
    ) -> Self {
        ConfigError::about(text, needle, format!("{key} `{}` {why}", redact_url(url)))
    }

    /// An error about `key`, placed on the first line of `text` that mentions it.
    fn about(text: &str, key: &str, message: impl Into<String>) -> Self {
        let line = text
            .lines()
            .position(|l| l.split('#').next().unwrap_or("").contains(key))
            .map(|i| i + 1);
        ConfigError {
            line,
            message: message.into(),
        }
    }
}

/// A secret from config (a provider key). Its `Debug` never shows the value, so it cannot
/// leak through a log line or an error.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listen {
    pub gateway: SocketAddr,
    pub egress: Option<SocketAddr>,
    pub admin: SocketAddr,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateConfig {
    pub ledger: String,
    pub counters: String,
    pub on_counter_failure: CounterFailure,
    /// Where the ledger appends a checkpoint after each committed batch: `state.checkpoint`,
    /// or `<path>.checkpoint` beside a SQLite ledger; `None` for PostgreSQL unless set.
    pub checkpoint: Option<PathBuf>,
    /// Whether a response's last byte waits for its event's commit (`state.durable`).
    pub durable: bool,
}

#[derive(Clone, Debug)]
pub struct Provider {
    pub name: String,
    pub kind: ProviderKind,
    /// Without a trailing slash.
    pub base_url: String,
    pub api_key: Option<Secret>,
    pub headers: Vec<(String, String)>,
}

#[derive(Clone, Debug, Default)]
pub struct Allow {
    pub models: Option<Vec<String>>,
    pub tools: Option<Vec<String>>,
    pub agents: Option<Vec<String>>,
    pub hosts: Option<Vec<String>>,
}

/// Globs per resource kind, refused whatever the allow lists say.
#[derive(Clone, Debug, Default)]
pub struct Deny {
    pub models: Vec<String>,
    pub tools: Vec<String>,
    pub agents: Vec<String>,
    pub hosts: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Agent {
    pub id: String,
    pub team: Option<String>,
    pub keys: Vec<KeyDigest>,
    pub allow: Allow,
    /// Refused even where `allow` lets them through.
    pub deny: Deny,
    pub budgets: Vec<policy::Budget>,
    pub rates: policy::Rates,
    pub guards: policy::Guards,
}

/// Where alerts go, and in which shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Webhook {
    pub url: String,
    /// Slack's `{"text": …}` instead of Airlock's JSON alert.
    pub slack: bool,
}

#[derive(Clone, Debug)]
pub struct Team {
    pub id: String,
    pub budgets: Vec<policy::Budget>,
}

/// The validated configuration the gateway runs: an immutable snapshot, swapped whole on
/// reload.
#[derive(Clone, Debug)]
pub struct Config {
    /// What the operator should know about how this config came to be (the built-in
    /// defaults skipping a provider key that is an Airlock key), logged at start.
    pub warnings: Vec<String>,
    pub listen: Listen,
    pub state: StateConfig,
    pub limits: Limits,
    pub providers: BTreeMap<String, Provider>,
    /// `None` when the file has no `models` section: default routing by name applies.
    pub models: Option<BTreeMap<String, Vec<Target>>>,
    pub prices: PriceTable,
    /// What happens to a call no price covers, for an agent under a USD budget.
    pub unpriced: Unpriced,
    pub agents: Vec<Agent>,
    pub teams: Vec<Team>,
    pub webhooks: Vec<Webhook>,
    pub mcp: mcp::Mcp,
    pub a2a: a2a::A2a,
    pub egress: egress::Egress,
    /// The content guards' detectors, built-in and custom; used for agents whose guards
    /// have a `dlp` section.
    pub detectors: Arc<Detectors>,
    pub log: Option<String>,
    /// Where spans are posted (OTLP/HTTP protobuf): `telemetry.otlp_endpoint` as the full
    /// traces URL. Read at start; a reload does not move it.
    pub otlp_traces: Option<String>,
}

/// `state.checkpoint` as set, or beside a SQLite ledger's file.
fn checkpoint_path(set: Option<String>, ledger: &str) -> Option<PathBuf> {
    match (set, ledger.strip_prefix("sqlite://")) {
        (Some(path), _) => Some(PathBuf::from(path)),
        (None, Some(file)) => Some(PathBuf::from(format!("{file}.checkpoint"))),
        (None, None) => None,
    }
}

pub const DEFAULT_GATEWAY: &str = "127.0.0.1:4000";
pub const DEFAULT_EGRESS: &str = "127.0.0.1:4001";
pub const DEFAULT_ADMIN: &str = "127.0.0.1:4002";
pub const DEFAULT_LEDGER: &str = "sqlite://airlock.db";
/// The agent the built-in default config serves; its key is made on first start.
pub const DEFAULT_AGENT: &str = "local";

impl Config {
    /// Parses and validates a config file's text.
    pub fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let expanded = env::interpolate(text, env)?;
        let raw: RawConfig = serde_saphyr::from_str(&expanded).map_err(|e| yaml_error(&e))?;
        Config::normalise(raw, text)
    }

    /// The built-in default: loopback listeners, a SQLite ledger in the working directory,
    /// providers for whichever of `OPENAI_API_KEY` / `ANTHROPIC_API_KEY` is set, and the
    /// agent `local` (its key lives in the ledger).
    pub fn builtin(env: &dyn Fn(&str) -> Option<String>) -> Config {
        // The content guards only watch: findings show up in the ledger, nothing is changed.
        let mut yaml = format!(
            "listen:\n  egress: {DEFAULT_EGRESS}\nguards:\n  dlp: {{ default_action: monitor }}\nagents:\n  - id: local\n"
        );
        // Airlock's first-start banner exports the agent's key as OPENAI_API_KEY and
        // ANTHROPIC_API_KEY: started again in that shell, Airlock must not take it for the
        // providers' key (it would send the agent's key upstream).
        let mut warnings = Vec::new();
        let provider_key = |name: &str, warnings: &mut Vec<String>| match env(name) {
            Some(v) if keys::is_airlock_key(&v) => {
                warnings.push(format!(
                    "{name} holds an Airlock agent key, not a provider key: the provider is left out (unset it in Airlock's shell, or set the provider's own key)"
                ));
                false
            }
            Some(v) => !v.is_empty(),
            None => false,
        };
        if provider_key("OPENAI_API_KEY", &mut warnings) {
            yaml.push_str(
                "providers:\n  openai:\n    kind: openai\n    base_url: ${AIRLOCK_OPENAI_BASE_URL:-https://api.openai.com/v1}\n    api_key: ${OPENAI_API_KEY}\n",
            );
        }
        if provider_key("ANTHROPIC_API_KEY", &mut warnings) {
            if !yaml.contains("providers:") {
                yaml.push_str("providers:\n");
            }
            yaml.push_str(
                "  anthropic:\n    kind: anthropic\n    base_url: ${AIRLOCK_ANTHROPIC_BASE_URL:-https://api.anthropic.com}\n    api_key: ${ANTHROPIC_API_KEY}\n",
            );
        }
        let mut config = Config::parse(&yaml, env).expect("the built-in config is valid");
        config.warnings = warnings;
        config
    }

    fn normalise(raw: RawConfig, text: &str) -> Result<Config, ConfigError> {
        let addr = |v: Option<SocketAddr>, d: &str| {
            v.unwrap_or_else(|| d.parse().expect("default address"))
        };
        let listen = Listen {
            gateway: addr(raw.listen.gateway, DEFAULT_GATEWAY),
            egress: raw.listen.egress,
            admin: addr(raw.listen.admin, DEFAULT_ADMIN),
        };
        // Port 0 (any free port, as tests use) never collides.
        if listen.admin.port() != 0
            && (listen.gateway == listen.admin || Some(listen.admin) == listen.egress)
        {
            return Err(ConfigError::about(
                text,
                "admin:",
                "listen.admin must differ from the agent-facing listeners",
            ));
        }

        let ledger = raw.state.ledger.unwrap_or_else(|| DEFAULT_LEDGER.into());
        if !(ledger.starts_with("sqlite://")
            || ledger.starts_with("postgres://")
            || ledger.starts_with("postgresql://"))
        {
            return Err(ConfigError::about(
                text,
                "ledger:",
                format!(
                    "state.ledger `{}` must be sqlite://PATH or postgres://...",
                    redact_url(&ledger)
                ),
            ));
        }
        let counters = raw.state.counters.unwrap_or_else(|| "memory".into());
        if !(counters == "memory"
            || counters.starts_with("redis://")
            || counters.starts_with("rediss://"))
        {
            return Err(ConfigError::about(
                text,
                "counters:",
                format!(
                    "state.counters `{}` must be memory or redis://...",
                    redact_url(&counters)
                ),
            ));
        }

        let mut providers = BTreeMap::new();
        for (name, p) in raw.providers {
            let base_url = p.base_url.trim_end_matches('/').to_string();
            http_url::parse_base(&base_url).map_err(|why| {
                let key = format!("providers.{name}.base_url");
                ConfigError::bad_url(text, &p.base_url, &key, &base_url, why)
            })?;
            if name.contains('/') {
                return Err(ConfigError::about(
                    text,
                    &name,
                    format!("provider name `{name}` must not contain '/'"),
                ));
            }
            let api_key = p
                .api_key
                .filter(|k| !k.is_empty() && k != "none")
                .map(Secret);
            let headers = p.headers.into_iter().collect();
            providers.insert(
                name.clone(),
                Provider {
                    name,
                    kind: p.kind,
                    base_url,
                    api_key,
                    headers,
                },
            );
        }

        let models = match raw.models {
            None => None,
            Some(models) => {
                let mut out = BTreeMap::new();
                for (public, m) in models {
                    if m.targets.is_empty() {
                        return Err(ConfigError::about(
                            text,
                            &public,
                            format!("models.{public}.targets is empty"),
                        ));
                    }
                    let mut targets = Vec::new();
                    for t in &m.targets {
                        let target = Target::parse(t)
                            .filter(|t| providers.contains_key(&t.provider))
                            .ok_or_else(|| {
                                ConfigError::about(text, t, format!("models.{public}: target `{t}` must be provider/model with a provider from `providers`"))
                            })?;
                        targets.push(target);
                    }
                    out.insert(public, targets);
                }
                Some(out)
            }
        };

        let mut overrides = HashMap::new();
        for (key, p) in raw.pricing.prices {
            overrides.insert(
                key,
                Price {
                    input: p.input.0,
                    cached_input: p.cached_input.unwrap_or(p.input).0,
                    cache_write: p.cache_write.unwrap_or(p.input).0,
                    output: p.output.0,
                },
            );
        }

        // `pricing.default` prices what nothing else does (a model literally named
        // `default` would need `provider/default`).
        let default_price = overrides.remove("default");
        let detectors = content::detectors(raw.guards.as_ref(), &raw.agents, text)?;
        let mut seen_ids = HashSet::new();
        let mut seen_keys = HashMap::new();
        let mut agents = Vec::new();
        for a in raw.agents {
            if !seen_ids.insert(a.id.clone()) {
                return Err(ConfigError::about(
                    text,
                    &format!("id: {}", a.id),
                    format!("agent id `{}` is declared twice", a.id),
                ));
            }
            for k in &a.keys {
                if let Some(other) = seen_keys.insert(*k, a.id.clone()) {
                    return Err(ConfigError::about(
                        text,
                        &k.to_string(),
                        format!("key {k} is given to both `{other}` and `{}`", a.id),
                    ));
                }
            }
            agents.push(Agent {
                budgets: policy::budgets(a.budget.as_ref()),
                rates: policy::rates(a.limits.as_ref()),
                guards: policy::guards(raw.guards.as_ref(), a.guards.as_ref()),
                id: a.id,
                team: a.team,
                keys: a.keys,
                allow: Allow {
                    models: a.allow.models,
                    tools: a.allow.tools,
                    agents: a.allow.agents,
                    hosts: a.allow.hosts,
                },
                deny: Deny {
                    models: a.deny.models.unwrap_or_default(),
                    tools: a.deny.tools.unwrap_or_default(),
                    agents: a.deny.agents.unwrap_or_default(),
                    hosts: a.deny.hosts.unwrap_or_default(),
                },
            });
        }

        let mut teams = Vec::new();
        for t in raw.teams {
            if teams.iter().any(|x: &Team| x.id == t.id) {
                return Err(ConfigError::about(
                    text,
                    &format!("id: {}", t.id),
                    format!("team id `{}` is declared twice", t.id),
                ));
            }
            teams.push(Team {
                budgets: policy::budgets(t.budget.as_ref()),
                id: t.id,
            });
        }

        let mut webhooks = Vec::new();
        for w in raw.alerts.map(|a| a.webhooks).unwrap_or_default() {
            http_url::parse(&w.url).map_err(|why| {
                ConfigError::bad_url(text, "url:", "alerts.webhooks[].url", &w.url, why)
            })?;
            let slack = match w.format.as_deref() {
                None | Some("json") => false,
                Some("slack") => true,
                Some(other) => {
                    return Err(ConfigError::about(
                        text,
                        "format:",
                        format!("alerts.webhooks[].format `{other}` must be json or slack"),
                    ));
                }
            };
            webhooks.push(Webhook { url: w.url, slack });
        }

        let mcp = mcp::normalise(raw.mcp, text)?;
        let a2a = a2a::normalise(raw.a2a, text)?;
        let egress = egress::normalise(raw.egress.as_ref(), text)?;
        for (host, rule) in &egress.intercept {
            if !providers.contains_key(&rule.provider) {
                return Err(ConfigError::about(
                    text,
                    host,
                    format!(
                        "egress.intercept.{host}: `{}` is not a provider in `providers`",
                        rule.provider
                    ),
                ));
            }
        }

        let telemetry = raw.telemetry.unwrap_or_default();
        let otlp_traces = match telemetry.otlp_endpoint.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(endpoint) => Some(otlp_traces_url(endpoint).map_err(|why| {
                let key = "telemetry.otlp_endpoint";
                ConfigError::bad_url(text, "otlp_endpoint:", key, endpoint, why)
            })?),
        };

        no_agent_key_upstream(text, &providers, &agents)?;
        Ok(Config {
            warnings: Vec::new(),
            listen,
            state: StateConfig {
                checkpoint: checkpoint_path(raw.state.checkpoint, &ledger),
                ledger,
                counters,
                on_counter_failure: raw.state.on_counter_failure.unwrap_or_default(),
                durable: raw.state.durable.unwrap_or(false),
            },
            limits: Limits::normalise(text, &raw.limits)?,
            providers,
            models,
            prices: PriceTable::new(overrides, default_price),
            unpriced: raw.pricing.unpriced.unwrap_or_default(),
            agents,
            teams,
            webhooks,
            mcp,
            a2a,
            egress,
            detectors,
            log: telemetry.log,
            otlp_traces,
        })
    }

    pub fn agent(&self, id: &str) -> Option<&Agent> {
        self.agents.iter().find(|a| a.id == id)
    }

    pub fn team(&self, id: &str) -> Option<&Team> {
        self.teams.iter().find(|t| t.id == id)
    }
}

/// A provider credential that is an Airlock agent key (by its `al-` form, or because it is
/// one of the configured agents' keys) is refused: Airlock would send the agent's key to
/// the provider, which must never see it.
fn no_agent_key_upstream(
    text: &str,
    providers: &BTreeMap<String, Provider>,
    agents: &[Agent],
) -> Result<(), ConfigError> {
    for (name, provider) in providers {
        let Some(key) = provider.api_key.as_ref().map(Secret::expose) else {
            continue;
        };
        let digest = KeyDigest::of(key);
        if keys::is_airlock_key(key) || agents.iter().any(|a| a.keys.contains(&digest)) {
            return Err(ConfigError::about(
                text,
                &format!("{name}:"),
                format!(
                    "providers.{name}.api_key is an Airlock agent key: an agent's key is never sent to a provider; give the provider its own key (an OPENAI_API_KEY / ANTHROPIC_API_KEY exported from Airlock's banner in this shell?)"
                ),
            ));
        }
    }
    Ok(())
}

/// `url` with the password of its user info (`scheme://user:password@host`) hidden, for
/// messages: database and Redis URLs carry credentials.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let hidden = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_string()
            };
            format!("{scheme}://{hidden}{}", &rest[at..])
        }
        None => url.to_string(),
    }
}

/// The OTLP/HTTP traces URL for a collector endpoint: `/v1/traces` is added unless it is
/// there already (the OpenTelemetry exporters' own rule for a base endpoint).
fn otlp_traces_url(endpoint: &str) -> Result<String, OtlpUrlError> {
    let uri = http_url::parse_base(endpoint)?;
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(OtlpUrlError::Credentials);
    }
    let base = endpoint.trim_end_matches('/');
    Ok(if base.ends_with("/v1/traces") {
        base.to_string()
    } else {
        format!("{base}/v1/traces")
    })
}

/// Why `telemetry.otlp_endpoint` is refused: any unusable URL, or one carrying credentials.
#[derive(Debug)]
enum OtlpUrlError {
    Url(BadUrl),
    Credentials,
}

impl From<BadUrl> for OtlpUrlError {
    fn from(why: BadUrl) -> Self {
        OtlpUrlError::Url(why)
    }
}

impl std::fmt::Display for OtlpUrlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OtlpUrlError::Url(why) => why.fmt(f),
            OtlpUrlError::Credentials => f.write_str(
                "must not carry credentials: give the collector's headers in OTEL_EXPORTER_OTLP_HEADERS",
            ),
        }
    }
}

/// The YAML parser's message already names the key and shows the line; keep it, and lift
/// the line number out for callers that want it.
fn yaml_error(e: &serde_saphyr::Error) -> ConfigError {
    let message = e.to_string();
    let line = message
        .split("line ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok());
    ConfigError { line, message }
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
