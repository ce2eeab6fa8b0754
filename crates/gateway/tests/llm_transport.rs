//! The LLM routes over real sockets: what an agent sees on the wire and what the ledger
//! records, for streams, fallback, failures and hang-ups.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::json;
use support::{Harness, KEY, boot, json_body, read_json};

fn chat(model: &str, stream: bool) -> serde_json::Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "say something"}]})
}

#[tokio::test]
async fn a_stream_is_relayed_while_it_is_still_running() {
    let h = boot("").await;
    let req = h
        .post("/v1/chat/completions")
        .header("x-mock-words", "40")
        .header("x-mock-chunk-delay-ms", "25")
        .body(json_body(&chat("mock/gpt-4o-mini", true)))
        .unwrap();
    let res = h.send(req).await;
    assert_eq!(res.status(), 200);
    let mut body = res.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(first.starts_with(b"data: "), "{first:?}");
    // The first event reached us, yet the call is not settled: the gateway did not wait
    // for the end of the stream before relaying.
    h.running.gateway.ledger().flush().await.unwrap();
    let none = h
        .running
        .gateway
        .ledger()
        .events(Default::default())
        .await
        .unwrap();
    assert!(none.is_empty(), "the call settled before its stream ended");
    let rest = body.collect().await.unwrap().to_bytes();
    assert!(rest.ends_with(b"data: [DONE]\n\n"));
    let events = h.events(1).await;
    assert_eq!(events[0]["outcome"], "served");
    assert_eq!(events[0]["output_tokens"], 40);
}

#[tokio::test]
async fn the_next_target_serves_when_the_first_answers_503() {
    let h = boot("models:\n  resilient: { targets: [down/gpt-4o-mini, mock/gpt-4o-mini] }\n").await;
    let res = h
        .send(
            h.post("/v1/chat/completions")
                .body(json_body(&chat("resilient", false)))
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body = read_json(res).await;
    assert_eq!(
        body["model"], "gpt-4o-mini",
        "the upstream model name was sent, not the alias"
    );
    let events = h.events(1).await;
    assert_eq!(events.len(), 1, "one call, one event");
    assert_eq!(events[0]["target"], "mock/gpt-4o-mini");
    assert_eq!(events[0]["model"], "resilient");
    let paths: Vec<String> = h.mock.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        ["/status=503/v1/chat/completions", "/v1/chat/completions"]
    );
}

#[tokio::test]
async fn every_target_failing_is_a_502_in_openai_shape() {
    let h = boot("models:\n  broken: { targets: [down/gpt-4o-mini] }\n").await;
    let res = h
        .send(
            h.post("/v1/chat/completions")
                .body(json_body(&chat("broken", false)))
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), 502);
    assert_eq!(res.headers()["x-airlock-reason"], "upstream_unavailable");
    let body = read_json(res).await;
    assert_eq!(body["error"]["code"], "upstream_unavailable");
    assert!(
        !body.to_string().contains("sk-down"),
        "provider keys never reach agents"
    );
    assert_eq!(h.events(1).await[0]["reason"], "upstream_unavailable");
}

#[tokio::test]
async fn a_slow_upstream_times_out_per_attempt() {
    let h = boot("limits: { upstream_timeout: 300ms }\n").await;
    let req = h
        .post("/v1/chat/completions")
        .header("x-mock-delay-ms", "3000")
        .body(json_body(&chat("mock/gpt-4o-mini", false)))
        .unwrap();
    let res = h.send(req).await;
    assert_eq!(res.status(), 504);
    assert_eq!(read_json(res).await["error"]["code"], "upstream_timeout");
    assert_eq!(h.events(1).await[0]["status"], 504);
}

#[tokio::test]
async fn an_upstream_that_dies_mid_stream_is_recorded_as_failed() {
    let h = boot("").await;
    let req = h
        .post("/v1/chat/completions")
        .header("x-mock-disconnect-after", "3")
        .body(json_body(&chat("mock/gpt-4o-mini", true)))
        .unwrap();
    let res = h.send(req).await;
    assert_eq!(res.status(), 200, "the stream had started");
    let got = res.into_body().collect().await;
    if let Ok(body) = got {
        assert!(
            !body.to_bytes().ends_with(b"[DONE]\n\n"),
            "a cut stream must not look complete"
        );
    }
    let e = &h.events(1).await[0];
    assert_eq!(e["outcome"], "failed");
    assert_eq!(e["reason"], "upstream_unavailable");
    assert!(
        e["output_tokens"].as_u64().unwrap() >= 3,
        "metered from what was relayed: {e}"
    );
}

#[tokio::test]
async fn an_agent_that_hangs_up_is_recorded_as_cancelled() {
    let h = boot("").await;
    let req = h
        .post("/v1/chat/completions")
        .header("x-mock-words", "1000")
        .header("x-mock-chunk-delay-ms", "10")
        .body(json_body(&chat("mock/gpt-4o-mini", true)))
        .unwrap();
    let res = h.send(req).await;
    let mut body = res.into_body();
    for _ in 0..3 {
        body.frame().await.unwrap().unwrap();
    }
    drop(body);
    let e = &h.events(1).await[0];
    assert_eq!(e["status"], 499);
    assert_eq!(e["outcome"], "cancelled");
    assert_eq!(e["reason"], "client_closed");
    assert!(e["output_tokens"].as_u64().unwrap() >= 2, "{e}");
    assert!(e["output_tokens"].as_u64().unwrap() < 1000, "{e}");
}

