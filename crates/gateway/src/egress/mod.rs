//! The egress proxy: an HTTP forward proxy for whatever agents call that is neither an LLM,
//! an MCP server nor another agent. `CONNECT host:port` opens a tunnel (HTTPS passes
//! through, never decrypted); an absolute-form request (`GET http://host/path`) is
//! forwarded. The agent signs in with `Proxy-Authorization` (its key as the password).
//!
//! Every destination passes the host policy, then is resolved **once**; each address is
//! checked against the private-address rules and the connection goes to the address that
//! was checked, so a second DNS answer cannot point the gateway somewhere else.

pub mod ca;
mod forward;
mod intercept;
mod tunnel;

pub use intercept::Interception;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use airlock_core::config::Agent;
use airlock_core::egress::addr::{Host, check, parse_host};
use airlock_core::egress::hosts::decide_for;
use airlock_core::fingerprint::fingerprint;
use airlock_core::keys::KeyDigest;
use airlock_core::{Config, Denial, Kind, Reason, http_url};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use serde_json::json;
use tokio::net::TcpStream;

use crate::controls::{self, Estimate, Needs};
use crate::gateway::Gateway;
use crate::http::{Body, drain_refused, full};
use crate::identity::proxy_key;
use crate::pipeline::{CallGuard, Ending};
use crate::upstream::EGRESS_CONNECT_TIMEOUT;

const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the agent asks to go: `CONNECT host:port` (443 if a client leaves the port out)
/// or an absolute `http://` URL (80 unless written). A written port that is not 1 to
/// 65535 is refused: `Uri` reports `:99999` as no port, which used to mean the default.
fn destination(method: &Method, uri: &http::Uri) -> Result<(String, u16), Denial> {
    let bad = |why: &str| Denial::new(Reason::BadRequest, why);
    let form = "this is a forward proxy: send `CONNECT host:port` or an absolute http:// URL";
    let connect = method == Method::CONNECT;
    let authority = match (connect, uri.scheme_str(), uri.authority()) {
        (true, _, Some(a)) | (false, Some("http"), Some(a)) => a,
        _ => return Err(bad(form)),
    };
    if authority.host().is_empty() {
        return Err(bad(form));
    }
    let port = http_url::written_port(authority)
        .map_err(|_| bad("the port must be a number from 1 to 65535"))?;
    let default = if connect { 443 } else { 80 };
    Ok((authority.host().to_string(), port.unwrap_or(default)))
}

pub async fn handle(gateway: Arc<Gateway>, req: Request<Incoming>) -> Response<Body> {
    let (host, port) = match destination(req.method(), req.uri()) {
        Ok(target) => target,
        Err(d) => return refusal(&d),
    };
    let name = match parse_host(&host) {
        Host::Name(n) => n,
        Host::Ip(ip) => ip.to_string(),
    };
    let rule = gateway
        .runtime()
        .config
        .egress
        .intercept
        .get(&name)
        .cloned();
    if let Some(rule) = rule {
        return intercept::open(gateway, req, name, port, rule).await;
    }
    let operation = req.method().to_string();
    let mut guard = CallGuard::open(gateway.clone(), Kind::Egress, &operation, req.headers()).await;
    let checked = admit(&mut guard, req.headers(), &host, port).await;
    let (addr, key) = match checked {
        Ok(admitted) => admitted,
        Err(d) => {
            guard.finish(Ending::denied(&d));
            let res = refusal(&d);
            drain_refused(req).await;
            return res;
        }
    };
    if req.method() != Method::CONNECT {
        return forward::send(guard, req, addr).await;
    }
    match connect(addr, &host, port).await {
        // The tunnel lives as long as the key it was opened with stays valid.
        Ok(upstream) => tunnel::open(guard, req, upstream, key),
        Err(d) => {
            guard.finish(Ending::denied(&d));
            refusal(&d)
        }
    }
}

