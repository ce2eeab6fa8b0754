//! The pooled HTTP client for upstream providers: HTTP/1.1 and HTTP/2 (ALPN) over rustls
//! with the Mozilla root set, plain HTTP for local servers.

use bytes::Bytes;
use http::{HeaderName, Method, Request, Uri};
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub type Client = hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

pub fn client() -> Client {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(std::time::Duration::from_secs(10)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        .expect("ring offers the default TLS versions")
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_idle_timeout(std::time::Duration::from_secs(90))
        .build(https)
}

/// A request to an upstream whose URL the caller has parsed. Unlike `Request::builder()`,
/// which defers a bad URL to an error its `headers_mut()` hides as `None`, nothing here can
/// fail: a URL from config or a remote agent is checked where it is parsed, and its error
/// answered in the caller's protocol.
pub fn request<B>(method: Method, uri: Uri, body: B) -> Request<B> {
    let mut req = Request::new(body);
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    req
}

/// The egress proxy's client for plain HTTP: connections kept alive per checked address.
/// Requests name the address Airlock resolved and checked (an IP literal, so the connector
/// never resolves a name again) and keep the agent's `Host`.
pub type EgressClient = hyper_util::client::legacy::Client<HttpConnector, crate::http::Body>;

pub fn egress_client() -> EgressClient {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(Some(EGRESS_CONNECT_TIMEOUT));
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_idle_timeout(std::time::Duration::from_secs(90))
        .pool_max_idle_per_host(32)
        .build(http)
}

/// How long the egress proxy waits for a destination to accept a connection.
pub const EGRESS_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Request headers never passed upstream: hop-by-hop headers, the agent's credentials,
/// and ones Airlock sets itself.
pub fn is_forwardable_request_header(name: &HeaderName) -> bool {
    !matches!(
        name.as_str(),
        "host"
            | "authorization"
            | "x-api-key"
            | "proxy-authorization"
            | "content-length"
            | "connection"
            | "keep-alive"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "accept-encoding"
            | "cookie"
    ) && !name.as_str().starts_with("x-airlock-")
        && !name.as_str().starts_with("proxy-")
}

/// Response headers not relayed to the agent: hop-by-hop headers and provider cookies.
pub fn is_forwardable_response_header(name: &HeaderName) -> bool {
    !matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "transfer-encoding"
            | "upgrade"
            | "trailer"
            | "set-cookie"
            | "alt-svc"
    )
}
