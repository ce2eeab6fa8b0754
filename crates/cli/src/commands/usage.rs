use std::path::PathBuf;
use std::process::ExitCode;

use airlock_core::money::format_usd;
use airlock_state::{GroupBy, UsageQuery, UsageRow};
use anyhow::{Context, anyhow};
use comfy_table::Table;

use super::{load_config, on_ledger, since_ms};

/// How `airlock usage` prints its rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

pub fn run(
    config: Option<PathBuf>,
    since: &str,
    by: &str,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let config = load_config(config.as_deref())?;
    let group_by = GroupBy::parse(by)
        .ok_or_else(|| anyhow!("--by must be agent, model, team, kind, provider or route"))?;
    let since_ms = since_ms(since)?;
    let rows = on_ledger(&config, |ledger| async move {
        ledger
            .usage(UsageQuery {
                group_by,
                since_ms,
                ..Default::default()
            })
            .await
            .context("ledger query failed")
    })?;

    match format {
        Format::Json => {
            // The same shape as the admin API's `/api/usage`.
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({ "rows": rows }))?
            );
        }
        Format::Csv => print!("{}", csv(by, &rows)),
        Format::Table => println!(
            "usage over the last {since}, by {by}:\n{}",
            table(by, &rows)
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break, its
/// quotes doubled.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// RFC 4180: a header line, then a line a row; a field with a comma, a quote or a line
/// break is quoted, its quotes doubled. Money in nano-dollars and in USD.
fn csv(by: &str, rows: &[UsageRow]) -> String {
    let field = csv_field;
    let mut out = format!(
        "{},requests,denied,input_tokens,cached_input_tokens,output_tokens,reasoning_tokens,cost_nanos,cost_usd\r\n",
        field(by)
    );
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{}\r\n",
            field(r.key.as_deref().unwrap_or("")),
            r.requests,
            r.denied,
            r.input_tokens,
            r.cached_input_tokens,
            r.output_tokens,
            r.reasoning_tokens,
            r.cost_nanos,
            format_usd(r.cost_nanos),
        ));
    }
    out
}

fn table(by: &str, rows: &[UsageRow]) -> Table {
    let mut table = Table::new();
    table.set_header([
        by,
        "requests",
        "denied",
        "input",
        "cached",
        "output",
        "reasoning",
        "cost (USD)",
    ]);
    for r in rows {
        table.add_row([
            r.key.clone().unwrap_or_else(|| "-".into()),
            r.requests.to_string(),
            r.denied.to_string(),
            r.input_tokens.to_string(),
            r.cached_input_tokens.to_string(),
            r.output_tokens.to_string(),
            r.reasoning_tokens.to_string(),
            format_usd(r.cost_nanos),
        ]);
    }
    table
}
