use std::path::Path;
use std::process::ExitCode;

use super::load_config;

pub fn run(path: &Path) -> anyhow::Result<ExitCode> {
    let config = load_config(Some(path))?;
    println!(
        "{}: ok ({} providers, {} models, {} agents; gateway {}, admin {})",
        path.display(),
        config.providers.len(),
        config.models.as_ref().map_or(0, |m| m.len()),
        config.agents.len(),
        config.listen.gateway,
        config.listen.admin,
    );
    Ok(ExitCode::SUCCESS)
}
