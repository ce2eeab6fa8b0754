//! Streamable HTTP (MCP 2025-03-26 … 2025-11-25): one POST per message, answered with JSON
//! or an SSE stream that ends with the response; a GET stream for whatever the server
//! sends unprompted; `Mcp-Session-Id` ties them together.

use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use airlock_core::config::mcp::McpServer;
use airlock_core::sse::{SseFramer, event_data};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::Value;
use tokio::task::JoinHandle;

use super::{Hello, Mux, Pending, Route, UpstreamError, refuse};
use crate::mcp::{SESSION, lock};
use crate::upstream::{self, Client};

const VERSION: &str = "mcp-protocol-version";

pub struct HttpLink {
    pub mux: Mux,
    client: Client,
    pub(super) server: String,
    url: Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
    session: OnceLock<HeaderValue>,
    version: OnceLock<HeaderValue>,
    listener: Mutex<Option<JoinHandle<()>>>,
}

impl HttpLink {
    pub async fn open(
        client: Client,
        server: &McpServer,
        url: &str,
        hello: &Hello,
    ) -> Result<Arc<HttpLink>, UpstreamError> {
        let garbage = |detail: String| UpstreamError::Garbage {
            server: server.name.clone(),
            detail,
        };
        let url: Uri = url.parse().map_err(|_| garbage("bad url".into()))?;
        let link = Arc::new(HttpLink {
            mux: Mux::default(),
            client,
            server: server.name.clone(),
            url,
            headers: header_pairs(server),
            session: OnceLock::new(),
            version: OnceLock::new(),
            listener: Mutex::new(None),
        });
        let pending = link
            .mux
            .prepare("initialize", Some(hello.initialize_params()), None);
        let response = link.exchange(pending, hello.timeout).await?;
        let version = response["result"]["protocolVersion"]
            .as_str()
            .ok_or_else(|| garbage(format!("initialize failed: {}", response["error"])))?;
        if let Ok(v) = HeaderValue::from_str(version) {
            let _ = link.version.set(v);
        }
        link.send(super::jsonrpc::notification(
            "notifications/initialized",
            None,
        ))
        .await?;
        let listener = tokio::spawn(listen(Arc::downgrade(&link)));
        *lock(&link.listener) = Some(listener);
        Ok(link)
    }

    pub async fn request(
        &self,
        pending: Pending,
        timeout: Duration,
    ) -> Result<Value, UpstreamError> {
        self.exchange(pending, timeout).await
    }

    async fn exchange(&self, pending: Pending, timeout: Duration) -> Result<Value, UpstreamError> {
        let id = pending.id;
        let body = Bytes::from(pending.message.to_string());
        let io = async {
            let res = self.call(Method::POST, Some(body)).await?;
            self.consume(res, Route::Request(id)).await
        };
        self.mux
            .exchange(pending, &self.server, timeout, true, io)
            .await
    }

    pub async fn send(&self, message: Value) -> Result<(), UpstreamError> {
        let res = self
            .call(Method::POST, Some(Bytes::from(message.to_string())))
            .await?;
        // A 202 has no body; a server that answers with a stream anyway is drained.
        self.consume(res, Route::Unsolicited).await
    }

    pub async fn close(&self) {
        if let Some(l) = lock(&self.listener).take() {
            l.abort();
        }
        if self.session.get().is_some() {
            let _ =
                tokio::time::timeout(Duration::from_secs(2), self.call(Method::DELETE, None)).await;
        }
    }

