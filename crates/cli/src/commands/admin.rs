//! Commands that act on a running gateway go through its admin API: the address comes
//! from the config (`listen.admin`), the token from `AIRLOCK_ADMIN_TOKEN`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::escape::{for_terminal, json_for_terminal};
use super::{env, load_config};

/// The admin API's token, from `AIRLOCK_ADMIN_TOKEN`.
pub fn token() -> anyhow::Result<String> {
    env("AIRLOCK_ADMIN_TOKEN")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| anyhow!("set AIRLOCK_ADMIN_TOKEN to the gateway's admin token"))
}

/// Sends one admin request and returns the JSON answer, or the API's error as an error.
pub fn call(
    config: Option<&Path>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let config = load_config(config)?;
    let token = token()?;
    let url = format!("http://{}{path}", config.listen.admin);
    let request = hyper::Request::builder()
        .method(method)
        .uri(&url)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            body.map(|b| b.to_string()).unwrap_or_default(),
        )))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let response = client
            .request(request)
            .await
            .with_context(|| format!("cannot reach the admin API at {url}"))?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            let message = value["error"]["message"].as_str().unwrap_or("no details");
            bail!(
                "{method} {}: HTTP {}: {}",
                for_terminal(path),
                status.as_u16(),
                for_terminal(message)
            );
        }
        Ok(value)
    })
}

/// Escapes everything but RFC 3986's unreserved characters, for a path segment or a query
/// value (the admin API decodes it).
pub fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Prints an answer as JSON (agents, keys): what agents named stays inert on a terminal.
pub fn print(value: &Value) -> anyhow::Result<ExitCode> {
    println!(
        "{}",
        json_for_terminal(&serde_json::to_string_pretty(value)?)
    );
    Ok(ExitCode::SUCCESS)
}
