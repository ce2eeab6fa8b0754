//! Hot reload: the config file is polled for changes; a valid new file is swapped in
//! atomically, an invalid one is logged and the running config keeps serving. Runtime
//! keys are re-read from the ledger every second, so a key made, rotated or revoked on one
//! replica (where it holds at once) holds on every other one within about a second: the
//! interval plus the time the read takes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use std::panic::UnwindSafe;

use airlock_core::{Config, ConfigError};
use tokio::sync::watch;

use crate::gateway::Gateway;

const POLL: Duration = Duration::from_millis(500);

/// What identifies a version of the file without reading it.
fn stamp(path: &PathBuf) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

pub async fn watch(gateway: Arc<Gateway>, path: PathBuf, mut stopped: watch::Receiver<bool>) {
    let mut seen = stamp(&path);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = stopped.changed() => return,
        }
        let now = stamp(&path);
        if now == seen || now.is_none() {
            continue;
        }
        seen = now;
        let text = match tokio::fs::read_to_string(&path).await {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "config reload: cannot read the file; keeping the running config");
                continue;
            }
        };
        match load(&text, |text| {
            Config::parse(text, &|k| std::env::var(k).ok())
        }) {
            Ok(config) => {
                let old = gateway.runtime();
                if config.listen != old.config.listen
                    || config.state != old.config.state
                    || config.otlp_traces != old.config.otlp_traces
                {
                    tracing::warn!(
                        "config reload: listen, state and telemetry.otlp_endpoint changes take effect at the next restart"
                    );
                }
                gateway.apply(config);
                tracing::info!(path = %path.display(), "config reloaded");
            }
            Err(why) => {
                tracing::error!(path = %path.display(), "config reload rejected; keeping the running config: {why}");
            }
        }
    }
}

/// A changed file's text as a config to apply, or why it is rejected. The parse runs under
/// `catch_unwind`: whatever the file holds, a bug in parsing it rejects that file instead
/// of ending this task, which would ignore every later file (one revoking a leaked key,
/// say) until a restart.
fn load(
    text: &str,
    parse: impl FnOnce(&str) -> Result<Config, ConfigError> + UnwindSafe,
) -> Result<Config, String> {
    match std::panic::catch_unwind(|| parse(text)) {
        Ok(parsed) => parsed.map_err(|e| e.to_string()),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("no message");
            Err(format!(
                "the file could not be parsed ({what}); this is a bug in Airlock, please report it"
            ))
        }
    }
}

/// How often runtime keys are re-read from the ledger.
const KEYS_EVERY: Duration = Duration::from_secs(1);

pub async fn refresh_keys(gateway: Arc<Gateway>, mut stopped: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(KEYS_EVERY) => {
                gateway.refresh_keys().await;
                gateway.refresh_suspensions().await;
                gateway.mcp.sessions.sweep();
                if !gateway.runtime().config.mcp.servers.is_empty() {
                    gateway.mcp.pins.refresh(&gateway).await;
                }
            }
            _ = stopped.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn a_file_that_panics_the_parser_is_rejected_and_the_next_one_loads() {
        let why = load("agents: []\n", |_| {
            panic!("slice index is not a char boundary")
        })
        .map(|_| ())
        .unwrap_err();
        assert!(why.contains("not a char boundary"), "{why}");
        assert!(load("agents: []\n", |t| Config::parse(t, &no_env)).is_ok());
    }

    #[test]
    fn a_key_digest_with_a_multi_byte_character_is_rejected_with_the_reason() {
        let text = format!(
            "agents:\n  - id: a\n    keys: [\"sha256:a\u{e9}{}\"]\n",
            "0".repeat(61)
        );
        let why = load(&text, |t| Config::parse(t, &no_env))
            .map(|_| ())
            .unwrap_err();
        assert!(why.contains("hexadecimal"), "{why}");
    }
}
