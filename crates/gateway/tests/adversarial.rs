//! What one hostile agent can do to the others, over real sockets: hold HTTP/2 streams
//! whose bodies never come, trickle bytes, open connections and say nothing, outlive a
//! shutdown. Each test asserts that the other agents are served and that nothing goes
//! unrecorded.

mod support;

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use airlock_core::keys::KeyDigest;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use support::{ADMIN, Harness, KEY, Options, boot, boot_with, json_body, read_json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const VICTIM: &str = "al-victim-key";

/// A second agent, `victim`, beside the attacking `bot`.
fn victim(extra: &str) -> String {
    format!(
        "  - id: victim\n    keys: [\"{}\"]\n{extra}",
        KeyDigest::of(VICTIM)
    )
}

fn chat() -> serde_json::Value {
    json!({"model": "mock/gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]})
}

/// A request body that announces 100 bytes and never sends one.
struct Never;

impl Body for Never {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Pending
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(100)
    }
}

/// The victim's ordinary call, and how long it took.
async fn victim_calls(h: &Harness) -> (u16, Duration) {
    let req = http::Request::post(h.url("/v1/chat/completions"))
        .header("authorization", format!("Bearer {VICTIM}"))
        .header("content-type", "application/json")
        .body(json_body(&chat()))
        .unwrap();
    let start = Instant::now();
    let res = tokio::time::timeout(Duration::from_secs(5), h.send(req))
        .await
        .expect("the victim's call was not answered within 5 s");
    let status = res.status().as_u16();
    let _ = res.into_body().collect().await;
    (status, start.elapsed())
}

/// An h2c connection of the attacker.
async fn h2<B>(h: &Harness) -> hyper::client::conn::http2::SendRequest<B>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let tcp = TcpStream::connect(h.running.gateway_addr).await.unwrap();
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    send
}

fn held_request(h: &Harness) -> http::Request<Never> {
    http::Request::post(h.url("/v1/chat/completions"))
        .header("authorization", format!("Bearer {KEY}"))
        .header("content-type", "application/json")
        .body(Never)
        .unwrap()
}

#[tokio::test]
async fn streams_held_open_by_one_agent_never_stall_another() {
    // A small ledger queue: before calls took their ledger place only once admitted, 200
    // held streams filled it and every other call waited for a body that never came.
    let options = Options {
        queue: Some(32),
        ..Options::default()
    };
    let h = boot_with(
        &victim("limits: { max_concurrent_per_agent: 100 }\n"),
        options,
    )
    .await;
    let mut refused = Vec::new();
    for _ in 0..2 {
        let mut send = h2(&h).await;
        for _ in 0..100 {
            let req = held_request(&h);
            send.ready().await.unwrap();
            let answer = send.send_request(req);
            refused.push(tokio::spawn(async move {
                let res = answer.await.ok()?;
                res.headers()
                    .get("x-airlock-reason")
                    .map(|v| v.to_str().unwrap_or("").to_owned())
            }));
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, took) = victim_calls(&h).await;
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(2), "the victim waited {took:?}");

    // Beyond its cap, the attacker's requests were refused at once, bodies unread; the
    // others are still waiting for bodies (well within `body_timeout`).
    let (mut rate_limited, mut waiting) = (0, 0);
    for task in refused {
        if task.is_finished() {
            assert_eq!(task.await.unwrap().as_deref(), Some("rate_limited"));
            rate_limited += 1;
        } else {
            waiting += 1;
            task.abort();
        }
    }
    assert_eq!(
        (rate_limited, waiting),
        (100, 100),
        "200 held requests against a cap of 100"
    );
}

#[tokio::test]
async fn a_suspended_agent_is_refused_before_its_body_is_read() {
    let h = boot("").await;
    let res = h
        .send(
            http::Request::post(format!(
                "http://{}/api/agents/bot/suspend",
                h.running.admin_addr
            ))
            .header("authorization", format!("Bearer {ADMIN}"))
            .body(Full::new(Bytes::new()))
            .unwrap(),
        )
        .await;
    assert_eq!(res.status(), 200);
    let mut send = h2(&h).await;
    let answer = tokio::time::timeout(Duration::from_secs(2), send.send_request(held_request(&h)))
        .await
        .expect("a suspended agent's call is answered without waiting for its body")
        .unwrap();
    assert_eq!(answer.status(), 429);
    assert_eq!(answer.headers()["x-airlock-reason"], "suspended");
}

/// Waits for the server to close `tcp`, answering nothing; the time it took.
async fn closed_within(tcp: &mut TcpStream, limit: Duration) -> Duration {
    let start = Instant::now();
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(limit, tcp.read(&mut buf)).await {
            Err(_) => panic!("the connection was still open after {limit:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return start.elapsed(),
            // HTTP/2 settings and the like.
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn silent_idle_and_trickling_connections_are_closed() {
    let h = boot("limits: { header_timeout: 1s, idle_timeout: 2s, body_timeout: 1s }\n").await;
    let addr = h.running.gateway_addr;

    // Connected, then nothing.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    // The HTTP/2 preface, then nothing.
    let mut preface = TcpStream::connect(addr).await.unwrap();
    preface
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    // A request's head, one byte at a time, never finished.
    let mut slow_head = TcpStream::connect(addr).await.unwrap();
    let trickle = tokio::spawn(async move {
        for b in b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n".iter() {
            if slow_head.write_all(&[*b]).await.is_err() {
                return slow_head;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        slow_head
    });
    closed_within(&mut silent, Duration::from_secs(4)).await;
    closed_within(&mut preface, Duration::from_secs(4)).await;
    let mut slow_head = trickle.await.unwrap();
    closed_within(&mut slow_head, Duration::from_secs(4)).await;

    // A served keep-alive connection, then idle.
    let mut kept = TcpStream::connect(addr).await.unwrap();
    kept.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = kept.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    closed_within(&mut kept, Duration::from_secs(5)).await;
}

/// A chat call of `length` body bytes whose first `first` arrive at once and the rest a
/// byte every `every`; the answer's head, read within `limit`.
async fn trickled_body(
    h: &Harness,
    length: usize,
    first: usize,
    every: Duration,
    limit: Duration,
) -> String {
    let mut tcp = TcpStream::connect(h.running.gateway_addr).await.unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {KEY}\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&vec![b' '; first]).await.unwrap();
    let (mut read, mut write) = tcp.into_split();
    tokio::spawn(async move {
        for _ in first..length {
            if write.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(every).await;
        }
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(limit, read.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("the trickled body was still being read after {limit:?}"))
            .unwrap();
        assert!(n > 0, "closed without an answer");
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&answer).to_lowercase()
}

#[tokio::test]
async fn a_body_trickled_a_byte_at_a_time_is_cut_and_recorded() {
    let h = boot("limits: { body_timeout: 1s }\n").await;
    let start = Instant::now();
    // Never a pause over the timeout, yet far under 1 KiB/s.
    let text = trickled_body(
        &h,
        100,
        0,
        Duration::from_millis(400),
        Duration::from_secs(5),
    )
    .await;
    assert!(text.starts_with("http/1.1 408"), "{text}");
    assert!(text.contains("x-airlock-reason: request_timeout"), "{text}");
    assert!(start.elapsed() < Duration::from_secs(4));
    let events = h.events(1).await;
    assert_eq!(events[0]["agent"], "bot");
    assert_eq!(events[0]["reason"], "request_timeout");
}

#[tokio::test]
async fn a_body_sent_fast_then_trickled_is_cut_as_soon() {
    // Fast bytes once bought 1 s per KiB of trickling afterwards: hours for 10 MiB, held in
    // the gateway's memory all along.
    let h = boot("limits: { body_timeout: 1s }\n").await;
    let every = Duration::from_millis(300);
    let text = trickled_body(&h, 200_000, 150_000, every, Duration::from_secs(4)).await;
    assert!(text.starts_with("http/1.1 408"), "{text}");
}

#[tokio::test]
async fn refused_requests_with_bodies_keep_their_connection_usable() {
    let h = boot("").await;
    let tcp = TcpStream::connect(h.running.gateway_addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let body = Bytes::from(vec![b'x'; 16 * 1024]);
    for i in 0..200 {
        send.ready()
            .await
            .unwrap_or_else(|e| panic!("the connection closed after {i} refusals: {e}"));
        let req = http::Request::post(h.url("/v1/chat/completions"))
            .header("content-type", "application/json")
            .body(Full::new(body.clone()))
            .unwrap();
        let res = send.send_request(req).await.unwrap();
        assert_eq!(res.status(), 401);
        let _ = res.into_body().collect().await;
    }
}

#[tokio::test]
async fn shutdown_closes_idle_connections_at_once_and_records_the_calls_it_cuts() {
    let h = boot("").await;
    let gateway = h.running.gateway.clone();
    // An idle keep-alive connection must not hold the shutdown.
    let mut idle = TcpStream::connect(h.running.gateway_addr).await.unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    assert!(idle.read(&mut buf).await.unwrap() > 0);
    // A stream far longer than the grace period.
    let req = h
        .post("/v1/chat/completions")
        .header("x-mock-words", "200")
        .header("x-mock-chunk-delay-ms", "200")
        .body(json_body(&json!({"model": "mock/gpt-4o-mini", "stream": true, "messages": [{"role": "user", "content": "go"}]})))
        .unwrap();
    let res = h.send(req).await;
    let mut stream = res.into_body();
    let first = stream.frame().await.unwrap().unwrap();
    assert!(first.is_data());
    // A call whose body never completes.
    let mut send = h2(&h).await;
    let held = send.send_request(held_request(&h));
    let held = tokio::spawn(held);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let Harness { running, .. } = h;
    let start = Instant::now();
    running.shutdown(Duration::from_secs(1)).await;
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "shutdown took {:?}",
        start.elapsed()
    );
    drop((stream, held));

    let query = airlock_state::EventQuery {
        limit: 100,
        ..Default::default()
    };
    let events = gateway.ledger().events(query).await.unwrap();
    let cut: Vec<_> = events
        .iter()
        .filter(|e| e.reason.as_deref() == Some("shutdown"))
        .collect();
    assert_eq!(
        cut.len(),
        2,
        "the stream and the unfinished body: {events:?}"
    );
    for e in &cut {
        assert_eq!(e.outcome.as_str(), "cancelled");
    }
    let streamed = cut
        .iter()
        .find(|e| e.status == 200)
        .expect("the cut stream");
    assert!(
        streamed.usage.output_tokens > 0,
        "metered from what was relayed"
    );
    assert!(cut.iter().any(|e| e.status == 503), "the unfinished body");
}

#[tokio::test]
async fn mcp_accepts_its_own_origin_and_refuses_other_hosts() {
    let h = boot("").await;
    let port = h.running.gateway_addr.port();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let post = |origin: Option<String>, host: Option<&str>| {
        let mut req = h
            .post("/mcp")
            .header("accept", "application/json, text/event-stream");
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        if let Some(host) = host {
            req = req.header("host", host);
        }
        req.body(json_body(&init)).unwrap()
    };
    for own in [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
    ] {
        let res = h.send(post(Some(own.clone()), None)).await;
        assert_eq!(res.status(), 200, "{own}");
    }
    let res = h.send(post(Some("http://evil.example".into()), None)).await;
    assert_eq!(res.status(), 403);
    let rebound = format!("evil.example:{port}");
    let res = h.send(post(None, Some(&rebound))).await;
    assert_eq!(res.status(), 403);
    let body = read_json(res).await;
    assert_eq!(body["error"]["data"]["reason"], "not_allowed");

    // HTTP/2: a rebound `:authority` is refused even beside a loopback `Host`.
    let mut send = h2::<Full<Bytes>>(&h).await;
    let req = http::Request::post(format!("http://evil.example:{port}/mcp"))
        .header("host", format!("127.0.0.1:{port}"))
        .header("authorization", format!("Bearer {KEY}"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(json_body(&init))
        .unwrap();
    assert_eq!(send.send_request(req).await.unwrap().status(), 403);
}

/// An admin API call; its JSON answer.
async fn admin(
    h: &Harness,
    method: http::Method,
    path: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let req = http::Request::builder()
        .method(method)
        .uri(format!("http://{}{path}", h.running.admin_addr))
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(json_body(&body))
        .unwrap();
    read_json(h.send(req).await).await
}

/// Opens a CONNECT tunnel through the egress proxy with `key` to `to`, and checks bytes
/// flow both ways.
async fn tunnel(h: &Harness, key: &str, to: std::net::SocketAddr) -> TcpStream {
    use base64::Engine;
    let egress = h
        .running
        .egress_addr
        .expect("the harness listens for egress");
    let mut tcp = TcpStream::connect(egress).await.unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("bot:{key}"));
    let connect =
        format!("CONNECT {to} HTTP/1.1\r\nhost: {to}\r\nproxy-authorization: Basic {auth}\r\n\r\n");
    tcp.write_all(connect.as_bytes()).await.unwrap();
    let mut buf = [0u8; 512];
    let n = tcp.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    tcp.write_all(b"ping").await.unwrap();
    let n = tcp.read(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"ping");
    tcp
}

/// A TCP server on loopback that echoes what it reads.
async fn echo_server() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = tcp.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn an_open_tunnel_closes_when_its_key_is_revoked_or_its_agent_suspended() {
    let h = boot("egress: { allow_private: [\"127.0.0.1\"] }\n").await;
    let upstream = echo_server().await;

    let made = admin(&h, http::Method::POST, "/api/keys", json!({"agent": "bot"})).await;
    let key = made["key"].as_str().unwrap().to_owned();
    let mut by_revoked_key = tunnel(&h, &key, upstream).await;
    let id = made["id"].as_str().unwrap();
    admin(
        &h,
        http::Method::DELETE,
        &format!("/api/keys/{id}"),
        json!({}),
    )
    .await;
    closed_within(&mut by_revoked_key, Duration::from_secs(4)).await;

    let mut by_suspended_agent = tunnel(&h, KEY, upstream).await;
    admin(&h, http::Method::POST, "/api/agents/bot/suspend", json!({})).await;
    closed_within(&mut by_suspended_agent, Duration::from_secs(4)).await;

    let events = h.events(2).await;
    let closed: Vec<_> = events.iter().filter_map(|e| e["closed"].as_str()).collect();
    assert!(
        closed.contains(&"key_revoked") && closed.contains(&"agent_suspended"),
        "{events:?}"
    );
}

#[tokio::test]
async fn one_connection_opens_no_more_streams_than_h2_max_streams() {
    let h = boot("limits: { h2_max_streams: 4 }\n").await;
    let mut send = h2(&h).await;
    let mut held = Vec::new();
    for _ in 0..10 {
        // The client may wait for a stream the server does not grant.
        if tokio::time::timeout(Duration::from_millis(200), send.ready())
            .await
            .is_err()
        {
            break;
        }
        held.push(tokio::spawn(send.send_request(held_request(&h))));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let agent = admin(&h, http::Method::GET, "/api/agents/bot", json!(null)).await;
    assert_eq!(agent["in_flight"], 4, "{agent}");
    for task in held {
        task.abort();
    }
}
