//! stdio servers: a process Airlock starts from operator config (never from a request),
//! one per server and agent — initialized once and shared by that agent's sessions, so no
//! agent ever sees another's traffic — newline-delimited JSON-RPC on its stdin/stdout. A
//! process that exits fails its calls at once and is started again on the next use, after
//! a backoff that grows while it keeps failing.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use airlock_core::config::mcp::{McpServer, Transport};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{Mutex, mpsc};

use super::{Hello, Mux, Pending, Route, UpstreamError, jsonrpc, refuse};
use crate::mcp::lock;

/// Environment a server inherits from the gateway; the rest of it (provider keys
/// included) stays with the gateway. Config `env` adds to this.
const INHERITED_ENV: &[&str] = &[
    "PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "USER",
];
const MIN_BACKOFF: Duration = Duration::from_millis(250);
/// Starting an interpreter takes a while (a Python server, ~2 s): more than a call may.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A process that exits sooner than this after its start failed to start, for the backoff.
const HEALTHY_AFTER: Duration = Duration::from_secs(30);
/// Whole lines waiting for the process's stdin.
const QUEUED_LINES: usize = 64;

pub struct StdioProcess {
    pub mux: Mux,
    pub(super) server: String,
    /// Whole lines for the one task that writes stdin: a caller that stops waiting can
    /// never leave half a message in the pipe.
    lines: mpsc::Sender<Vec<u8>>,
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

    /// Queues one message for the writer task.
    async fn write(&self, message: &Value) -> Result<(), UpstreamError> {
        // serde_json never writes a raw newline inside a value, so one line is one message.
        let mut line = message.to_string().into_bytes();
        line.push(b'\n');
        self.lines
            .send(line)
            .await
            .map_err(|_| UpstreamError::Unavailable {
                server: self.server.clone(),
                detail: "the process is not running".into(),
            })
    }
}

/// The running process of each (stdio server, agent), started on demand.
#[derive(Default)]
pub struct Supervisors {
    slots: std::sync::Mutex<HashMap<ProcessKey, Arc<Mutex<Slot>>>>,
}

/// (server, agent id): agents never share a process, so never see each other's traffic.
type ProcessKey = (String, String);

#[derive(Default)]
struct Slot {
    /// The command line the process was started from; a reload that changes it restarts.
    started_as: Option<Transport>,
    process: Option<Arc<StdioProcess>>,
    started_at: Option<Instant>,
    failures: u32,
    retry_at: Option<Instant>,
}

impl Slot {
    fn failed(&mut self) {
        self.failures += 1;
        let backoff = MIN_BACKOFF * 2u32.saturating_pow(self.failures - 1);
        self.retry_at = Some(Instant::now() + backoff.min(MAX_BACKOFF));
    }
}

impl Supervisors {
    /// The process of `server` for `agent`, started if it is not running.
    pub async fn process(
        &self,
        server: &McpServer,
        agent: &str,
        hello: &Hello,
    ) -> Result<Arc<StdioProcess>, UpstreamError> {
        let slot = lock(&self.slots)
            .entry((server.name.clone(), agent.to_string()))
            .or_default()
            .clone();
        let mut slot = slot.lock().await;
        if let Some(p) = slot.process.take() {
            if p.alive() && slot.started_as.as_ref() == Some(&server.transport) {
                slot.process = Some(p.clone());
                return Ok(p);
            }
            // A crash soon after the start counts as a failed start, so a crash loop
            // backs off; a process that ran a while restarts at once.
            if !p.alive() {
                match slot.started_at {
                    Some(t) if t.elapsed() < HEALTHY_AFTER => slot.failed(),
                    _ => {
                        slot.failures = 0;
                        slot.retry_at = None;
                    }
                }
            }
        }
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
                slot.retry_at = None;
                slot.started_as = Some(server.transport.clone());
                slot.started_at = Some(Instant::now());
                slot.process = Some(p.clone());
                Ok(p)
            }
            Err(e) => {
                slot.failed();
                Err(e)
            }
        }
    }

    /// Stops every process (on shutdown): dropping a child kills it.
    pub fn stop_all(&self) {
        lock(&self.slots).clear();
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
    let (lines, queued) = mpsc::channel(QUEUED_LINES);
    let process = Arc::new(StdioProcess {
        mux: Mux::default(),
        server: name.clone(),
        lines,
        alive: alive.clone(),
        _child: child,
    });
    tokio::spawn(write(stdin, queued));
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

/// The one writer of a process's stdin: each line is written whole or not at all. Ends
/// when the process is dropped (its queue closes) or its stdin breaks.
async fn write(mut stdin: ChildStdin, mut queued: mpsc::Receiver<Vec<u8>>) {
    while let Some(line) = queued.recv().await {
        if stdin.write_all(&line).await.is_err() || stdin.flush().await.is_err() {
            return;
        }
    }
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
