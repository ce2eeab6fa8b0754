use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use airlock_core::config::DEFAULT_AGENT;
use airlock_core::config::redact_url;
use airlock_core::keys::KeyDigest;
use airlock_gateway::{Gateway, new_key, start};
use airlock_state::{Counters, Ledger, LedgerFiles, StoredKey};
use anyhow::Context;
use tracing_subscriber::EnvFilter;

use super::{env, load_config};

/// How long calls in flight may take to finish after SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

pub fn run(config_path: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let config = load_config(config_path.as_deref())?;
    let filter = env("RUST_LOG")
        .or(config.log.clone())
        .unwrap_or_else(|| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let files = LedgerFiles { checkpoint: config.state.checkpoint.clone(), spill: None };
        let ledger = Ledger::open_with(&config.state.ledger, files).with_context(|| format!("cannot open the ledger {}", redact_url(&config.state.ledger)))?;
        let mut stored = ledger.keys().await?;
        let builtin = config_path.is_none();
        let first_key = if builtin && !stored.iter().any(|k| k.agent == DEFAULT_AGENT && k.revoked_ms.is_none()) {
            let key = new_key();
            let record = StoredKey {
                id: format!("key_{}", &KeyDigest::of(&key).to_string()[7..19]),
                agent: DEFAULT_AGENT.into(),
                digest: KeyDigest::of(&key),
                created_ms: SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64,
                revoked_ms: None,
            };
            ledger.insert_key(record.clone()).await?;
            stored.push(record);
            Some(key)
        } else {
            None
        };
        let admin_token = match env("AIRLOCK_ADMIN_TOKEN").filter(|t| !t.is_empty()) {
            Some(t) => t,
            None => {
                let t = new_key().replacen("al-", "adm-", 1);
                eprintln!("AIRLOCK_ADMIN_TOKEN is not set; this run's admin token is:\n  export AIRLOCK_ADMIN_TOKEN={t}");
                t
            }
        };

        let counters = Counters::open(&config.state.counters)
            .with_context(|| format!("cannot open the counters store {}", redact_url(&config.state.counters)))?;
        let gateway = Gateway::new(config, ledger, counters, stored, admin_token);
        let running = start(gateway, config_path).await?;
        let base = format!("http://{}", running.gateway_addr);
        if builtin {
            match &first_key {
                Some(key) => eprintln!(
                    "\nAgent `{DEFAULT_AGENT}` was given a key (shown once, stored only as a digest):\n  export OPENAI_BASE_URL={base}/v1\n  export OPENAI_API_KEY={key}\n  export ANTHROPIC_BASE_URL={base}\n  export ANTHROPIC_API_KEY={key}\n"
                ),
                None => eprintln!(
                    "\nAgent `{DEFAULT_AGENT}` uses the key printed on first start:\n  export OPENAI_BASE_URL={base}/v1\n  export ANTHROPIC_BASE_URL={base}\n"
                ),
            }
        }
        eprintln!("airlock: gateway on {base}, admin on http://{}", running.admin_addr);

        shutdown_signal().await;
        tracing::info!("shutting down: finishing calls in flight");
        running.shutdown(SHUTDOWN_GRACE).await;
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
