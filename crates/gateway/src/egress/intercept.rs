//! Interception. For a host in `egress.intercept` the proxy answers the `CONNECT` itself,
//! ends the agent's TLS with a certificate its CA issues for that host, and hands each
//! request inside to the LLM pipeline as if it had come to `/v1/...`: identity from the
//! `CONNECT`'s `Proxy-Authorization`, then the same access rules, budgets, rate limits,
//! loop guard, content guards, metering and ledger; the request goes to the mapped
//! provider. The intercepted host itself is never resolved nor connected to.

use std::sync::Arc;

use airlock_core::config::Agent;
use airlock_core::config::egress::Intercept;
use airlock_core::{Denial, Kind, Reason};
use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::ServerConfig;
use serde_json::json;
use tokio_rustls::TlsAcceptor;

use super::tunnel::OpenTunnel;
use super::{decide, refusal};
use crate::gateway::Gateway;
use crate::http::{Body, full};
use crate::identity::proxy_key;
use crate::llm::{self, Entry};
use crate::pipeline::{CallGuard, Ending};

/// A client that opened the tunnel but does not finish its TLS handshake by then is dropped.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What every request inside one intercepted connection shares.
pub struct Interception {
    /// The agent's Airlock key from the `CONNECT`: each request is identified with it
    /// again, so a key revoked meanwhile stops the next request.
    pub key: String,
    pub host: String,
    pub rule: Intercept,
}

/// Answers a `CONNECT` to an intercepted host, or a plain-HTTP request to one (which needs
/// no TLS ended: it goes through the pipeline as it is).
pub async fn open(
    gateway: Arc<Gateway>,
    req: Request<Incoming>,
    host: String,
    port: u16,
    rule: Intercept,
) -> Response<Body> {
    let (key, agent, tls) = match admit(&gateway, &req, &host, port).await {
        Ok(admitted) => admitted,
        Err((agent, d)) => {
            let operation = req.method().to_string();
            return refuse(&gateway, &operation, req.headers(), &host, port, agent, d).await;
        }
    };
    let interception = Arc::new(Interception { key, host, rule });
    let Some(tls) = tls else {
        return llm::handle(gateway, req, Entry::Intercepted(interception)).await;
    };
    gateway.tunnels.send_modify(|n| *n += 1);
    tokio::spawn(async move {
        let _open = OpenTunnel(gateway.clone());
        let Ok(upgraded) = hyper::upgrade::on(req).await else {
            return;
        };
        let accept = TlsAcceptor::from(tls).accept(TokioIo::new(upgraded));
        let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, accept).await {
            Ok(Ok(s)) => s,
            Err(_) => {
                tracing::debug!(agent = %agent.id, "an intercepted connection sent no TLS handshake in time");
                return;
            }
            Ok(Err(e)) => {
                tracing::warn!(
                    agent = %agent.id,
                    host = %interception.host,
                    error = %e,
                    "an agent's TLS handshake with the intercepted host failed: it does not trust Airlock's CA, or it pins certificates (remove the host from egress.intercept to exempt it)"
                );
                return;
            }
        };
        let served = gateway.clone();
        let route = move |req| {
            let (gateway, interception) = (served.clone(), interception.clone());
            async move { llm::handle(gateway, req, Entry::Intercepted(interception)).await }
        };
        // Served like the gateway's own connections: the same limits, shutdown and cut.
        crate::connection::serve(stream, gateway, route).await;
    });
    Response::new(full(Bytes::new()))
}

/// The agent's key and the agent, and for a `CONNECT` the TLS config to end it with; or
/// why not (with the agent when it is known).
async fn admit(
    gateway: &Gateway,
    req: &Request<Incoming>,
    host: &str,
    port: u16,
) -> Result<(String, Arc<Agent>, Option<Arc<ServerConfig>>), (Option<Arc<Agent>>, Denial)> {
    let runtime = gateway.runtime();
    let key = proxy_key(req.headers());
    let Some((key, agent)) = key.and_then(|k| runtime.keys.identify(&k).map(|a| (k, a))) else {
        let d = Denial::new(
            Reason::Unauthorized,
            "the proxy needs the agent's Airlock key: Proxy-Authorization Basic with the key as password (HTTPS_PROXY=http://agent:KEY@host:port)",
        );
        return Err((None, d));
    };
    let refused = |d: Denial| (Some(agent.clone()), d);
    decide(&runtime.config, &agent, host, port).map_err(refused)?;
    if req.method() != http::Method::CONNECT {
        return Ok((key, agent, None));
    }
    let tls = match &runtime.config.egress.ca {
        Some(files) => gateway
            .authority(files)
            .await
            .and_then(|ca| ca.server_config(host)),
        None => Err("no egress.ca is configured".to_owned()),
    };
    let tls = tls.map_err(|e| {
        refused(Denial::new(
            Reason::UpstreamUnavailable,
            format!("the interception CA is not usable ({e}); `airlock ca init` makes one"),
        ))
    })?;
    Ok((key, agent, Some(tls)))
}

/// A refused request to an intercepted host: recorded like any egress refusal.
async fn refuse(
    gateway: &Arc<Gateway>,
    operation: &str,
    headers: &HeaderMap,
    host: &str,
    port: u16,
    agent: Option<Arc<Agent>>,
    d: Denial,
) -> Response<Body> {
    let mut guard = CallGuard::open(gateway.clone(), Kind::Egress, operation, headers).await;
    let call = guard.call();
    call.agent = agent;
    call.host = Some(host.to_owned());
    call.extra.insert("host".into(), json!(host));
    call.extra.insert("port".into(), json!(port));
    call.extra.insert("intercepted".into(), json!(true));
    guard.finish(Ending::denied(&d));
    refusal(&d)
}
