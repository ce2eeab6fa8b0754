//! `airlock audit verify`: walks the ledger's hash chain and names the first event that was
//! altered, or the place where one is missing. Reads the configured ledger directly.

use std::path::Path;
use std::process::ExitCode;

use airlock_core::config::redact_url;
use airlock_state::Ledger;
use airlock_state::ledger::chain::Break;
use anyhow::Context;

use super::load_config;

pub fn verify(config: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    let config = load_config(config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(async {
        let ledger = Ledger::open(&config.state.ledger)
            .with_context(|| format!("cannot open {}", redact_url(&config.state.ledger)))?;
        ledger.audit().await.context("reading the ledger failed")
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        match &report.broken {
            None => println!(
                "the ledger's hash chain is intact: {} events verified{}",
                report.checked,
                if report.unchained > 0 {
                    format!(", {} not chained yet", report.unchained)
                } else {
                    String::new()
                }
            ),
            Some(Break::Altered { id, position }) => println!(
                "event {id} (#{position} in the ledger) was altered: its content no longer matches its hash; {} events before it verified",
                report.checked
            ),
            Some(Break::Missing { before, position }) => println!(
                "an event is missing (or rows were reordered) before event {before} (#{position}): its link does not match the event before it; {} events before it verified",
                report.checked
            ),
        }
    }
    Ok(if report.broken.is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
