//! The configuration file as users write it. Every struct rejects unknown keys so a typo
//! is an error at `airlock check`, not a silently ignored setting. Sections whose features
//! land later (mcp, a2a, egress, guards, alerts) are already validated here: the file
//! format is a contract.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::Deserialize;

use super::units::{ByteSize, Span, Usd};
use crate::keys::KeyDigest;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub listen: RawListen,
    #[serde(default)]
    pub state: RawState,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub providers: BTreeMap<String, RawProvider>,
    /// Public model name -> ordered fallback targets. Absent: default routing by name.
    pub models: Option<BTreeMap<String, RawModel>>,
    /// `provider/model` or `model` -> USD per 1M tokens.
    #[serde(default)]
    pub pricing: RawPricing,
    pub mcp: Option<RawMcp>,
    pub a2a: Option<RawA2a>,
    pub egress: Option<RawEgress>,
    pub guards: Option<RawGuards>,
    #[serde(default)]
    pub agents: Vec<RawAgent>,
    #[serde(default)]
    pub teams: Vec<RawTeam>,
    pub alerts: Option<RawAlerts>,
    pub telemetry: Option<RawTelemetry>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListen {
    /// LLM (/v1), MCP (/mcp) and A2A (/a2a) for agents.
    pub gateway: Option<SocketAddr>,
    /// HTTP forward proxy; omit to disable.
    pub egress: Option<SocketAddr>,
    /// Operators only: /healthz, /metrics, /api, dashboard.
    pub admin: Option<SocketAddr>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    /// `sqlite://path` or `postgres://...`.
    pub ledger: Option<String>,
    /// `memory` or `redis://...`.
    pub counters: Option<String>,
    pub on_counter_failure: Option<CounterFailure>,
    /// A file the ledger's writer appends `{seq, hash, ts_ms}` to after each committed
    /// batch, so `airlock audit verify` can tell rows deleted from the ledger's end.
    /// Default `<sqlite ledger path>.checkpoint`; none for PostgreSQL unless set (each
    /// replica its own file).
    pub checkpoint: Option<String>,
    /// `true`: each response's last byte waits for its event's batch to commit, so an
    /// answered call is never lost to a crash. Default `false`: events are written
    /// asynchronously in batches, and a SIGKILL can lose the last few milliseconds.
    pub durable: Option<bool>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CounterFailure {
    #[default]
    FailClosed,
    FailOpen,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Largest request body accepted (default 10MiB).
    pub max_body: Option<ByteSize>,
    /// Output cap for budget reservations when a request sets no max tokens; Airlock then
    /// sends it upstream as the request's limit, so the reservation is a true bound.
    pub max_output_tokens: Option<u32>,
    /// Input tokens reserved under a budget for a request whose prompt can't be bounded
    /// from its body (a `previous_response_id`, a file id, a PDF, hosted tools; default
    /// 200000).
    pub max_reserve_tokens: Option<u64>,
    /// Longest wait for an upstream's response headers, per attempt (default 120s).
    pub upstream_timeout: Option<Span>,
    /// Calls one agent may have in flight at once, on every route together (default 1024);
    /// more are refused with `rate_limited`.
    pub max_concurrent_per_agent: Option<u32>,
    /// HTTP/2 streams one connection may open at once (default 128).
    pub h2_max_streams: Option<u32>,
    /// How long a client may take to send a request's headers, counted from its first byte
    /// (or from the connection's opening for its first request) (default 10s).
    pub header_timeout: Option<Span>,
    /// Longest pause between two pieces of a request body (default 10s); a body must also
    /// bring 1 KiB/s over each `body_timeout`.
    pub body_timeout: Option<Span>,
    /// How long a connection with no request in flight is kept open (default 60s).
    pub idle_timeout: Option<Span>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    Openai,
    Anthropic,
    OpenaiCompatible,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub kind: ProviderKind,
    /// OpenAI kinds include the version prefix (`.../v1`); Anthropic is the host root.
    pub base_url: String,
    /// The provider credential, normally `${ENV_VAR}`; `none` sends no credential.
    pub api_key: Option<String>,
    /// Extra headers sent upstream with every request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    /// `provider/model` in fallback order.
    pub targets: Vec<String>,
}

/// `pricing:`: USD per 1M tokens by `provider/model` or model name; `default` prices any
/// model nothing else prices; `unpriced` says what happens to a call that stays unpriced
/// under a USD budget.
#[derive(Debug, Default, Deserialize)]
pub struct RawPricing {
    pub unpriced: Option<Unpriced>,
    #[serde(flatten)]
    pub prices: BTreeMap<String, RawPrice>,
}

/// A model with no price (none in config, the table or its family, no `pricing.default`)
/// for an agent under a USD budget: refused (`unpriced_model`), or served at cost 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unpriced {
    #[default]
    Refuse,
    Allow,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrice {
    pub input: Usd,
    pub output: Usd,
    /// Defaults to `input`.
    pub cached_input: Option<Usd>,
    /// Defaults to `input`.
    pub cache_write: Option<Usd>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMcp {
    pub separator: Option<String>,
    #[serde(default)]
    pub servers: BTreeMap<String, RawMcpServer>,
    pub pin_tools: Option<bool>,
    pub allowed_origins: Option<Vec<String>>,
    pub block_flagged_descriptions: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMcpServer {
    pub url: Option<String>,
    /// `streamable-http` (default for url) or `sse`.
    pub transport: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub command: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Accept changed tool definitions of this server without an operator's approval.
    pub auto_approve: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawA2a {
    #[serde(default)]
    pub agents: BTreeMap<String, RawRemoteAgent>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRemoteAgent {
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEgress {
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
    #[serde(default)]
    pub allow_private: Vec<String>,
    #[serde(default)]
    pub ai_hosts: Vec<String>,
    pub ca: Option<RawCa>,
    #[serde(default)]
    pub intercept: BTreeMap<String, RawIntercept>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCa {
    pub cert: String,
    pub key: String,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawIntercept {
    Provider(String),
    Detailed {
        provider: String,
        #[serde(default)]
        pass_credentials: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardMode {
    Enforce,
    Monitor,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGuards {
    pub mode: Option<GuardMode>,
    pub loops: Option<RawLoops>,
    pub velocity: Option<RawVelocity>,
    pub dlp: Option<RawDlp>,
    pub injection: Option<RawInjection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLoops {
    /// This many identical calls (same fingerprint) are allowed within `window`.
    pub identical_calls: Option<u32>,
    pub window: Option<Span>,
    /// The same call failing this many times within `window` stops further tries.
    pub repeated_failures: Option<u32>,
    /// A short cycle (A→B→A→B…, period 2 or 3) within a run may repeat this many times.
    pub cycle_repeats: Option<u32>,
    /// At most this many calls per run (`x-airlock-run`).
    pub calls_per_run: Option<u32>,
    /// Overrides `guards.mode` for the loop guard.
    pub mode: Option<GuardMode>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVelocity {
    /// Spending faster than this suspends the agent until an operator resumes it.
    pub usd_per_minute: Option<Usd>,
    /// Overrides `guards.mode` for the velocity trip.
    pub mode: Option<GuardMode>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DlpAction {
    Monitor,
    Redact,
    Block,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDlp {
    pub default_action: Option<DlpAction>,
    #[serde(default)]
    pub actions: BTreeMap<String, DlpAction>,
    #[serde(default)]
    pub custom: Vec<RawDetector>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDetector {
    pub id: String,
    pub pattern: String,
    /// A check a match must also pass (`luhn`, `iban`, ...), to cut false positives.
    pub validator: Option<String>,
    pub action: Option<DlpAction>,
}

/// What to do when a tool result or a remote agent's reply carries injected instructions.
/// There is no `redact`: cutting words out of a reply changes what it says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InjectionAction {
    Monitor,
    Block,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInjection {
    pub action: Option<InjectionAction>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgent {
    pub id: String,
    pub team: Option<String>,
    /// `sha256:<hex>` of each key; `airlock keys new --agent ID` prints one.
    #[serde(default)]
    pub keys: Vec<KeyDigest>,
    #[serde(default)]
    pub allow: RawAllow,
    /// Globs refused even where `allow` would let them through.
    #[serde(default)]
    pub deny: RawAllow,
    pub budget: Option<RawBudget>,
    pub limits: Option<RawAgentLimits>,
    pub guards: Option<RawGuards>,
}

/// Globs per resource kind; an omitted list allows all, an empty one allows none.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAllow {
    pub models: Option<Vec<String>>,
    pub tools: Option<Vec<String>>,
    pub agents: Option<Vec<String>>,
    pub hosts: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBudget {
    pub usd_per_day: Option<Usd>,
    pub usd_per_month: Option<Usd>,
    pub usd_per_run: Option<Usd>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgentLimits {
    pub requests_per_minute: Option<u32>,
    pub tokens_per_minute: Option<u64>,
    /// Limits per (agent, model): model-name glob -> limits for that model alone.
    #[serde(default)]
    pub models: BTreeMap<String, RawRate>,
    /// Limits per (agent, MCP tool): glob over `<server><separator><tool>` -> limits.
    #[serde(default)]
    pub tools: BTreeMap<String, RawRate>,
    /// Limits per (agent, egress host): host glob -> limits.
    #[serde(default)]
    pub hosts: BTreeMap<String, RawRate>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRate {
    pub requests_per_minute: Option<u32>,
    pub tokens_per_minute: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTeam {
    pub id: String,
    pub budget: Option<RawBudget>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlerts {
    #[serde(default)]
    pub webhooks: Vec<RawWebhook>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    pub url: String,
    pub format: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTelemetry {
    /// The OTLP/HTTP collector traces go to, e.g. `http://127.0.0.1:4318` (`/v1/traces` is
    /// added unless the URL already ends with it). Unset or empty: no traces.
    pub otlp_endpoint: Option<String>,
    /// Log filter, e.g. `info` or `airlock=debug`.
    pub log: Option<String>,
}

impl<'de> Deserialize<'de> for KeyDigest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        KeyDigest::parse(&s).map_err(serde::de::Error::custom)
    }
}
