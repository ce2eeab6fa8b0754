mod support;

use airlock_mock::Mock;
use serde_json::{Value, json};
use support::{post, send, sse_data, sse_events};

fn chat_request() -> Value {
    json!({
        "model": "gpt-test",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "say hello to me"},
        ],
    })
}

#[tokio::test]
async fn chat_reports_deterministic_usage() {
    let mock = Mock::start().await;
    let headers = [
        ("x-mock-words", "5"),
        ("x-mock-cached-tokens", "2"),
        ("x-mock-reasoning-tokens", "3"),
    ];
    let answer = send(
        mock.addr,
        "POST",
        "/v1/chat/completions",
        &headers,
        Some(&chat_request()),
    )
    .await;
    assert_eq!(answer.status, 200);
    let body = answer.json();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gpt-test");
    assert_eq!(body["choices"][0]["message"]["content"], "w1 w2 w3 w4 w5");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    let usage = &body["usage"];
    // (3 + 2) + (3 + 4) input; 5 words + 3 reasoning output.
    assert_eq!(usage["prompt_tokens"], 12);
    assert_eq!(usage["completion_tokens"], 8);
    assert_eq!(usage["total_tokens"], 20);
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 2);
    assert_eq!(usage["completion_tokens_details"]["reasoning_tokens"], 3);

    let recorded = mock.requests();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].path, "/v1/chat/completions");
    assert_eq!(recorded[0].body["model"], "gpt-test");
    assert!(
        recorded[0]
            .headers
            .contains(&("x-mock-words".to_owned(), "5".to_owned()))
    );
    mock.clear();
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn chat_max_tokens_truncates() {
    let mock = Mock::start().await;
    let mut request = chat_request();
    request["max_completion_tokens"] = json!(3);
    let body = post(mock.addr, "/v1/chat/completions", &request)
        .await
        .json();
    assert_eq!(body["choices"][0]["message"]["content"], "w1 w2 w3");
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    assert_eq!(body["usage"]["completion_tokens"], 3);
}

#[tokio::test]
async fn chat_stream_usage_chunk_only_when_asked() {
    let mock = Mock::start().await;
    let mut request = chat_request();
    request["stream"] = json!(true);
    let plain = post(mock.addr, "/v1/chat/completions", &request).await;
    assert_eq!(plain.headers["content-type"], "text/event-stream");
    let data = sse_data(plain.text());
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    // role chunk, 8 words, finish chunk
    assert_eq!(chunks.len(), 10);
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "w1 w2 w3 w4 w5 w6 w7 w8");
    assert_eq!(chunks[9]["choices"][0]["finish_reason"], "stop");
    assert!(chunks.iter().all(|c| c["usage"].is_null()));

    request["stream_options"] = json!({"include_usage": true});
    let with_usage = post(mock.addr, "/v1/chat/completions", &request).await;
    let data = sse_data(with_usage.text());
    assert_eq!(data.len(), 12);
    let last: Value = serde_json::from_str(&data[10]).unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["prompt_tokens"], 12);
    assert_eq!(last["usage"]["completion_tokens"], 8);
    assert_eq!(data[11], "[DONE]");
}

#[tokio::test]
async fn chat_tool_call_then_text_after_result() {
    let mock = Mock::start().await;
    let mut request = chat_request();
    request["tools"] =
        json!([{"type": "function", "function": {"name": "lookup", "parameters": {}}}]);
    let body = post(mock.addr, "/v1/chat/completions", &request)
        .await
        .json();
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert!(choice["message"]["content"].is_null());
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "lookup");
    assert_eq!(call["function"]["arguments"], r#"{"q":"mock"}"#);

    request["stream"] = json!(true);
    let streamed = post(mock.addr, "/v1/chat/completions", &request).await;
    let data = sse_data(streamed.text());
    let arguments: String = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str::<Value>(d).unwrap())
        .filter_map(|c| {
            c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(arguments, r#"{"q":"mock"}"#);

    request["stream"] = json!(false);
    request["messages"]
        .as_array_mut()
        .unwrap()
        .push(json!({"role": "tool", "tool_call_id": "call_mock_1", "content": "found"}));
    let body = post(mock.addr, "/v1/chat/completions", &request)
        .await
        .json();
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "w1 w2 w3 w4 w5 w6 w7 w8"
    );
}

#[tokio::test]
async fn chat_json_mode_answers_json() {
    let mock = Mock::start().await;
    let mut request = chat_request();
    request["response_format"] = json!({"type": "json_object"});
    let body = post(mock.addr, "/v1/chat/completions", &request)
        .await
        .json();
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(content).unwrap(),
        json!({"ok": true, "words": 8})
    );
}

