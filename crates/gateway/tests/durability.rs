//! `state.durable: true`: a call the agent saw answered is already committed to the ledger,
//! JSON answer or stream, so a crash right after cannot lose it.

mod support;

use airlock_state::EventQuery;
use http_body_util::BodyExt;
use serde_json::json;
use support::{Harness, Options, boot_with, json_body};

/// The ledger's rows as committed now, without waiting for the writer.
async fn committed(h: &Harness) -> usize {
    let query = EventQuery {
        limit: 1000,
        ..Default::default()
    };
    h.running
        .gateway
        .ledger()
        .events(query)
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn every_answered_call_is_committed_before_its_answer_ends() {
    let h = boot_with(
        "",
        Options {
            durable: true,
            ..Options::default()
        },
    )
    .await;
    for i in 0..20 {
        let stream = i % 2 == 1;
        let body = json!({"model": "mock/gpt-4o-mini", "stream": stream,
            "messages": [{"role": "user", "content": format!("call {i}")}]});
        let res = h
            .send(
                h.post("/v1/chat/completions")
                    .body(json_body(&body))
                    .unwrap(),
            )
            .await;
        assert_eq!(res.status(), 200);
        res.into_body().collect().await.unwrap();
        assert_eq!(
            committed(&h).await,
            i + 1,
            "call {i} (stream: {stream}) was answered uncommitted"
        );
    }
    // A refusal is a call too.
    let res = h
        .send(
            http::Request::post(h.url("/v1/chat/completions"))
                .body(json_body(&json!({})))
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), 401);
    res.into_body().collect().await.unwrap();
    assert_eq!(committed(&h).await, 21);
}
