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

/// The largest config file read on reload: a real one is a few KiB, and a path pointed at
/// a device (`/dev/zero`) or a runaway file must not fill the gateway's memory.
const MAX_CONFIG_BYTES: u64 = 4 << 20;

pub async fn watch(gateway: Arc<Gateway>, path: PathBuf, mut stopped: watch::Receiver<bool>) {
    let mut seen = stamp(&path);
    // A change is read once the file has held still for a poll: an editor that truncates
    // and then writes must not have its empty moment applied.
    let mut settling = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = stopped.changed() => return,
        }
        let now = stamp(&path);
        if now == seen || now.is_none() {
            settling = None;
            continue;
        }
        if settling != now {
            settling = now;
            continue;
        }
        seen = now;
        settling = None;
        let text = match read(&path).await {
            Ok(t) => t,
            Err(why) => {
                tracing::error!(path = %path.display(), "config reload rejected; keeping the running config: {why}");
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

/// The file's text: a regular file of at most [`MAX_CONFIG_BYTES`] that says something
/// (an empty file would reload as the built-in defaults, refusing every configured agent).
async fn read(path: &PathBuf) -> Result<String, String> {
    use tokio::io::AsyncReadExt;
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| format!("cannot read it: {e}"))?;
    if !meta.is_file() {
        return Err("it is not a regular file".into());
    }
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| format!("cannot read it: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| format!("cannot read it: {e}"))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(format!("it is over {} MiB", MAX_CONFIG_BYTES >> 20));
    }
    let text = String::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_string())?;
    let says_something = text
        .lines()
        .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    if !says_something {
        return Err("it is empty (a file being written, or emptied by mistake)".into());
    }
    Ok(text)
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

    #[tokio::test]
    async fn only_a_regular_bounded_file_that_says_something_is_read() {
        let dir = std::env::temp_dir().join(format!("airlock-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("airlock.yaml");
        std::fs::write(&file, "agents: []\n").unwrap();
        assert_eq!(read(&file).await.unwrap(), "agents: []\n");
        for empty in ["", "\n  \n", "# nothing yet\n"] {
            std::fs::write(&file, empty).unwrap();
            assert!(
                read(&file).await.unwrap_err().contains("empty"),
                "{empty:?}"
            );
        }
        std::fs::write(&file, vec![b'#'; (MAX_CONFIG_BYTES + 1) as usize]).unwrap();
        assert!(read(&file).await.unwrap_err().contains("over"));
        let device = dir.join("zero.yaml");
        let _ = std::fs::remove_file(&device);
        std::os::unix::fs::symlink("/dev/zero", &device).unwrap();
        assert!(read(&device).await.unwrap_err().contains("regular"));
        std::fs::remove_dir_all(&dir).unwrap();
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