#[tokio::test]
async fn responses_stream_is_sequenced_and_complete() {
    let mock = Mock::start().await;
    let request =
        json!({"model": "gpt-test", "input": "one two three", "instructions": "x", "stream": true});
    let answer = send(
        mock.addr,
        "POST",
        "/v1/responses",
        &[("x-mock-words", "3")],
        Some(&request),
    )
    .await;
    let events = sse_events(answer.text());
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    for (i, (name, data)) in events.iter().enumerate() {
        assert_eq!(data["type"], name.as_str());
        assert_eq!(data["sequence_number"], i);
    }
    let response = &events[10].1["response"];
    assert_eq!(response["status"], "completed");
    assert_eq!(response["output"][0]["content"][0]["text"], "w1 w2 w3");
    assert_eq!(response["usage"]["input_tokens"], 3 + 3 + 1);
    assert_eq!(response["usage"]["output_tokens"], 3);
    assert_eq!(response["usage"]["total_tokens"], 10);
}

#[tokio::test]
async fn responses_function_call() {
    let mock = Mock::start().await;
    let mut request = json!({
        "model": "gpt-test",
        "input": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "name": "lookup", "parameters": {}}],
    });
    let body = post(mock.addr, "/v1/responses", &request).await.json();
    assert_eq!(body["output"][0]["type"], "function_call");
    assert_eq!(body["output"][0]["name"], "lookup");
    assert_eq!(body["output"][0]["arguments"], r#"{"q":"mock"}"#);

    let output =
        json!({"type": "function_call_output", "call_id": "call_mock_1", "output": "found"});
    request["input"].as_array_mut().unwrap().push(output);
    let body = post(mock.addr, "/v1/responses", &request).await.json();
    assert_eq!(body["output"][0]["type"], "message");
}

#[tokio::test]
async fn embeddings_base64_and_floats() {
    let mock = Mock::start().await;
    let request = json!({"model": "emb", "input": ["a b c", "d"], "encoding_format": "float"});
    let body = post(mock.addr, "/v1/embeddings", &request).await.json();
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 4, "total_tokens": 4})
    );
    let floats: Vec<f32> = body["data"][0]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(floats.len(), 8);

    let request = json!({"model": "emb", "input": "a b c", "encoding_format": "base64"});
    let body = post(mock.addr, "/v1/embeddings", &request).await.json();
    let encoded = body["data"][0]["embedding"].as_str().unwrap();
    // 8 little-endian f32s are 32 bytes: 44 base64 characters.
    assert_eq!(encoded.len(), 44);
    let expected = floats
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect::<Vec<u8>>();
    assert_eq!(decode_base64(encoded), expected);
}

fn decode_base64(text: &str) -> Vec<u8> {
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bits: Vec<u8> = text
        .bytes()
        .filter(|&c| c != b'=')
        .map(|c| ALPHABET.find(char::from(c)).unwrap() as u8)
        .collect();
    bits.chunks(4)
        .flat_map(|group| {
            let n =
                group.iter().fold(0u32, |n, &b| (n << 6) | u32::from(b)) << (6 * (4 - group.len()));
            let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            bytes.into_iter().take(group.len() - 1)
        })
        .collect()
}

#[tokio::test]
async fn models_list() {
    let mock = Mock::start().await;
    let body = send(mock.addr, "GET", "/v1/models", &[], None).await.json();
    assert_eq!(body["data"][0]["id"], "mock-model");
}