/// Identity, policy, controls, then the address to connect to, resolved and checked, and
/// the digest of the key the agent presented.
async fn admit(
    guard: &mut CallGuard,
    headers: &HeaderMap,
    host: &str,
    port: u16,
) -> Result<(SocketAddr, KeyDigest), Denial> {
    let runtime = guard.runtime().clone();
    let config = &runtime.config;
    let (key, agent) = proxy_key(headers)
        .and_then(|k| runtime.keys.identify(&k).map(|agent| (KeyDigest::of(&k), agent)))
        .ok_or_else(|| {
            Denial::new(
                Reason::Unauthorized,
                "the proxy needs the agent's Airlock key: Proxy-Authorization Basic with the key as password (HTTPS_PROXY=http://agent:KEY@host:port)",
            )
        })?;
    let parsed = parse_host(host);
    let name = match &parsed {
        Host::Name(n) => n.clone(),
        Host::Ip(ip) => ip.to_string(),
    };
    guard.enter(agent.clone())?;
    {
        let call = guard.call();
        call.host = Some(name.clone());
        call.extra.insert("host".into(), json!(name));
        call.extra.insert("port".into(), json!(port));
    }
    if let Some(provider) = config.egress.ai_hosts.provider(&name, port) {
        // Shadow AI: an LLM call past the base URL. Recorded as one, unmetered.
        let call = guard.call();
        call.kind = Kind::Llm;
        call.provider = Some(provider.to_owned());
        call.extra.insert("intercepted".into(), json!(false));
    }
    decide(config, &agent, &name, port)?;
    let needs = Needs::of(config, &agent);
    let fp = needs.fingerprint.then(|| {
        let target = format!("{name}:{port}");
        let op = guard.call().operation.clone();
        fingerprint(&agent.id, Kind::Egress, &target, &op, None)
    });
    controls::admit(guard, &agent, fp, Estimate::default()).await?;
    Ok((resolve(config, &parsed, port).await?, key))
}

/// A tunnel's connection to the checked address.
async fn connect(addr: SocketAddr, name: &str, port: u16) -> Result<TcpStream, Denial> {
    match tokio::time::timeout(EGRESS_CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Ok(Err(e)) => Err(Denial::new(
            Reason::UpstreamUnavailable,
            format!("cannot connect to {name}:{port}: {e}"),
        )),
        Err(_) => Err(Denial::new(
            Reason::UpstreamTimeout,
            format!(
                "connecting to {name}:{port} took over {} s",
                EGRESS_CONNECT_TIMEOUT.as_secs()
            ),
        )),
    }
}

/// Holds a URL someone else will call on the agent's behalf (an A2A push-notification URL)
/// to the agent's own egress rules: the host policy, then every address it resolves to.
pub(crate) async fn vet_url(config: &Config, agent: &Agent, url: &str) -> Result<(), Denial> {
    let refused = |why: &str| Denial::new(Reason::NotAllowed, format!("`{url}` {why}"));
    let uri: http::Uri = url.parse().map_err(|_| refused("is not a URL"))?;
    let port = match (uri.scheme_str(), uri.port_u16()) {
        (Some("http" | "https"), Some(p)) => p,
        (Some("https"), None) => 443,
        (Some("http"), None) => 80,
        _ => return Err(refused("is not an http(s) URL")),
    };
    let host = parse_host(uri.host().ok_or_else(|| refused("names no host"))?);
    let name = match &host {
        Host::Name(n) => n.clone(),
        Host::Ip(ip) => ip.to_string(),
    };
    decide(config, agent, &name, port)?;
    resolve(config, &host, port).await.map(|_| ())
}

/// The host policy: global lists, then the agent's own.
fn decide(config: &Config, agent: &Agent, host: &str, port: u16) -> Result<(), Denial> {
    decide_for(
        &config.egress.hosts,
        agent.allow.hosts.as_deref(),
        &agent.deny.hosts,
        host,
        port,
    )
    .map_err(|refusal| {
        Denial::new(
            Reason::NotAllowed,
            format!(
                "agent `{}` may not reach {host}:{port} ({refusal})",
                agent.id
            ),
        )
    })
}

