//! stdio servers: a process Airlock starts from operator config (never from a request),
//! initialized once and shared by every session, newline-delimited JSON-RPC on its
//! stdin/stdout. A process that exits fails its calls at once and is started again on the
//! next use, after a backoff that grows while it keeps failing.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use airlock_core::config::mcp::{McpServer, Transport};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::Mutex;

use super::{Hello, Mux, Pending, Route, UpstreamError, jsonrpc, refuse};

/// Environment a server inherits from the gateway; the rest of it (provider keys
/// included) stays with the gateway. Config `env` adds to this.
const INHERITED_ENV: &[&str] = &[
    "PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "USER",
];
const MIN_BACKOFF: Duration = Duration::from_millis(250);
/// Starting an interpreter takes a while (a Python server, ~2 s): more than a call may.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub struct StdioProcess {
    pub mux: Mux,
    server: String,
    stdin: Mutex<ChildStdin>,
    alive: Arc<AtomicBool>,
    _child: Child,
}

impl StdioProcess {
    pub async fn request(
        &self,
        pending: Pending,
        timeout: Duration,
    ) -> Result<Value, UpstreamError> {
        let line = pending.message.clone();
        let io = self.write(&line);
        self.mux
            .exchange(pending, &self.server, timeout, false, io)
            .await
    }

    pub async fn send(&self, message: Value) -> Result<(), UpstreamError> {
        self.write(&message).await
    }

    pub fn alive(&self) -> bool {
        self.alive.load(Ordering::Relaxed)
    }

    async fn write(&self, message: &Value) -> Result<(), UpstreamError> {
        // serde_json never writes a raw newline inside a value, so one line is one message.
        let mut line = message.to_string().into_bytes();
        line.push(b'\n');
        let mut stdin = self.stdin.lock().await;
        let written = async {
            stdin.write_all(&line).await?;
            stdin.flush().await
        };
        written.await.map_err(|_| UpstreamError::Unavailable {
            server: self.server.clone(),
            detail: "the process is not running".into(),
        })
    }
}

/// The running process of each stdio server, started on demand.
#[derive(Default)]
pub struct Supervisors {
    slots: std::sync::Mutex<HashMap<String, Arc<Mutex<Slot>>>>,
}

#[derive(Default)]
struct Slot {
    /// The command line the process was started from; a reload that changes it restarts.
    started_as: Option<Transport>,
    process: Option<Arc<StdioProcess>>,
    failures: u32,
    retry_at: Option<Instant>,
}

impl Supervisors {
    pub async fn process(
        &self,
        server: &McpServer,
        hello: &Hello,
    ) -> Result<Arc<StdioProcess>, UpstreamError> {
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(server.name.clone())
            .or_default()
            .clone();
        let mut slot = slot.lock().await;
        if let Some(p) = &slot.process
            && p.alive()
            && slot.started_as.as_ref() == Some(&server.transport)
        {
            return Ok(p.clone());
        }
        slot.process = None;
        if let Some(at) = slot.retry_at
            && Instant::now() < at
        {
            return Err(UpstreamError::Unavailable {
                server: server.name.clone(),
                detail: format!(
                    "the process exited; it restarts in {} ms",
                    (at - Instant::now()).as_millis()
                ),
            });
        }
        match start(server, hello).await {
            Ok(p) => {
                slot.failures = 0;
                slot.retry_at = None;
                slot.started_as = Some(server.transport.clone());
                slot.process = Some(p.clone());
                Ok(p)
            }
            Err(e) => {
                slot.failures += 1;
                let backoff = MIN_BACKOFF * 2u32.saturating_pow(slot.failures - 1);
                slot.retry_at = Some(Instant::now() + backoff.min(MAX_BACKOFF));
                Err(e)
            }
        }
    }

    /// Stops every process (on shutdown): dropping a child kills it.
    pub fn stop_all(&self) {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

async fn start(server: &McpServer, hello: &Hello) -> Result<Arc<StdioProcess>, UpstreamError> {
    let Transport::Stdio { command, args, env } = &server.transport else {
        unreachable!("only stdio servers are supervised");
    };
    let name = server.name.clone();
    let unavailable = |detail: String| UpstreamError::Unavailable {
        server: server.name.clone(),
        detail,
    };
    let mut cmd = Command::new(command);
    cmd.args(args)
        .env_clear()
        .envs(
            INHERITED_ENV
                .iter()
                .filter_map(|k| Some((k, std::env::var_os(k)?))),
        )
        .envs(env.iter().map(|(k, v)| (k, v.expose())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| unavailable(format!("cannot start `{command}`: {e}")))?;
    let stdin = child.stdin.take().expect("stdin is piped");
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let alive = Arc::new(AtomicBool::new(true));
    let process = Arc::new(StdioProcess {
        mux: Mux::default(),
        server: name.clone(),
        stdin: Mutex::new(stdin),
        alive: alive.clone(),
        _child: child,
    });
    tokio::spawn(read(stdout, Arc::downgrade(&process), alive, name.clone()));
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::debug!(server = %name, "{line}");
        }
    });

    // Sessions differ in what they can answer; the process is told everything a session
    // may be able to, and requests a session cannot take are refused per session.
    let hello = Hello {
        capabilities: json!({"sampling": {}, "elicitation": {}, "roots": {"listChanged": true}}),
        timeout: hello.timeout.max(START_TIMEOUT),
    };
    let pending = process
        .mux
        .prepare("initialize", Some(hello.initialize_params()), None);
    let response = process.request(pending, hello.timeout).await?;
    if response.get("result").is_none() {
        return Err(unavailable("initialize failed".into()));
    }
    process
        .send(jsonrpc::notification("notifications/initialized", None))
        .await?;
    tracing::info!(server = %server.name, "started the MCP server process");
    Ok(process)
}

async fn read(
    stdout: tokio::process::ChildStdout,
    process: std::sync::Weak<StdioProcess>,
    alive: Arc<AtomicBool>,
    server: String,
) {
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim().is_empty() {
            continue;
        }
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            tracing::warn!(server, "the MCP server wrote a line that is not JSON");
            continue;
        };
        let Some(p) = process.upgrade() else { return };
        if let Some(orphan) = p.mux.dispatch(msg, Route::Shared) {
            let _ = p.send(refuse(&orphan)).await;
        }
    }
    alive.store(false, Ordering::Relaxed);
    if let Some(p) = process.upgrade() {
        p.mux.fail_all();
    }
    tracing::warn!(server, "the MCP server process exited");
}
