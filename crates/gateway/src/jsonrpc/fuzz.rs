//! Fuzzing JSON-RPC as MCP and A2A peers send it, and what the A2A path reads from it:
//! the method table, the task facts of requests and results, and remote agent cards.
//! Any message is classified or refused with a reason; nothing panics.

use airlock_core::a2a::{self, TaskFacts, Version, card};
use serde_json::Value;

use super::Message;
use crate::hostile_json::{self, Item};

/// Random inputs after the corpus in a `cargo test` run (about 0.25 s for the hostile messages in a debug build);
/// `BOLERO_RANDOM_ITERATIONS` overrides it for a longer campaign (README "Fuzzing").
const RANDOM_INPUTS: usize = 1_000;

fn read(text: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(text) else {
        return;
    };
    // A remote agent's card is another document a remote server writes.
    let mut card_doc = value.clone();
    for version in [Version::V1_0, Version::V0_3] {
        let _ = card::jsonrpc_url(&card_doc, version).map(a2a::origin);
    }
    card::rewrite(&mut card_doc, "http://127.0.0.1:4000/a2a/remote");
    match Message::classify(value) {
        Ok(Message::Request { method, params, .. } | Message::Notification { method, params }) => {
            let _ = a2a::method(&method);
            TaskFacts::of_request(params.as_ref().unwrap_or(&Value::Null));
        }
        Ok(Message::Response { body, .. }) => {
            let mut facts = TaskFacts::default();
            facts.observe(body.get("result").unwrap_or(&Value::Null));
        }
        Err(why) => assert!(!why.is_empty()),
    }
}

/// Corpus: `__fuzz__/jsonrpc__fuzz__messages/corpus`, MCP and A2A messages and a card.
#[test]
fn messages() {
    bolero::check!()
        .with_iterations(RANDOM_INPUTS)
        .for_each(read);
}

#[test]
fn hostile_messages() {
    bolero::check!()
        .with_iterations(RANDOM_INPUTS)
        .with_type::<Vec<Item>>()
        .for_each(|items: &Vec<Item>| read(hostile_json::object(items).as_bytes()));
}
