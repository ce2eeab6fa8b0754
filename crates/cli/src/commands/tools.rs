//! `airlock tools`: the pinned MCP tools of a running gateway, and approving a changed one.

use std::path::Path;
use std::process::ExitCode;

use comfy_table::Table;
use serde_json::Value;

use super::admin::{self, percent_encode};
use super::escape::for_terminal;

pub fn list(config: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    let answer = admin::call(config, "GET", "/api/tools", None)?;
    if json {
        return admin::print(&answer);
    }
    let tools = answer["tools"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if tools.is_empty() {
        println!("no MCP tools seen yet");
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new();
    table.set_header(["server", "tool", "status", "flags", "last seen"]);
    for t in tools {
        let flags: Vec<&str> = t["flags"]
            .as_array()
            .map(|f| f.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        table.add_row([
            field(t, "server"),
            field(t, "tool"),
            field(t, "status"),
            if flags.is_empty() {
                "-".into()
            } else {
                for_terminal(&flags.join(", ")).into_owned()
            },
            field(t, "last_seen"),
        ]);
    }
    println!("{table}");
    Ok(ExitCode::SUCCESS)
}

pub fn approve(config: Option<&Path>, server: &str, tool: &str) -> anyhow::Result<ExitCode> {
    let path = format!(
        "/api/tools/{}/{}/approve",
        percent_encode(server),
        percent_encode(tool)
    );
    let pin = admin::call(config, "POST", &path, None)?;
    println!(
        "approved {}/{} ({})",
        for_terminal(server),
        for_terminal(tool),
        for_terminal(&short_hash(pin["hash"].as_str().unwrap_or("?")))
    );
    // Approval settles a change; rules the approved definition matched still apply.
    if pin["status"] == "flagged" {
        let flags: Vec<&str> = pin["flags"]
            .as_array()
            .map(|f| f.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        println!("still flagged: {}", for_terminal(&flags.join(", ")));
    }
    Ok(ExitCode::SUCCESS)
}

/// A text field of the API's answer: a tool's name and flags are the MCP server's words.
fn field(v: &Value, name: &str) -> String {
    for_terminal(v[name].as_str().unwrap_or("-")).into_owned()
}

/// `sha256:abcd1234…`: the algorithm and enough of the digest to tell versions apart.
fn short_hash(hash: &str) -> String {
    let (algorithm, digest) = hash.split_once(':').unwrap_or(("", hash));
    let prefix = if algorithm.is_empty() {
        String::new()
    } else {
        format!("{algorithm}:")
    };
    match digest.char_indices().nth(8) {
        Some((end, _)) => format!("{prefix}{}…", &digest[..end]),
        None => format!("{prefix}{digest}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_shortened_and_names_escaped() {
        assert_eq!(short_hash("sha256:abcd1234ef567890"), "sha256:abcd1234…");
        assert_eq!(short_hash("sha256:abcd"), "sha256:abcd");
        assert_eq!(short_hash("abcd1234ef"), "abcd1234…");
        assert_eq!(percent_encode("search_issues-v2.1"), "search_issues-v2.1");
        assert_eq!(percent_encode("a/b c"), "a%2Fb%20c");
    }
}
