//! The deprecated HTTP+SSE transport (MCP 2024-11-05): a GET stream whose first event names
//! the URL to POST messages to; every server message, responses included, arrives on that
//! one stream. Losing the stream loses the session.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use airlock_core::config::mcp::McpServer;
use airlock_core::sse::{SseFramer, event_data, event_name};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Uri, header};
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{Hello, Mux, Pending, Route, UpstreamError, jsonrpc, refuse};
use crate::upstream::{self, Client};

pub struct SseLink {
    pub mux: Mux,
    client: Client,
    pub(super) server: String,
    endpoint: Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
    alive: Arc<AtomicBool>,
    reader: JoinHandle<()>,
}

impl SseLink {
    pub async fn open(
        client: Client,
        server: &McpServer,
        url: &str,
        hello: &Hello,
    ) -> Result<Arc<SseLink>, UpstreamError> {
        let name = server.name.clone();
        let unavailable = |detail: &str| UpstreamError::Unavailable {
            server: server.name.clone(),
            detail: detail.into(),
        };
        let url: Uri = url.parse().map_err(|_| unavailable("bad url"))?;
        let headers = super::http::header_pairs(server);
        let mut req = upstream::request(Method::GET, url.clone(), Full::new(Bytes::new()));
        req.headers_mut().extend(headers.iter().cloned());
        req.headers_mut().insert(
            header::ACCEPT,
            HeaderValue::from_static("text/event-stream"),
        );
        let res = tokio::time::timeout(hello.timeout, client.request(req))
            .await
            .map_err(|_| unavailable("no answer to the SSE request"))?
            .map_err(|_| unavailable("the connection failed"))?;
        if !res.status().is_success() {
            return Err(unavailable(&format!(
                "its SSE stream answered HTTP {}",
                res.status().as_u16()
            )));
        }

        // The reader needs the link, and the link needs the endpoint the reader finds
        // first: the reader gets a cell the link is put in once it exists.
        let cell = Arc::new(LinkCell::default());
        let alive = Arc::new(AtomicBool::new(true));
        let (found, endpoint) = oneshot::channel();
        let reader = tokio::spawn(read(
            res.into_body(),
            cell.clone(),
            alive.clone(),
            found,
            name.clone(),
        ));
        let endpoint = tokio::time::timeout(hello.timeout, endpoint)
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(|| unavailable("its SSE stream named no endpoint"))?;
        let endpoint = resolve(&url, &endpoint)
            .ok_or_else(|| unavailable("its endpoint is not on the server's own origin"))?;
        let link = Arc::new(SseLink {
            mux: Mux::default(),
            client,
            server: name,
            endpoint,
            headers,
            alive,
            reader,
        });
        cell.set(Arc::downgrade(&link));
        let pending = link
            .mux
            .prepare("initialize", Some(hello.initialize_params()), None);
        let response = link.request(pending, hello.timeout).await?;
        if response.get("result").is_none() {
            return Err(unavailable("initialize failed"));
        }
        link.send(jsonrpc::notification("notifications/initialized", None))
            .await?;
        Ok(link)
    }

    pub async fn request(
        &self,
        pending: Pending,
        timeout: Duration,
    ) -> Result<Value, UpstreamError> {
        let io = self.post(pending.message.to_string());
        self.mux
            .exchange(pending, &self.server, timeout, false, io)
            .await
    }

    pub async fn send(&self, message: Value) -> Result<(), UpstreamError> {
        self.post(message.to_string()).await
    }

    async fn post(&self, body: String) -> Result<(), UpstreamError> {
        let body = Full::new(Bytes::from(body));
        let mut req = upstream::request(Method::POST, self.endpoint.clone(), body);
        req.headers_mut().extend(self.headers.iter().cloned());
        req.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let unavailable = |detail: String| UpstreamError::Unavailable {
            server: self.server.clone(),
            detail,
        };
        let res = self
            .client
            .request(req)
            .await
            .map_err(|_| unavailable("the connection failed".into()))?;
        if !res.status().is_success() {
            return Err(UpstreamError::Refused {
                server: self.server.clone(),
                status: res.status().as_u16(),
            });
        }
        let _ = res.into_body().collect().await;
        Ok(())
    }

    pub fn close(&self) {
        self.reader.abort();
        self.alive.store(false, Ordering::Relaxed);
    }

    pub fn alive(&self) -> bool {
        self.alive.load(Ordering::Relaxed)
    }
}

impl Drop for SseLink {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// The link as the reader task sees it: set once the endpoint is known.
#[derive(Default)]
struct LinkCell(std::sync::OnceLock<std::sync::Weak<SseLink>>);

impl LinkCell {
    fn set(&self, link: std::sync::Weak<SseLink>) {
        let _ = self.0.set(link);
    }
}

async fn read(
    mut body: hyper::body::Incoming,
    cell: Arc<LinkCell>,
    alive: Arc<AtomicBool>,
    found: oneshot::Sender<String>,
    server: String,
) {
    let mut found = Some(found);
    let mut framer = SseFramer::default();
    while let Some(Ok(frame)) = body.frame().await {
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        for event in framer.push(chunk) {
            let Some(data) = event_data(&event) else {
                continue;
            };
            if event_name(&event) == Some(b"endpoint") {
                if let Some(f) = found.take() {
                    let _ = f.send(String::from_utf8_lossy(&data).trim().to_string());
                }
                continue;
            }
            let Ok(msg) = serde_json::from_slice::<Value>(&data) else {
                tracing::warn!(server, "an SSE event from the MCP server is not JSON");
                continue;
            };
            let Some(link) = cell.0.get().and_then(std::sync::Weak::upgrade) else {
                continue;
            };
            if let Some(orphan) = link.mux.dispatch(msg, Route::Shared) {
                let _ = link.send(refuse(&orphan)).await;
            }
        }
    }
    alive.store(false, Ordering::Relaxed);
    if let Some(link) = cell.0.get().and_then(std::sync::Weak::upgrade) {
        link.mux.fail_all();
    }
    tracing::info!(server, "the SSE stream of the MCP server ended");
}

/// The endpoint URL against the SSE URL; only the server's own origin is accepted, so an
/// upstream cannot send the gateway's posts elsewhere.
fn resolve(base: &Uri, endpoint: &str) -> Option<Uri> {
    if endpoint.starts_with('/') {
        let authority = base.authority()?;
        let scheme = base.scheme_str()?;
        return format!("{scheme}://{authority}{endpoint}").parse().ok();
    }
    let abs: Uri = endpoint.parse().ok()?;
    (abs.scheme() == base.scheme() && abs.authority() == base.authority()).then_some(abs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_stay_on_the_servers_origin() {
        let base: Uri = "http://127.0.0.1:8000/sse".parse().unwrap();
        assert_eq!(
            resolve(&base, "/messages/?session_id=ab").unwrap(),
            "http://127.0.0.1:8000/messages/?session_id=ab"
        );
        assert!(resolve(&base, "http://127.0.0.1:8000/m").is_some());
        assert!(resolve(&base, "http://169.254.169.254/m").is_none());
        assert!(resolve(&base, "https://127.0.0.1:8000/m").is_none());
    }
}
