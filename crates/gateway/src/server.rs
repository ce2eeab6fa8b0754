//! Listeners and lifecycle: the agent-facing gateway (HTTP/1.1 and h2c) and the admin
//! listener on their own sockets; graceful shutdown that stops accepting, lets calls in
//! flight finish (bounded), then flushes the ledger.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use airlock_core::{Denial, Reason};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::gateway::Gateway;
use crate::http::{Body, text_response};
use crate::llm::errors::{ErrorStyle, render};
use crate::{admin, connection, llm, reload};

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
    /// Stops accepting; closes idle connections at once and gives calls in flight up to
    /// `grace`; then cuts what still runs (recorded as cancelled, reason `shutdown`) and
    /// flushes the ledger.
    pub async fn shutdown(self, grace: Duration) {
        let gateway = &self.gateway;
        gateway.stopping.send_replace(true);
        for task in self.tasks {
            if tokio::time::timeout(Duration::from_secs(1), task)
                .await
                .is_err()
            {
                tracing::warn!("a listener did not stop in time");
            }
        }
        let (mut connections, mut tunnels) =
            (gateway.connections.subscribe(), gateway.tunnels.subscribe());
        let drained = tokio::time::timeout(grace, async {
            let _ = connections.wait_for(|n| *n == 0).await;
            let _ = tunnels.wait_for(|n| *n == 0).await;
        })
        .await;
        if drained.is_err() {
            tracing::warn!("calls still in flight after the shutdown grace period; cutting them");
        }
        gateway.cut.send_replace(true);
        // Cut connections settle their calls as they drop: wait for that, briefly.
        let _ = tokio::time::timeout(CUT_WAIT, connections.wait_for(|n| *n == 0)).await;
        // stdio MCP servers are children of the gateway: they end with it.
        gateway.mcp.sessions.close_all().await;
        let _ = tokio::time::timeout(CUT_WAIT, tunnels.wait_for(|n| *n == 0)).await;
        gateway.mcp.stdio.stop_all();
        if let Err(e) = gateway.ledger.flush().await {
            tracing::error!(error = %e, "ledger flush at shutdown failed");
        }
        if let Some(traces) = &gateway.traces {
            traces.shutdown().await;
        }
    }
}

/// How long cut connections and tunnels get to record their calls.
const CUT_WAIT: Duration = Duration::from_secs(2);

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
    gateway.bound(gateway_addr);
    let stopped = gateway.stopping.subscribe();
    // Budgets and suspensions resume from the ledger, never from zero.
    if let Err(e) = crate::rebuild::rebuild(&gateway).await {
        tracing::error!("rebuilding counters from the ledger failed: {e}");
    }
    gateway.refresh_suspensions().await;
    let mut tasks = vec![
        tokio::spawn(accept(
            agents,
            gateway.clone(),
            route_gateway,
            stopped.clone(),
        )),
        tokio::spawn(accept(
            admin,
            gateway.clone(),
            admin::handle,
            stopped.clone(),
        )),
    ];
    if let Some(egress) = egress {
        tasks.push(tokio::spawn(accept(
            egress,
            gateway.clone(),
            crate::egress::handle,
            stopped.clone(),
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
) where
    F: Fn(Arc<Gateway>, Request<Incoming>) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
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
                let serve = move |req| route(gw.clone(), req);
                tokio::spawn(connection::serve(stream, gateway.clone(), serve));
            }
            _ = stopped.changed() => return,
        }
    }
}
