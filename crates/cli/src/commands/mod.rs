//! One module per subcommand; `load_config` is the one way every command reads config.

pub mod admin;
pub mod audit;
pub mod ca;
pub mod check;
pub mod keys;
pub mod serve;
pub mod tail;
pub mod tools;
pub mod usage;

use std::path::Path;

use airlock_core::Config;
use anyhow::Context;

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
