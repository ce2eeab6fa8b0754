//! A minimal HTTP client over real sockets for the mock's tests.

#![allow(dead_code)] // Each test crate uses a different subset.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Request};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::net::TcpStream;

pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    /// The body text, or the error that cut it short.
    pub body: Result<String, String>,
}

impl Answer {
    pub fn text(&self) -> &str {
        match &self.body {
            Ok(text) => text,
            Err(e) => panic!("body failed: {e}"),
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(self.text()).expect("JSON body")
    }
}

fn request(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Request<Full<Bytes>> {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "mock");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let bytes = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
    builder.body(Full::new(bytes)).expect("request")
}

async fn read(response: hyper::Response<hyper::body::Incoming>) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = match response.into_body().collect().await {
        Ok(collected) => Ok(String::from_utf8(collected.to_bytes().to_vec()).expect("UTF-8 body")),
        Err(e) => Err(e.to_string()),
    };
    Answer {
        status,
        headers,
        body,
    }
}

/// One HTTP/1.1 request on a fresh connection.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Answer {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let response = sender
        .send_request(request(method, path, headers, body))
        .await
        .expect("response head");
    read(response).await
}

pub async fn post(addr: SocketAddr, path: &str, body: &Value) -> Answer {
    send(addr, "POST", path, &[], Some(body)).await
}

/// One request over cleartext HTTP/2 with prior knowledge.
pub async fn send_h2(addr: SocketAddr, path: &str, body: &Value) -> Answer {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    let uri = format!("http://{addr}{path}");
    let response = sender
        .send_request(request("POST", &uri, &[], Some(body)))
        .await
        .expect("response head");
    read(response).await
}

/// The payloads of `data:` lines, in order.
pub fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|event| event.lines().find_map(|line| line.strip_prefix("data: ")))
        .map(str::to_owned)
        .collect()
}

/// `(event name, parsed data)` of named events, in order.
pub fn sse_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|event| !event.trim().is_empty())
        .map(|event| {
            let name = event
                .lines()
                .find_map(|line| line.strip_prefix("event: "))
                .expect("event name");
            let data = event
                .lines()
                .find_map(|line| line.strip_prefix("data: "))
                .expect("event data");
            (
                name.to_owned(),
                serde_json::from_str(data).expect("event JSON"),
            )
        })
        .collect()
}
