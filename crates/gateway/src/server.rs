//! Listeners and lifecycle: the agent-facing gateway (HTTP/1.1 and h2c) and the admin
//! listener on their own sockets; graceful shutdown that stops accepting, lets calls in
//! flight finish (bounded), then flushes the ledger.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use airlock_core::{Denial, Reason};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::gateway::Gateway;
use crate::http::{Body, text_response};
use crate::llm::errors::{ErrorStyle, render};
use crate::{admin, llm, reload};

/// Total request-header size over which a client gets 431.
const MAX_HEADER_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr} ({role}): {source}")]
    Bind {
        role: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A started Airlock: its bound addresses and the handle to stop it.
pub struct Running {
    pub gateway_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    /// The egress proxy, when `listen.egress` is set.
    pub egress_addr: Option<SocketAddr>,
    pub gateway: Arc<Gateway>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops accepting, waits up to `grace` for calls in flight, and flushes the ledger.
    pub async fn shutdown(self, grace: Duration) {
        self.gateway.stopping.send_replace(true);
        for task in self.tasks {
            if tokio::time::timeout(grace + Duration::from_secs(1), task)
                .await
                .is_err()
            {
                tracing::warn!("a listener did not stop in time");
            }
        }
        // stdio MCP servers are children of the gateway: they end with it.
        self.gateway.mcp.sessions.close_all().await;
        // Tunnels saw `stopping` and close; their events must reach the ledger first.
        let mut tunnels = self.gateway.tunnels.subscribe();
        let _ = tokio::time::timeout(grace, tunnels.wait_for(|n| *n == 0)).await;
        self.gateway.mcp.stdio.stop_all();
        if let Err(e) = self.gateway.ledger.flush().await {
            tracing::error!(error = %e, "ledger flush at shutdown failed");
        }
        if let Some(traces) = &self.gateway.traces {
            traces.shutdown().await;
        }
    }
}

/// How agents' HTTP connections are served (HTTP/1.1 and HTTP/2, header limits), on the
/// listeners and inside intercepted TLS alike.
pub(crate) fn connection_builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .max_header_list_size(MAX_HEADER_BYTES as u32);
    builder
}

async fn bind(role: &'static str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { role, addr, source })
}

/// Binds the listeners of the gateway's current config and serves until `shutdown`.
/// With `config_path`, the file is watched and reloaded when it changes.
pub async fn start(
    gateway: Arc<Gateway>,
    config_path: Option<PathBuf>,
    grace: Duration,
) -> Result<Running, StartError> {
    let listen = gateway.runtime().config.listen.clone();
    let agents = bind("gateway", listen.gateway).await?;
    let admin = bind("admin", listen.admin).await?;
    let egress = match listen.egress {
        Some(addr) => Some(bind("egress", addr).await?),
        None => None,
    };
    let egress_addr = egress.as_ref().zip(listen.egress).map(|(l, a)| local(l, a));
    let (gateway_addr, admin_addr) = (local(&agents, listen.gateway), local(&admin, listen.admin));
    let stopped = gateway.stopping.subscribe();
    // Budgets and suspensions resume from the ledger, never from zero.
    if let Err(e) = crate::rebuild::rebuild(&gateway).await {
        tracing::error!("rebuilding counters from the ledger failed: {e}");
    }
    // The tokenizer tables take a moment to load: not on the first budgeted call.
    let config = &gateway.runtime().config;
    if config
        .agents
        .iter()
        .any(|a| crate::controls::Needs::of(config, a).estimate)
    {
        tokio::task::spawn_blocking(airlock_core::tokens::warm_up);
    }

    let mut tasks = vec![
        tokio::spawn(accept(
            agents,
            gateway.clone(),
            route_gateway,
            stopped.clone(),
            grace,
        )),
        tokio::spawn(accept(
            admin,
            gateway.clone(),
            admin::handle,
            stopped.clone(),
            grace,
        )),
    ];
    if let Some(egress) = egress {
        tasks.push(tokio::spawn(accept(
            egress,
            gateway.clone(),
            crate::egress::handle,
            stopped.clone(),
            grace,
        )));
    }
    tasks.push(tokio::spawn(reload::refresh_keys(
        gateway.clone(),
        stopped.clone(),
    )));
    if let Some(path) = config_path {
        tasks.push(tokio::spawn(reload::watch(gateway.clone(), path, stopped)));
    }
    tracing::info!(%gateway_addr, %admin_addr, egress_addr = ?egress_addr, "airlock listening");
    Ok(Running {
        gateway_addr,
        egress_addr,
        admin_addr,
        gateway,
        tasks,
    })
}

fn local(listener: &TcpListener, fallback: SocketAddr) -> SocketAddr {
    listener.local_addr().unwrap_or(fallback)
}

async fn route_gateway(gateway: Arc<Gateway>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path();
    if path.starts_with("/v1/")
        || path == "/chat/completions"
        || path == "/responses"
        || path == "/embeddings"
    {
        llm::handle(gateway, req, llm::Entry::BaseUrl).await
    } else if path == "/mcp" || path.starts_with("/mcp/") {
        crate::mcp::handle(gateway, req).await
    } else if path.starts_with("/a2a/") {
        crate::a2a::handle(gateway, req).await
    } else if path == "/" {
        text_response(
            StatusCode::OK,
            "Airlock gateway: LLM APIs under /v1/, MCP at /mcp\n",
        )
    } else {
        render(
            ErrorStyle::OpenAi,
            &Denial::new(Reason::NotFound, format!("no route for {path}")),
        )
    }
}

async fn accept<F, Fut>(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    route: F,
    mut stopped: watch::Receiver<bool>,
    grace: Duration,
) where
    F: Fn(Arc<Gateway>, Request<Incoming>) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let builder = connection_builder();
    let graceful = GracefulShutdown::new();

    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _peer) = match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let gw = gateway.clone();
                let service = service_fn(move |req| {
                    let gw = gw.clone();
                    async move { Ok::<_, Infallible>(route(gw, req).await) }
                });
                // With upgrades: the egress proxy hands CONNECT connections to tunnels.
                let conn = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            _ = stopped.changed() => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("calls still in flight after the shutdown grace period; closing them");
    }
}