#[tokio::test]
async fn h2c_clients_are_served() {
    let h = boot("").await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let req = h
        .post("/v1/chat/completions")
        .body(json_body(&chat("mock/gpt-4o-mini", false)))
        .unwrap();
    let res = client.request(req).await.unwrap();
    assert_eq!(res.version(), http::Version::HTTP_2);
    assert_eq!(res.status(), 200);
    assert_eq!(read_json(res).await["object"], "chat.completion");
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let h = boot("").await;
    let big = "x".repeat(70 * 1024);
    let req = h
        .post("/v1/chat/completions")
        .header("x-big", big)
        .body(json_body(&chat("mock/gpt-4o-mini", false)))
        .unwrap();
    assert_eq!(h.send(req).await.status(), 431);
}

#[tokio::test]
async fn the_agent_key_never_goes_upstream_and_the_provider_key_does() {
    let h = boot("").await;
    let req = http::Request::post(h.url("/v1/messages"))
        .header("x-api-key", KEY)
        .body(json_body(&json!({"model": "ant/claude-sonnet-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})))
        .unwrap();
    assert_eq!(h.send(req).await.status(), 200);
    let recorded = &h.mock.requests()[0];
    let header = |n: &str| {
        recorded
            .headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header("x-api-key").as_deref(), Some("sk-ant-upstream"));
    assert_eq!(header("anthropic-version").as_deref(), Some("2023-06-01"));
    assert!(recorded.headers.iter().all(|(_, v)| !v.contains(KEY)));
    assert_eq!(recorded.path, "/v1/messages");
}

#[tokio::test]
async fn shutdown_lets_a_running_stream_finish_and_flushes_the_ledger() {
    let h = boot("").await;
    let req = h
        .post("/v1/chat/completions")
        .header("x-mock-words", "20")
        .header("x-mock-chunk-delay-ms", "20")
        .body(json_body(&chat("mock/gpt-4o-mini", true)))
        .unwrap();
    let mut body = h.send(req).await.into_body();
    body.frame().await.unwrap().unwrap();
    let reader = tokio::spawn(async move { body.collect().await.map(|b| b.to_bytes()) });
    // Shutting down while the stream runs: it still completes.
    let Harness {
        running,
        mock: _mock,
        client: _client,
        _dir,
    } = h;
    let ledger = running.gateway.ledger().clone();
    running.shutdown(Duration::from_secs(5)).await;
    let rest = reader.await.unwrap().unwrap();
    assert!(
        rest.ends_with(b"data: [DONE]\n\n"),
        "{}",
        String::from_utf8_lossy(&rest)
    );
    let events = ledger
        .events(airlock_state::EventQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "flushed before shutdown returned");
    assert_eq!(events[0].usage.output_tokens, 20);
}

/// Issue #15: 100 one-letter words with `max_tokens: 1` were reserved at a third of a token
/// a byte, and concurrent calls spent $0.52 of a $0.50 budget. Here the mock bills every
/// byte of the prompt as a token (the densest a byte-level tokenizer can be), all of it as a
/// cache write, and 40 calls race for a budget that covers a few: what is spent never
/// exceeds the budget.
#[tokio::test]
async fn concurrent_calls_never_spend_more_than_the_budget_even_at_a_token_a_byte() {
    // Sonnet: $3.75 per 1M cache-write tokens, $15 per 1M output, so a call costs
    // $0.00076; its reservation is about 1,300 tokens at $6 per 1M (2x input): $0.0078.
    // Two reservations fit in $0.02 at once, and calls are refused once less is left.
    let h = boot("    budget: { usd_per_day: 0.02 }\n").await;
    let words = vec!["a"; 100].join(" ");
    let bytes = words.len();
    let body = json!({
        "model": "ant/claude-sonnet-4-5",
        "max_tokens": 1,
        "messages": [{"role": "user", "content": words}],
    });
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..40 {
        let mut body = body.clone();
        // Streams and plain replies alike.
        body["stream"] = json!(i % 2 == 1);
        let req = h
            .post("/v1/messages")
            .header("x-mock-input-tokens", bytes.to_string())
            .header("x-mock-cache-write-tokens", bytes.to_string())
            .header("x-mock-words", "1")
            .header("x-mock-delay-ms", "20")
            .body(json_body(&body))
            .unwrap();
        let client = h.client.clone();
        calls.spawn(async move {
            let res = client.request(req).await.expect("the gateway answers");
            let status = res.status();
            res.into_body().collect().await.unwrap();
            status
        });
    }
    let statuses = calls.join_all().await;
    let served = statuses.iter().filter(|s| s.as_u16() == 200).count();
    assert!(served > 0 && served < 40, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| [200, 429].contains(&s.as_u16())),
        "{statuses:?}"
    );
    let events = h.events(40).await;
    let spent: u64 = events.iter().filter_map(|e| e["cost_nanos"].as_u64()).sum();
    assert!(
        spent <= 50_000_000,
        "spent {spent} nano-dollars of a 50,000,000 budget"
    );
    // Each served call really cost what the mock reported: 199 cache-write tokens at
    // $3.75 per 1M and one output token at $15 per 1M.
    let each = 199 * 3_750 + 15_000_u64;
    assert_eq!(spent, served as u64 * each);
}
