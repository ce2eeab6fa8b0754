//! One module per subcommand; `load_config` is the one way every command reads config.

pub mod admin;
pub mod audit;
pub mod ca;
pub mod check;
pub mod escape;
pub mod keys;
pub mod serve;
pub mod tail;
pub mod tools;
pub mod usage;

use std::path::Path;

use std::future::Future;
use std::time::{SystemTime, UNIX_EPOCH};

use airlock_core::Config;
use airlock_core::config::redact_url;
use airlock_state::Ledger;
use anyhow::{Context, anyhow};

pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The config at `path`, or the built-in default when there is none.
pub fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    match path {
        None => Ok(Config::builtin(&env)),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Config::parse(&text, &env).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
        }
    }
}

/// Runs `f` on the configured ledger, read directly: no running gateway is needed.
pub fn on_ledger<T, F>(config: &Config, f: impl FnOnce(Ledger) -> F) -> anyhow::Result<T>
where
    F: Future<Output = anyhow::Result<T>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let ledger = Ledger::open(&config.state.ledger)
            .with_context(|| format!("cannot open {}", redact_url(&config.state.ledger)))?;
        f(ledger).await
    })
}

/// `--since 24h` (or `today`, `month`) as Unix milliseconds.
pub fn since_ms(since: &str) -> anyhow::Result<u64> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
    airlock_core::window::since(since, now).map_err(|e| anyhow!("--since: {e}"))
}
