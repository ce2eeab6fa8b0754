//! `airlock audit verify` walks the ledger's hash chain and names the first event that was
//! altered, unlinked, or the place where one is missing, and checks that the chain reaches
//! every checkpoint (rows deleted from the end); `airlock audit export` writes the events
//! with their links for a SIEM. Both read the configured ledger directly.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use airlock_core::Config;
use airlock_state::LedgerError;
use airlock_state::ledger::chain::{AuditReport, Break, ChainedRow};
use airlock_state::ledger::checkpoint;
use anyhow::Context;
use serde_json::Value;

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
            ExportFormat::Jsonl => v.to_string(),
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

/// What `verify` says when no checkpoint file is there to check against.
pub const NO_CHECKPOINT: &str = "truncation not detectable: no checkpoint";

pub fn verify(
    config: Option<&Path>,
    checkpoints: Vec<PathBuf>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let config = load_config(config)?;
    let files = checkpoint_files(&config, checkpoints);
    let mut marks = Vec::new();
    for file in &files {
        marks.extend(checkpoint::read(file)?);
    }
    let report = on_ledger(&config, |ledger| async move {
        ledger
            .audit(marks)
            .await
            .context("reading the ledger failed")
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", describe(&report));
    }
    Ok(if report.broken.is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The files named on the command line, or else the configured one if it is there (a
/// fresh ledger has none yet; one named on the command line must exist).
fn checkpoint_files(config: &Config, given: Vec<PathBuf>) -> Vec<PathBuf> {
    if !given.is_empty() {
        return given;
    }
    config
        .state
        .checkpoint
        .iter()
        .filter(|path| path.exists())
        .cloned()
        .collect()
}

fn when(ts_ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ts_ms)).to_string()
}

/// The report for a person: the chain's verdict, then what each checkpoint showed.
pub fn describe(report: &AuditReport) -> String {
    let checked = report.checked;
    let mut lines = vec![match &report.broken {
        None | Some(Break::Truncated { .. } | Break::Diverged { .. }) => format!(
            "the ledger's hash chain is intact: {checked} events verified{}",
            if report.unchained > 0 {
                format!(", {} written before the chain existed", report.unchained)
            } else {
                String::new()
            }
        ),
        Some(Break::Altered { id, position }) => format!(
            "event {id} (#{position} in the ledger) was altered: its content no longer matches its hash; {checked} events before it verified"
        ),
        Some(Break::Missing { before, position }) => format!(
            "an event is missing (or rows were reordered) before event {before} (#{position}): its link does not match the event before it; {checked} events before it verified"
        ),
        Some(Break::Unchained { id, position }) => format!(
            "event {id} (#{position} in the ledger) has no link after linked events: its hash was removed, so its content is not vouched for; {checked} events before it verified"
        ),
    }];
    match &report.broken {
        Some(Break::Truncated {
            seq,
            ts_ms,
            checkpoint,
            line,
            last_seq,
        }) => lines.push(format!(
            "the ledger ends before checkpoint seq {seq} written at {} ({checkpoint}, line {line}): rows were deleted from its end; its last row is {}",
            when(*ts_ms),
            last_seq.map_or("none".to_string(), |last| format!("seq {last}")),
        )),
        Some(Break::Diverged {
            seq,
            ts_ms,
            checkpoint,
            line,
        }) => lines.push(format!(
            "the row at seq {seq} is not the one checkpoint {checkpoint} (line {line}) saw there at {}: it was deleted or replaced",
            when(*ts_ms)
        )),
        _ => {}
    }
    if report.checkpoints.is_empty() {
        lines.push(NO_CHECKPOINT.to_string());
    }
    for used in &report.checkpoints {
        lines.push(match &used.latest {
            Some(latest) => format!(
                "checked against checkpoint {}: {} checkpoints; the latest reached, seq {} (line {}), written at {}",
                used.file,
                used.checkpoints,
                latest.seq,
                latest.line,
                when(latest.ts_ms)
            ),
            None => format!(
                "checked against checkpoint {}: {} checkpoints, none reached",
                used.file, used.checkpoints
            ),
        });
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_state::ledger::checkpoint::{CheckpointUse, MarkSeen};

    #[test]
    fn verify_names_the_checkpoint_or_says_there_is_none() {
        let mut report = AuditReport {
            checked: 3,
            ..Default::default()
        };
        assert_eq!(
            describe(&report),
            format!("the ledger's hash chain is intact: 3 events verified\n{NO_CHECKPOINT}")
        );
        report.checkpoints.push(CheckpointUse {
            file: "/l/airlock.db.checkpoint".into(),
            checkpoints: 2,
            latest: Some(MarkSeen {
                seq: 3,
                ts_ms: 0,
                line: 2,
            }),
        });
        let intact = describe(&report);
        assert!(
            intact.ends_with("checked against checkpoint /l/airlock.db.checkpoint: 2 checkpoints; the latest reached, seq 3 (line 2), written at 1970-01-01T00:00:00.000Z"),
            "{intact}"
        );
        report.broken = Some(Break::Truncated {
            seq: 5,
            ts_ms: 1_000,
            checkpoint: "/l/airlock.db.checkpoint".into(),
            line: 3,
            last_seq: Some(3),
        });
        assert!(describe(&report).contains(
            "the ledger ends before checkpoint seq 5 written at 1970-01-01T00:00:01.000Z (/l/airlock.db.checkpoint, line 3)"
        ));
    }
}
