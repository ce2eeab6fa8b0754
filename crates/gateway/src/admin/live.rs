//! `GET /api/events/stream`: calls as they settle, as server-sent events — one `call` event
//! a call, in the shape of `/api/events` — filtered by `agent`, `kind` and `outcome`. A
//! reader that falls behind skips ahead and is told how many it missed; the stream ends when
//! the reader leaves or the gateway shuts down.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use super::{Filters, param};
use crate::gateway::Gateway;
use crate::http::{Body, sse_response};

/// Proxies between the reader and Airlock drop idle connections; a comment keeps it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub fn stream(gateway: &Arc<Gateway>, params: &[(String, String)]) -> Response<Body> {
    let agent = param(params, "agent").map(str::to_owned);
    let Filters { kind, outcome } = match Filters::read(params) {
        Ok(f) => f,
        Err(res) => return *res,
    };
    let wanted = move |e: &Value| {
        let is = |field: &str, want: &Option<String>| {
            want.as_deref().is_none_or(|w| e[field].as_str() == Some(w))
        };
        is("agent", &agent) && is("kind", &kind) && is("outcome", &outcome)
    };
    let mut calls = gateway.live.subscribe();
    let mut stopping = gateway.stopping.subscribe();
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        // The first bytes tell the reader the stream is open before any call settles.
        if tx.send(Bytes::from_static(b": live\n\n")).await.is_err() {
            return;
        }
        loop {
            let frame = tokio::select! {
                call = calls.recv() => match call {
                    Ok(e) if wanted(&e) => Bytes::from(format!("event: call\ndata: {e}\n\n")),
                    Ok(_) => continue,
                    Err(RecvError::Lagged(n)) => Bytes::from(format!(": skipped {n} calls\n\n")),
                    Err(RecvError::Closed) => return,
                },
                _ = tokio::time::sleep(KEEP_ALIVE) => Bytes::from_static(b": keep-alive\n\n"),
                _ = tx.closed() => return,
                _ = stopping.wait_for(|s| *s) => return,
            };
            if tx.send(frame).await.is_err() {
                return;
            }
        }
    });
    sse_response(rx)
}
