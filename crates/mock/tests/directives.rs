mod support;

use std::time::{Duration, Instant};

use airlock_mock::Mock;
use serde_json::{Value, json};
use support::{post, send, send_h2, sse_data, sse_events};

fn chat_request(stream: bool) -> Value {
    json!({"model": "m", "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn status_from_path_segment() {
    let mock = Mock::start().await;
    let answer = post(
        mock.addr,
        "/status=503/v1/chat/completions",
        &chat_request(false),
    )
    .await;
    assert_eq!(answer.status, 503);
    let error = &answer.json()["error"];
    assert_eq!(error["type"], "server_error");
    assert!(error["param"].is_null());

    let anthropic = json!({"model": "c", "max_tokens": 5, "messages": []});
    let answer = post(mock.addr, "/a/status=429/v1/messages", &anthropic).await;
    assert_eq!(answer.status, 429);
    assert_eq!(
        answer.json(),
        json!({"type": "error", "error": {"type": "rate_limit_error", "message": "mock: forced status 429"}})
    );

    // Headers override the path.
    let headers = [("x-mock-status", "529")];
    let answer = send(
        mock.addr,
        "POST",
        "/status=503/v1/messages",
        &headers,
        Some(&anthropic),
    )
    .await;
    assert_eq!(answer.status, 529);
    assert_eq!(answer.json()["error"]["type"], "overloaded_error");
}

#[tokio::test]
async fn disconnect_after_cuts_the_stream() {
    let mock = Mock::start().await;
    let headers = [("x-mock-disconnect-after", "3")];
    let answer = send(
        mock.addr,
        "POST",
        "/v1/chat/completions",
        &headers,
        Some(&chat_request(true)),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert!(answer.body.is_err(), "the body must end in an error");

    // The same cut, observed on the raw socket: 3 deltas, then no terminator.
    let stream = tokio::net::TcpStream::connect(mock.addr).await.unwrap();
    let raw = raw_exchange(stream, "/disconnect-after=3/v1/chat/completions").await;
    let data = sse_data(&raw);
    assert_eq!(data.len(), 4, "role chunk and 3 deltas: {raw}");
    assert!(data[3].contains("\"w3 \""));
    assert!(!raw.contains("[DONE]"));
    assert!(!raw.ends_with("0\r\n\r\n"), "no terminating chunk");
}

async fn raw_exchange(mut stream: tokio::net::TcpStream, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = chat_request(true).to_string();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: mock\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    // Keep-alive would hold a healthy connection open; a cut one closes.
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut raw))
        .await
        .expect("the server closes the connection")
        .unwrap();
    String::from_utf8(raw).unwrap()
}

#[tokio::test]
async fn anthropic_disconnect_after_zero() {
    let mock = Mock::start().await;
    let request = json!({"model": "c", "max_tokens": 5, "stream": true, "messages": []});
    let answer = send(
        mock.addr,
        "POST",
        "/v1/messages",
        &[("x-mock-disconnect-after", "0")],
        Some(&request),
    )
    .await;
    assert!(answer.body.is_err());
}

#[tokio::test]
async fn delays_are_applied() {
    let mock = Mock::start().await;
    let started = Instant::now();
    let answer = send(
        mock.addr,
        "POST",
        "/delay-ms=150/v1/chat/completions",
        &[],
        Some(&chat_request(false)),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));

    let started = Instant::now();
    let headers = [("x-mock-chunk-delay-ms", "30"), ("x-mock-words", "4")];
    let answer = send(
        mock.addr,
        "POST",
        "/v1/chat/completions",
        &headers,
        Some(&chat_request(true)),
    )
    .await;
    assert_eq!(sse_data(answer.text()).len(), 7);
    assert!(started.elapsed() >= Duration::from_millis(120));
}

#[tokio::test]
async fn validation_errors_use_the_route_shape() {
    let mock = Mock::start().await;
    let answer = send(mock.addr, "POST", "/v1/chat/completions", &[], None).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"]["type"], "invalid_request_error");

    let answer = post(
        mock.addr,
        "/v1/messages",
        &json!({"max_tokens": 5, "messages": []}),
    )
    .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["type"], "error");

    let answer = post(mock.addr, "/v1/nothing", &json!({})).await;
    assert_eq!(answer.status, 404);
    assert_eq!(
        answer.json()["error"]["message"],
        "Invalid URL (POST /v1/nothing)"
    );

    let answer = post(
        mock.addr,
        "/words=lots/v1/chat/completions",
        &chat_request(false),
    )
    .await;
    assert_eq!(answer.status, 400);
}

#[tokio::test]
async fn control_endpoints() {
    let mock = Mock::start().await;
    post(mock.addr, "/x/v1/chat/completions", &chat_request(false)).await;
    let listed = send(mock.addr, "GET", "/mock/requests", &[], None)
        .await
        .json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(listed[0]["method"], "POST");
    assert_eq!(listed[0]["path"], "/x/v1/chat/completions");
    assert_eq!(listed[0]["headers"]["host"], "mock");
    assert_eq!(listed[0]["body"]["model"], "m");

    assert_eq!(
        send(mock.addr, "DELETE", "/mock/requests", &[], None)
            .await
            .status,
        200
    );
    let listed = send(mock.addr, "GET", "/mock/requests", &[], None)
        .await
        .json();
    assert_eq!(listed, json!([]));
}

#[tokio::test]
async fn no_record_mode_keeps_nothing() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mock = Mock::start_on(listener, false).await;
    assert_eq!(
        post(mock.addr, "/v1/chat/completions", &chat_request(false))
            .await
            .status,
        200
    );
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn serves_h2c() {
    let mock = Mock::start().await;
    let request = json!({"model": "c", "max_tokens": 5, "stream": true, "messages": []});
    let answer = send_h2(mock.addr, "/v1/messages", &request).await;
    assert_eq!(answer.status, 200);
    let events = sse_events(answer.text());
    assert_eq!(
        events.last().map(|(name, _)| name.as_str()),
        Some("message_stop")
    );
}
