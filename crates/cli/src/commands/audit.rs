//! `airlock audit verify` walks the ledger's hash chain and names the first event that was
//! altered, or the place where one is missing; `airlock audit export` writes the events
//! with their links for a SIEM. Both read the configured ledger directly.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use airlock_state::LedgerError;
use airlock_state::ledger::chain::{Break, ChainedRow};
use anyhow::Context;
use serde_json::Value;

use super::escape::{for_terminal, json_for_terminal};
use super::usage::csv_field;
use super::{load_config, on_ledger, since_ms};

/// How `airlock audit export` writes events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// One JSON object a line: the event as `/api/events` shows it, plus `prev_hash`, `hash`.
    Jsonl,
    Csv,
}

/// The CSV columns: the event's main fields, then its links.
const CSV_COLUMNS: [&str; 21] = [
    "id",
    "ts",
    "agent",
    "team",
    "kind",
    "target",
    "provider",
    "model",
    "operation",
    "status",
    "outcome",
    "reason",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cost_nanos",
    "latency_ms",
    "run_id",
    "prev_hash",
    "hash",
];

pub fn export(
    config: Option<&Path>,
    since: &str,
    format: ExportFormat,
) -> anyhow::Result<ExitCode> {
    let config = load_config(config)?;
    let since_ms = since_ms(since)?;
    if format == ExportFormat::Csv {
        println!("{}", CSV_COLUMNS.join(","));
    }
    on_ledger(&config, |ledger| async move {
        ledger
            .export(since_ms, move |rows| write_rows(rows, format))
            .await
            .context("reading the ledger failed")
    })?;
    Ok(ExitCode::SUCCESS)
}

fn write_rows(rows: &[ChainedRow], format: ExportFormat) -> Result<(), LedgerError> {
    let mut out = std::io::stdout().lock();
    for row in rows {
        let mut v = row.event.to_json();
        v["prev_hash"] = row.prev_hash.clone().into();
        v["hash"] = row.hash.clone().into();
        let line = match format {
            ExportFormat::Jsonl => json_for_terminal(&v.to_string()).into_owned(),
            ExportFormat::Csv => CSV_COLUMNS
                .iter()
                .map(|c| match &v[*c] {
                    Value::Null => String::new(),
                    Value::String(s) => csv_field(s),
                    other => csv_field(&other.to_string()),
                })
                .collect::<Vec<_>>()
                .join(","),
        };
        // The reader went away (`| head`): nothing more to write.
        if writeln!(out, "{line}").is_err() {
            return Err(LedgerError::Closed);
        }
    }
    Ok(())
}

pub fn verify(config: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    let config = load_config(config)?;
    let report = on_ledger(&config, |ledger| async move {
        ledger.audit().await.context("reading the ledger failed")
    })?;
    if json {
        let json = serde_json::to_string_pretty(&report)?;
        println!("{}", json_for_terminal(&json));
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
                "event {} (#{position} in the ledger) was altered: its content no longer matches its hash; {} events before it verified",
                for_terminal(id),
                report.checked
            ),
            Some(Break::Missing { before, position }) => println!(
                "an event is missing (or rows were reordered) before event {} (#{position}): its link does not match the event before it; {} events before it verified",
                for_terminal(before),
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
