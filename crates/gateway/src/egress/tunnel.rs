//! `CONNECT` tunnels: bytes both ways, counted, never read. A tunnel ends when both sides
//! have closed, when it has been idle too long, or when the gateway shuts down; then it is
//! one event with the bytes each way.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use airlock_core::keys::KeyDigest;

use crate::controls::now_ms;
use crate::gateway::Gateway;
use crate::http::{Body, full};
use crate::pipeline::{CallGuard, Ending};

/// A tunnel with no byte either way for this long is closed.
const IDLE: Duration = Duration::from_secs(300);

/// Answers `200` and, once the client's connection is handed over, pumps it.
/// `key` is the one the agent opened it with: the tunnel closes when it is revoked.
pub fn open(
    guard: CallGuard,
    req: Request<Incoming>,
    upstream: TcpStream,
    key: KeyDigest,
) -> Response<Body> {
    let mut stopping = guard.gateway().stopping.subscribe();
    let gateway = guard.gateway().clone();
    gateway.tunnels.send_modify(|n| *n += 1);
    tokio::spawn(async move {
        let _open = OpenTunnel(gateway.clone());
        let mut guard = guard;
        let client = match hyper::upgrade::on(req).await {
            Ok(upgraded) => TokioIo::new(upgraded),
            Err(e) => {
                tracing::debug!(error = %e, "the client left before its tunnel opened");
                return; // settled on drop as cancelled
            }
        };
        let counts = Counts::default();
        counts.last.store(now_ms(), Ordering::Relaxed);
        let (cr, cw) = tokio::io::split(client);
        let (ur, uw) = upstream.into_split();
        let both = async {
            tokio::join!(
                pump(cr, uw, &counts.up, &counts.last),
                pump(ur, cw, &counts.down, &counts.last)
            )
        };
        let agent = guard
            .call()
            .agent
            .as_ref()
            .map_or_else(String::new, |a| a.id.clone());
        tokio::select! {
            _ = both => {}
            _ = idle(&counts.last) => tracing::debug!("closed an idle tunnel"),
            _ = stopping.wait_for(|s| *s) => tracing::debug!("closed a tunnel at shutdown"),
            why = withdrawn(&gateway, &key, &agent) => {
                tracing::info!(agent = %agent, "closed a tunnel: {why}");
                guard.call().extra.insert("closed".into(), json!(why));
            }
        }
        let (up, down) = (
            counts.up.load(Ordering::Relaxed),
            counts.down.load(Ordering::Relaxed),
        );
        let call = guard.call();
        call.bytes_in = up;
        call.extra.insert("bytes_up".into(), json!(up));
        call.extra.insert("bytes_down".into(), json!(down));
        guard.finish(Ending {
            status: 200,
            reason: None,
            usage: Default::default(),
            bytes_out: down,
        });
    });
    Response::new(full(Bytes::new()))
}

/// Counts a tunnel as open until it is dropped (settled or not).
pub(super) struct OpenTunnel(pub(super) Arc<Gateway>);

impl Drop for OpenTunnel {
    fn drop(&mut self) {
        self.0.tunnels.send_modify(|n| *n = n.saturating_sub(1));
    }
}

#[derive(Default)]
struct Counts {
    up: AtomicU64,
    down: AtomicU64,
    /// Unix ms of the last byte either way.
    last: AtomicU64,
}

/// One direction: read, write, count, until the reader ends; then pass the end on.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    count: &AtomicU64,
    last: &AtomicU64,
) {
    // Big reads: a bulk transfer costs a system call per read and per write.
    let mut buf = vec![0u8; 128 * 1024];
    loop {
        last.store(now_ms(), Ordering::Relaxed);
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        count.fetch_add(n as u64, Ordering::Relaxed);
    }
    let _ = to.shutdown().await;
}

/// How often an open tunnel checks that its agent may still use it.
const RECHECK: Duration = Duration::from_secs(1);

/// Resolves, saying why, once the tunnel's key is revoked or its agent suspended: what was
/// allowed when it opened is not allowed for ever.
async fn withdrawn(gateway: &Gateway, key: &KeyDigest, agent: &str) -> &'static str {
    loop {
        tokio::time::sleep(RECHECK).await;
        if !gateway.runtime().keys.holds(key) {
            return "key_revoked";
        }
        if gateway.is_suspended(agent) {
            return "agent_suspended";
        }
    }
}

/// Resolves once nothing has moved for [`IDLE`].
async fn idle(last: &AtomicU64) {
    loop {
        let quiet = now_ms().saturating_sub(last.load(Ordering::Relaxed));
        let left = IDLE.as_millis() as u64 - quiet.min(IDLE.as_millis() as u64);
        if left == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(left)).await;
    }
}
