mod support;

use airlock_mock::Mock;
use serde_json::{Value, json};
use support::{post, send, sse_events};

fn request() -> Value {
    json!({
        "model": "claude-test",
        "max_tokens": 100,
        "system": "be brief",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hello there"}]}],
    })
}

#[tokio::test]
async fn message_usage_excludes_cache() {
    let mock = Mock::start().await;
    let headers = [
        ("x-mock-cached-tokens", "3"),
        ("x-mock-cache-write-tokens", "2"),
        ("x-mock-words", "4"),
    ];
    let answer = send(
        mock.addr,
        "POST",
        "/v1/messages",
        &headers,
        Some(&request()),
    )
    .await;
    assert_eq!(answer.status, 200);
    let body = answer.json();
    assert_eq!(body["type"], "message");
    assert_eq!(
        body["content"],
        json!([{"type": "text", "text": "w1 w2 w3 w4"}])
    );
    assert_eq!(body["stop_reason"], "end_turn");
    // 2 system words + 3 + 2 message words = 7, less 3 read and 2 written.
    assert_eq!(
        body["usage"],
        json!({"input_tokens": 2, "cache_creation_input_tokens": 2, "cache_read_input_tokens": 3, "output_tokens": 4})
    );
}

#[tokio::test]
async fn stream_event_order() {
    let mock = Mock::start().await;
    let mut request = request();
    request["stream"] = json!(true);
    let answer = send(
        mock.addr,
        "POST",
        "/v1/messages",
        &[("x-mock-words", "3")],
        Some(&request),
    )
    .await;
    assert_eq!(answer.headers["content-type"], "text/event-stream");
    let events = sse_events(answer.text());
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    for (name, data) in &events {
        assert_eq!(data["type"], name.as_str());
    }
    assert_eq!(events[0].1["message"]["usage"]["input_tokens"], 7);
    let text: String = events
        .iter()
        .filter_map(|(_, data)| data["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "w1 w2 w3");
    assert_eq!(events[7].1["delta"]["stop_reason"], "end_turn");
    assert_eq!(events[7].1["usage"]["output_tokens"], 3);
}

#[tokio::test]
async fn tool_use_until_result() {
    let mock = Mock::start().await;
    let mut request = request();
    request["tools"] = json!([{"name": "lookup", "input_schema": {"type": "object"}}]);
    let body = post(mock.addr, "/v1/messages", &request).await.json();
    assert_eq!(body["stop_reason"], "tool_use");
    assert_eq!(body["content"][0]["type"], "tool_use");
    assert_eq!(body["content"][0]["name"], "lookup");
    assert_eq!(body["content"][0]["input"], json!({"q": "mock"}));

    request["stream"] = json!(true);
    let streamed = post(mock.addr, "/v1/messages", &request).await;
    let events = sse_events(streamed.text());
    assert_eq!(events[1].1["content_block"]["type"], "tool_use");
    let partial: String = events
        .iter()
        .filter_map(|(_, data)| data["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(partial, r#"{"q":"mock"}"#);

    request["stream"] = json!(false);
    let messages = request["messages"].as_array_mut().unwrap();
    messages.push(json!({"role": "assistant", "content": [
        {"type": "tool_use", "id": "toolu_mock_1", "name": "lookup", "input": {"q": "mock"}},
    ]}));
    messages.push(json!({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_mock_1", "content": "found"},
    ]}));
    let body = post(mock.addr, "/v1/messages", &request).await.json();
    assert_eq!(body["stop_reason"], "end_turn");
}

#[tokio::test]
async fn max_tokens_required_and_capping() {
    let mock = Mock::start().await;
    let mut request = request();
    request["max_tokens"] = json!(2);
    let body = post(mock.addr, "/v1/messages", &request).await.json();
    assert_eq!(body["stop_reason"], "max_tokens");
    assert_eq!(body["usage"]["output_tokens"], 2);

    request.as_object_mut().unwrap().remove("max_tokens");
    let answer = post(mock.addr, "/v1/messages", &request).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"]["type"], "invalid_request_error");
}
