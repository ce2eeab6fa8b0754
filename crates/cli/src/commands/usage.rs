use std::path::PathBuf;
use std::process::ExitCode;

use airlock_core::money::format_usd;
use airlock_state::{GroupBy, UsageQuery, UsageRow};
use anyhow::{Context, anyhow};
use comfy_table::Table;

use super::escape::{for_terminal, json_for_terminal};
use super::{load_config, on_ledger, since_ms};

/// How `airlock usage` prints its rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// `--agent` and `--kind`: which calls to count.
pub struct Only {
    pub agent: Option<String>,
    pub kind: Option<String>,
}

pub fn run(
    config: Option<PathBuf>,
    since: &str,
    by: &str,
    only: Only,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let config = load_config(config.as_deref())?;
    let group_by = GroupBy::parse(by).ok_or_else(|| anyhow!("--by must be {BY}"))?;
    if only
        .kind
        .as_deref()
        .is_some_and(|k| airlock_core::Kind::parse(k).is_none())
    {
        return Err(anyhow!("--kind must be llm, mcp, a2a or egress"));
    }
    let since_ms = since_ms(since)?;
    let rows = on_ledger(&config, |ledger| async move {
        ledger
            .usage(UsageQuery {
                group_by,
                since_ms,
                agent: only.agent,
                kind: only.kind,
            })
            .await
            .context("ledger query failed")
    })?;

    match format {
        Format::Json => {
            // The same shape as the admin API's `/api/usage`.
            let json = serde_json::to_string_pretty(&serde_json::json!({ "rows": rows }))?;
            println!("{}", json_for_terminal(&json));
        }
        Format::Csv => print!("{}", csv(by, group_by, &rows)),
        Format::Table => println!(
            "usage since {since}, by {by}:\n{}",
            table(by, group_by, &rows)
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// What `--by` takes.
pub const BY: &str =
    "agent, model, team, kind, provider, route, target, outcome, reason, hour or day";

/// A row's key for people: hours and days as UTC times rather than unix milliseconds (the
/// JSON keeps the API's form); names as agents sent them, escaped for the terminal.
fn key(group_by: GroupBy, row: &UsageRow) -> String {
    let Some(key) = row.key.as_deref() else {
        return "-".into();
    };
    match (group_by, key.parse::<u64>()) {
        (GroupBy::Hour | GroupBy::Day, Ok(ms)) => {
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
            let text = humantime::format_rfc3339_seconds(at).to_string();
            if group_by == GroupBy::Day {
                text[..10].to_string()
            } else {
                text
            }
        }
        _ => for_terminal(key).into_owned(),
    }
}

/// One CSV field (RFC 4180): control characters escaped as on the terminal (a CSV is read
/// with `cat` too, where `\r` would forge a line); text a spreadsheet would take for a
/// formula (`=`, `+`, `-`, `@` first: an agent names its models) behind a `'`, as OWASP
/// advises; then quoted when it holds a comma, a quote or a line break, its quotes doubled.
pub fn csv_field(s: &str) -> String {
    let mut s = for_terminal(s);
    if s.starts_with(['=', '+', '-', '@']) && s.parse::<f64>().is_err() {
        s = format!("'{s}").into();
    }
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.into_owned()
    }
}

/// RFC 4180: a header line, then a line a row; a field with a comma, a quote or a line
/// break is quoted, its quotes doubled. Money in nano-dollars and in USD.
fn csv(by: &str, group_by: GroupBy, rows: &[UsageRow]) -> String {
    let field = csv_field;
    let mut out = format!(
        "{},requests,denied,input_tokens,cached_input_tokens,output_tokens,reasoning_tokens,cost_nanos,cost_usd\r\n",
        field(by)
    );
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{}\r\n",
            field(&r.key.as_ref().map(|_| key(group_by, r)).unwrap_or_default()),
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

fn table(by: &str, group_by: GroupBy, rows: &[UsageRow]) -> Table {
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
            key(group_by, r),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_and_days_read_as_utc_times() {
        let row = |k: &str| UsageRow {
            key: Some(k.into()),
            ..Default::default()
        };
        // 2026-11-27T17:00:00Z
        let hour = row("1795798800000");
        assert_eq!(key(GroupBy::Hour, &hour), "2026-11-27T17:00:00Z");
        assert_eq!(key(GroupBy::Day, &row("1795737600000")), "2026-11-27");
        assert_eq!(key(GroupBy::Agent, &hour), "1795798800000");
        assert_eq!(key(GroupBy::Reason, &UsageRow::default()), "-");
        assert!(csv("hour", GroupBy::Hour, &[hour]).contains("\r\n2026-11-27T17:00:00Z,0,"));
    }

    #[test]
    fn hostile_names_stay_in_their_cell_and_their_record() {
        let row = |k: &str| UsageRow {
            key: Some(k.into()),
            requests: 1,
            ..Default::default()
        };
        let rows = [
            row("gpt\u{1b}[2J\u{1b}[H"),
            row("\u{1b}]8;;https://evil.example\u{1b}\\x\u{1b}]8;;\u{1b}\\"),
            row("m\r\nforged,9,9,9,9,9,9,9,9"),
            row("a \"quoted\", name\u{9b}"),
        ];
        let csv = csv("model", GroupBy::Model, &rows);
        assert!(
            !csv.replace("\r\n", "").chars().any(char::is_control),
            "{csv:?}"
        );
        // One header and one record a row: nothing starts a record of its own.
        assert_eq!(
            csv.split("\r\n").filter(|r| !r.is_empty()).count(),
            5,
            "{csv}"
        );
        assert!(csv.contains("\r\ngpt\\x1b[2J\\x1b[H,1,"), "{csv}");
        for formula in [
            "=HYPERLINK(\"http://evil\",\"x\")",
            "+cmd|calc",
            "@SUM(1)",
            "-2+3",
        ] {
            assert!(
                csv_field(formula).trim_start_matches('"').starts_with('\''),
                "{formula}"
            );
        }
        assert_eq!(csv_field("-5"), "-5");
        assert!(
            csv.contains("\r\n\"m\\x0d\\x0aforged,9,9,9,9,9,9,9,9\",1,"),
            "{csv}"
        );
        assert!(
            csv.contains("\r\n\"a \"\"quoted\"\", name\\u{9b}\",1,"),
            "{csv}"
        );

        let table = table("model", GroupBy::Model, &rows).to_string();
        assert!(
            !table.replace('\n', "").chars().any(char::is_control),
            "{table:?}"
        );
        assert!(table.contains("gpt\\x1b[2J\\x1b[H"), "{table}");
        assert!(table.contains("m\\x0d\\x0aforged"), "{table}");
    }
}