/// Resolves the destination once and checks every address it has: one private address
/// among public ones refuses the lot (a DNS answer is the attacker's to choose).
async fn resolve(config: &Config, host: &Host, port: u16) -> Result<SocketAddr, Denial> {
    let allow = &config.egress.allow_private;
    let (name, addrs): (Option<&str>, Vec<IpAddr>) = match host {
        Host::Ip(ip) => (None, vec![*ip]),
        Host::Name(n) => {
            let found =
                tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((n.as_str(), port)))
                    .await
                    .map_err(|_| {
                        Denial::new(
                            Reason::UpstreamTimeout,
                            format!("resolving {n} took too long"),
                        )
                    })?
                    .map_err(|_| {
                        Denial::new(Reason::UpstreamUnavailable, format!("{n} does not resolve"))
                    })?;
            (Some(n.as_str()), found.map(|a| a.ip()).collect())
        }
    };
    let shown = name.map_or_else(
        || addrs.first().map(IpAddr::to_string).unwrap_or_default(),
        str::to_string,
    );
    for ip in &addrs {
        if let Err(blocked) = check(name, *ip, allow) {
            return Err(Denial::new(
                Reason::PrivateAddress,
                format!(
                    "{shown} is a {} address; egress.allow_private must name it to reach it",
                    blocked.as_str()
                ),
            ));
        }
    }
    let ip = addrs.first().ok_or_else(|| {
        Denial::new(
            Reason::UpstreamUnavailable,
            format!("{shown} has no address"),
        )
    })?;
    Ok(SocketAddr::new(*ip, port))
}

/// A refusal as plain text, with the reason code in `x-airlock-reason` (proxies have no
/// body format of their own; clients show the status and the text). No key is a 407 that
/// asks for one.
fn refusal(d: &Denial) -> Response<Body> {
    let mut res = Response::new(full(Bytes::from(format!(
        "{}: {}\n",
        d.reason.code(),
        d.message
    ))));
    *res.status_mut() = StatusCode::from_u16(d.reason.status()).unwrap_or(StatusCode::FORBIDDEN);
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        "x-airlock-reason",
        HeaderValue::from_static(d.reason.code()),
    );
    if let Some(secs) = d.retry_after_secs {
        h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    for (name, value) in &d.hints {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(*name, v);
        }
    }
    if d.reason == Reason::Unauthorized {
        *res.status_mut() = StatusCode::PROXY_AUTHENTICATION_REQUIRED;
        res.headers_mut().insert(
            header::PROXY_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"airlock\""),
        );
    }
    res
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    fn target(method: Method, uri: &str) -> Result<(String, u16), Reason> {
        let uri: http::Uri = uri.parse().unwrap();
        destination(&method, &uri).map_err(|d| d.reason)
    }

    #[test]
    fn connect_and_http_targets_take_only_real_ports() {
        let ok = |host: &str, port| Ok((host.to_string(), port));
        assert_eq!(
            target(Method::CONNECT, "example.com:8443"),
            ok("example.com", 8443)
        );
        assert_eq!(
            target(Method::CONNECT, "example.com"),
            ok("example.com", 443)
        );
        assert_eq!(target(Method::CONNECT, "[::1]:443"), ok("[::1]", 443));
        assert_eq!(
            target(Method::GET, "http://example.com/x"),
            ok("example.com", 80)
        );
        assert_eq!(
            target(Method::GET, "http://example.com:81/"),
            ok("example.com", 81)
        );
        for (method, uri) in [
            (Method::CONNECT, "example.com:99999"),
            (Method::CONNECT, "example.com:65536"),
            (Method::CONNECT, "example.com:0"),
            (Method::CONNECT, "example.com:https"),
            (Method::CONNECT, "example.com:"),
            (Method::GET, "http://example.com:99999/"),
            (Method::GET, "https://example.com/"),
            (Method::GET, "/relative"),
        ] {
            assert_eq!(
                target(method.clone(), uri),
                Err(Reason::BadRequest),
                "{method} {uri}"
            );
        }
    }
}