    async fn call(
        &self,
        method: Method,
        body: Option<Bytes>,
    ) -> Result<http::Response<Incoming>, UpstreamError> {
        let has_body = body.is_some();
        let body = Full::new(body.unwrap_or_default());
        let mut req = upstream::request(method.clone(), self.url.clone(), body);
        let headers = req.headers_mut();
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
        let accept = if method == Method::GET {
            "text/event-stream"
        } else {
            "application/json, text/event-stream"
        };
        headers.insert(header::ACCEPT, HeaderValue::from_static(accept));
        if has_body {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        if let Some(s) = self.session.get() {
            headers.insert(SESSION, s.clone());
        }
        if let Some(v) = self.version.get() {
            headers.insert(VERSION, v.clone());
        }
        let res = self
            .client
            .request(req)
            .await
            .map_err(|e| UpstreamError::Unavailable {
                server: self.server.clone(),
                detail: if e.is_connect() {
                    "the connection was refused".into()
                } else {
                    "the connection failed".into()
                },
            })?;
        let status = res.status();
        if status == StatusCode::NOT_FOUND && self.session.get().is_some() {
            return Err(UpstreamError::SessionExpired {
                server: self.server.clone(),
            });
        }
        if !status.is_success() {
            // Never relay an upstream 401 and its WWW-Authenticate: the agent would try
            // to sign in to the upstream's authorization server.
            return Err(UpstreamError::Refused {
                server: self.server.clone(),
                status: status.as_u16(),
            });
        }
        if self.session.get().is_none()
            && let Some(s) = res.headers().get(SESSION)
        {
            let _ = self.session.set(s.clone());
        }
        Ok(res)
    }

    /// Reads a response body (JSON or SSE) to its end and dispatches each message (the
    /// caller stops waiting for the end soon after a request's response has arrived).
    async fn consume(
        &self,
        res: http::Response<Incoming>,
        route: Route,
    ) -> Result<(), UpstreamError> {
        let garbage = |detail: &str| UpstreamError::Garbage {
            server: self.server.clone(),
            detail: detail.into(),
        };
        let is_sse = res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let mut body = res.into_body();
        if !is_sse {
            let bytes = body
                .collect()
                .await
                .map_err(|_| garbage("the answer broke off"))?
                .to_bytes();
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(());
            }
            let msg: Value =
                serde_json::from_slice(&bytes).map_err(|_| garbage("the answer is not JSON"))?;
            self.deliver(msg, route).await;
            return Ok(());
        }
        let mut framer = SseFramer::default();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| UpstreamError::Unavailable {
                server: self.server.clone(),
                detail: "the stream broke off".into(),
            })?;
            let Ok(chunk) = frame.into_data() else {
                continue;
            };
            for event in framer.push(chunk) {
                let Some(data) = event_data(&event).filter(|d| !d.is_empty()) else {
                    continue;
                };
                let msg: Value = serde_json::from_slice(&data)
                    .map_err(|_| garbage("an event of the stream is not JSON"))?;
                self.deliver(msg, route).await;
            }
        }
        Ok(())
    }

    async fn deliver(&self, msg: Value, route: Route) {
        if let Some(orphan) = self.mux.dispatch(msg, route) {
            let _ = Box::pin(self.send(refuse(&orphan))).await;
        }
    }
}

/// The standalone GET stream: notifications and requests that belong to no call. A server
/// that offers none answers 405; a stream that ends is reopened while the link lives, after
/// a pause that grows while streams fail or end at once.
async fn listen(link: Weak<HttpLink>) {
    const FIRST_PAUSE: Duration = Duration::from_millis(500);
    let mut pause = FIRST_PAUSE;
    loop {
        let Some(l) = link.upgrade() else { return };
        match l.call(Method::GET, None).await {
            Ok(res) => {
                let opened = std::time::Instant::now();
                let _ = l.consume(res, Route::Unsolicited).await;
                pause = if opened.elapsed() < Duration::from_secs(1) {
                    (pause * 2).min(Duration::from_secs(30))
                } else {
                    FIRST_PAUSE
                };
            }
            Err(UpstreamError::Refused { status: 405, .. }) => return,
            Err(UpstreamError::SessionExpired { .. }) => return,
            Err(_) => pause = (pause * 2).min(Duration::from_secs(30)),
        }
        drop(l);
        tokio::time::sleep(pause).await;
    }
}

pub(super) fn header_pairs(server: &McpServer) -> Vec<(HeaderName, HeaderValue)> {
    server
        .headers
        .iter()
        .map(|(k, v)| {
            let name = HeaderName::from_bytes(k.as_bytes()).expect("config checked the name");
            let mut value = HeaderValue::from_str(v.expose()).expect("config checked the value");
            value.set_sensitive(true);
            (name, value)
        })
        .collect()
}
