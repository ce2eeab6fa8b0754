//! A fast, deterministic mock LLM provider speaking the OpenAI (Chat
//! Completions, Responses, embeddings, models) and Anthropic (Messages) wire
//! formats, for tests and benchmarks of the gateway.
//!
//! Requests can ask it to misbehave through directives: `x-mock-<key>`
//! headers or `<key>=<value>` path segments before `/v1/` (headers win).
//! Keys: `status`, `delay-ms`, `words`, `chunk-delay-ms`,
//! `disconnect-after`, `cached-tokens`, `reasoning-tokens`,
//! `cache-write-tokens`, `input-tokens`.

mod anthropic;
mod body;
mod chat;
mod directives;
mod embeddings;
mod errors;
mod input;
mod record;
mod reply;
mod responses;
mod router;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

pub use record::Recorded;
use record::Recorder;

/// A running mock server. Cloning shares the same server and log; the server
/// lives until its runtime shuts down.
#[derive(Clone)]
pub struct Mock {
    pub addr: SocketAddr,
    state: Arc<State>,
}

pub(crate) struct State {
    recorder: Recorder,
    ids: AtomicU64,
}

impl Mock {
    /// Binds 127.0.0.1:0 and serves in a tokio task on the current runtime,
    /// recording requests.
    pub async fn start() -> Mock {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0 for the mock");
        Mock::start_on(listener, true).await
    }

    /// Serves on `listener`; `record: false` keeps the benchmark path free
    /// of copying requests.
    pub async fn start_on(listener: TcpListener, record: bool) -> Mock {
        let addr = listener.local_addr().expect("mock listener address");
        let state = Arc::new(State {
            recorder: Recorder::new(record),
            ids: AtomicU64::new(0),
        });
        tokio::spawn(serve(listener, state.clone()));
        Mock { addr, state }
    }

    /// Requests received so far (oldest first; at most the last 1000).
    /// Empty when recording is off.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.recorder.snapshot()
    }

    pub fn clear(&self) {
        self.state.recorder.clear();
    }
}

async fn serve(listener: TcpListener, state: Arc<State>) {
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Usually out of file descriptors: back off instead of spinning.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // Stream deltas must leave as soon as they are written.
        let _ = stream.set_nodelay(true);
        let builder = builder.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| router::handle(state.clone(), request));
            // A failed connection is the client's problem or a deliberate
            // disconnect; neither concerns the server.
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
