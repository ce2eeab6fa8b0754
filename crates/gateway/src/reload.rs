//! Hot reload: the config file is polled for changes; a valid new file is swapped in
//! atomically, an invalid one is logged and the running config keeps serving. Runtime
//! keys are re-read from the ledger every second, so a key made, rotated or revoked on any
//! replica holds on every replica within a second.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use airlock_core::Config;
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
        match Config::parse(&text, &|k| std::env::var(k).ok()) {
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
            Err(e) => {
                tracing::error!(path = %path.display(), "config reload rejected; keeping the running config: {e}");
            }
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
