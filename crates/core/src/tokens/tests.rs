use std::sync::OnceLock;

use serde_json::{Map, Value, json};
use tiktoken_rs::CoreBPE;

use super::*;

/// Random inputs after the corpus in a `cargo test` run; `BOLERO_RANDOM_ITERATIONS`
/// overrides it for a longer campaign (README "Fuzzing").
const RANDOM_INPUTS: usize = 300;

fn o200k() -> &'static CoreBPE {
    static BPE: OnceLock<CoreBPE> = OnceLock::new();
    BPE.get_or_init(|| tiktoken_rs::o200k_base().unwrap())
}

fn cl100k() -> &'static CoreBPE {
    static BPE: OnceLock<CoreBPE> = OnceLock::new();
    BPE.get_or_init(|| tiktoken_rs::cl100k_base().unwrap())
}

fn members(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

fn bound(shape: Shape, model: &str, body: Value) -> PromptBound {
    prompt_bound(shape, model, &members(body))
}

/// What OpenAI bills a chat prompt, per its cookbook ("How to count tokens with tiktoken"):
/// 3 tokens per message, the role's and the content's tokens, 3 to prime the reply.
fn billed(bpe: &CoreBPE, messages: &[(String, String)]) -> u64 {
    let mut n = 3;
    for (role, content) in messages {
        n += 3 + bpe.encode_ordinary(role).len() + bpe.encode_ordinary(content).len();
    }
    n as u64
}

fn chat(messages: &[(String, String)]) -> Value {
    let messages: Vec<Value> = messages
        .iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    json!({"messages": messages})
}

#[test]
fn a_byte_level_bpe_never_emits_more_tokens_than_bytes() {
    bolero::check!()
        .with_iterations(RANDOM_INPUTS)
        .for_each(|bytes: &[u8]| {
            let text = String::from_utf8_lossy(bytes);
            for bpe in [o200k(), cl100k()] {
                assert!(bpe.encode_ordinary(&text).len() <= text.len());
            }
        });
}

#[test]
fn the_bound_holds_for_random_chat_prompts_under_o200k_and_cl100k() {
    bolero::check!()
        .with_iterations(RANDOM_INPUTS)
        .with_type::<Vec<(bool, String, Vec<u8>)>>()
        .for_each(|raw: &Vec<(bool, String, Vec<u8>)>| {
            // Arbitrary Unicode and arbitrary bytes (as lossy UTF-8), so both rare scripts
            // and the worst case for BPE merges (random bytes) are covered.
            let messages: Vec<(String, String)> = raw
                .iter()
                .map(|(user, text, bytes)| {
                    let role = if *user { "user" } else { "assistant" };
                    (
                        role.to_owned(),
                        format!("{text}{}", String::from_utf8_lossy(bytes)),
                    )
                })
                .collect();
            let b = bound(Shape::ChatCompletions, "gpt-4o", chat(&messages));
            for bpe in [o200k(), cl100k()] {
                assert!(b.input >= billed(bpe, &messages), "{messages:?}");
            }
            assert_eq!(b.unbounded, None);
        });
}

#[test]
fn one_letter_words_cost_a_token_each_and_are_bounded() {
    // Issue #15: 100 one-letter words were reserved at a third of a token each.
    let words = vec!["a"; 100].join(" ");
    let messages = [("user".to_owned(), words.clone())];
    let b = bound(Shape::Messages, "claude-sonnet-4-5", chat(&messages));
    assert!(b.input >= words.len() as u64 + 3 + 1 + 3);
    assert!(b.input >= billed(o200k(), &messages));
}

#[test]
fn chat_completions_with_tools_images_and_a_prediction() {
    let text = bound(
        Shape::ChatCompletions,
        "gpt-4.1",
        json!({"messages": [{"role": "user", "content": "hi"}]}),
    );
    let with_tools = bound(
        Shape::ChatCompletions,
        "gpt-4.1",
        json!({
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            "tool_choice": "auto",
        }),
    );
    assert!(with_tools.input >= text.input + PER_TOOL + TOOLS_PREAMBLE + 50);
    let image = bound(
        Shape::ChatCompletions,
        "gpt-4o-mini",
        json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{}", "A".repeat(100_000))}},
        ]}]}),
    );
    // The image costs its cap, not its 100 kB of base64.
    assert!(
        image.input >= 48_169 && image.input < 48_169 + 200,
        "{image:?}"
    );
    let predicted = bound(
        Shape::ChatCompletions,
        "gpt-4o",
        json!({"messages": [], "prediction": {"type": "content", "content": "x".repeat(1000)}}),
    );
    assert!(predicted.extra_output >= 1000);
    let searched = bound(
        Shape::ChatCompletions,
        "gpt-4o-search-preview",
        json!({"messages": [], "web_search_options": {}}),
    );
    assert_eq!(searched.unbounded, Some("web_search_options"));
}

#[test]
fn responses_items_and_what_cannot_be_bounded() {
    let plain = bound(
        Shape::Responses,
        "gpt-5",
        json!({"input": "hello", "instructions": "be brief", "text": {"format": {"type": "json_schema", "schema": {"type": "object"}}}}),
    );
    assert_eq!(plain.unbounded, None);
    assert!(plain.input >= 5 + 8 + 30);
    let image = bound(
        Shape::Responses,
        "gpt-5",
        json!({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}]}),
    );
    assert_eq!(
        image.unbounded, None,
        "an image is bounded whatever its source"
    );
    assert!(image.input >= 3_779);
    for (body, why) in [
        (
            json!({"input": "go on", "previous_response_id": "resp_1"}),
            "previous_response_id",
        ),
        (
            json!({"input": "hi", "conversation": "conv_1"}),
            "conversation",
        ),
        (json!({"prompt": {"id": "pmpt_1"}}), "prompt"),
        (
            json!({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "file-1"}]}]}),
            "input_file",
        ),
        (
            json!({"input": [{"type": "reasoning", "encrypted_content": "gAAA"}]}),
            "reasoning",
        ),
        (
            json!({"input": [{"type": "item_reference", "id": "msg_1"}]}),
            "item_reference",
        ),
        (
            json!({"input": "hi", "tools": [{"type": "web_search"}]}),
            "hosted_tool",
        ),
        (
            json!({"input": "hi", "tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}]}),
            "hosted_tool",
        ),
    ] {
        assert_eq!(
            bound(Shape::Responses, "gpt-5", body.clone()).unbounded,
            Some(why),
            "{body}"
        );
    }
    let function = bound(
        Shape::Responses,
        "gpt-5",
        json!({"input": "hi", "tools": [{"type": "function", "name": "f", "parameters": {}}]}),
    );
    assert_eq!(function.unbounded, None);
}

#[test]
fn messages_with_system_blocks_tools_images_and_documents() {
    let body = json!({
        "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        "messages": [
            {"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "A".repeat(50_000)}},
                {"type": "text", "text": "describe"},
            ]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "look", "input": {"q": "x"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
            ]}]},
        ],
        "tools": [
            {"name": "look", "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}},
            {"type": "bash_20250124", "name": "bash"},
        ],
    });
    let b = bound(Shape::Messages, "claude-sonnet-4-5", body);
    assert_eq!(b.unbounded, None);
    let floor = 2 * 1_600 + TOOLS_PREAMBLE + ANTHROPIC_CLIENT_TOOL + 2 * PER_TOOL + 4 * PER_MESSAGE;
    assert!(b.input >= floor && b.input < floor + 1_000, "{b:?}");

    let text_doc = bound(
        Shape::Messages,
        "claude-haiku-4-5",
        json!({"messages": [{"role": "user", "content": [{"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x".repeat(500)}}]}]}),
    );
    assert_eq!(text_doc.unbounded, None);
    assert!(text_doc.input >= 500);
    for (body, why) in [
        (
            json!({"messages": [{"role": "user", "content": [{"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}}]}]}),
            "document",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "document", "source": {"type": "file", "file_id": "file_1"}}]}]}),
            "document",
        ),
        (
            json!({"messages": [{"role": "assistant", "content": [{"type": "redacted_thinking", "data": "EmwK"}]}]}),
            "redacted_thinking",
        ),
        (
            json!({"messages": [{"role": "assistant", "content": [{"type": "web_search_tool_result", "tool_use_id": "s", "content": []}]}]}),
            "server_tool_result",
        ),
        (
            json!({"messages": [], "tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
            "hosted_tool",
        ),
        (
            json!({"messages": [], "mcp_servers": [{"type": "url", "url": "https://mcp.example.com"}]}),
            "mcp_servers",
        ),
    ] {
        assert_eq!(
            bound(Shape::Messages, "claude-opus-4-5", body.clone()).unbounded,
            Some(why),
            "{body}"
        );
    }
}

#[test]
fn embeddings_count_token_ids_and_text() {
    let ids = bound(
        Shape::Embeddings,
        "text-embedding-3-small",
        json!({"input": [[1, 2, 3], [40000]]}),
    );
    assert!(ids.input >= 4);
    let text = bound(
        Shape::Embeddings,
        "text-embedding-3-small",
        json!({"input": ["a b c", "d"]}),
    );
    assert!(text.input >= 6);
}

#[test]
fn image_caps_per_model_family() {
    assert_eq!(image_cap("claude-opus-4-5"), 1_600);
    assert_eq!(image_cap("anthropic/claude-3-5-haiku"), 1_600);
    assert_eq!(image_cap("gpt-4o-mini-2024-07-18"), 48_169);
    assert_eq!(image_cap("gpt-4.1-nano"), 3_779);
    assert_eq!(image_cap("o4-mini"), 3_779);
    assert_eq!(image_cap("qwen2-vl-72b"), 16_384);
}

const PROSE: &str = "It was a bright cold day in April, and the clocks were striking thirteen. \
Winston Smith, his chin nuzzled into his breast in an effort to escape the vile wind, slipped \
quickly through the glass doors of Victory Mansions, though not quickly enough to prevent a \
swirl of gritty dust from entering along with him. The hallway smelt of boiled cabbage and old \
rag mats. At one end of it a coloured poster, too large for indoor display, had been tacked to \
the wall. It depicted simply an enormous face, more than a metre wide: the face of a man of \
about forty-five, with a heavy black moustache and ruggedly handsome features.";

const CODE: &str = r#"pub fn admit(&self, agent: &Agent, estimate: Estimate) -> Result<Reservation, Denial> {
    let budgets = self.budgets_of(agent);
    for budget in &budgets {
        let left = budget.limit.saturating_sub(budget.spent + budget.reserved);
        if estimate.nanos > left {
            return Err(Denial::new(Reason::BudgetExceeded, format!("{} left", usd(left))));
        }
    }
    Ok(Reservation { nanos: estimate.nanos, budgets })
}
"#;

const JSON_DOC: &str = r#"{"orders":[{"id":"ord_1042","customer":{"name":"Ada Lovelace","email":"ada@example.com"},"items":[{"sku":"KB-87","qty":1,"price":129.0},{"sku":"MS-02","qty":2,"price":24.5}],"status":"shipped","shipped_at":"2025-03-14T09:26:53Z"},{"id":"ord_1043","customer":{"name":"Alan Turing","email":"alan@example.com"},"items":[{"sku":"MON-27","qty":1,"price":349.99}],"status":"pending","shipped_at":null}]}"#;

/// Reserved ÷ billed input tokens for one user message of `text` with a one-line system
/// prompt, under o200k (what README "Budgets" reports).
fn over_reservation(text: &str) -> (u64, u64, u64) {
    let system = "You are a helpful assistant.".to_owned();
    let messages = [
        ("system".to_owned(), system),
        ("user".to_owned(), text.to_owned()),
    ];
    let b = bound(Shape::ChatCompletions, "gpt-4o", chat(&messages));
    (
        b.input,
        billed(o200k(), &messages),
        billed(cl100k(), &messages),
    )
}

#[test]
fn over_reservation_on_real_prompts_is_a_few_times_the_tokens() {
    for (name, text, most) in [
        ("prose", PROSE, 5.0),
        ("code", CODE, 5.0),
        ("json", JSON_DOC, 4.0),
    ] {
        let (reserved, o200k, cl100k) = over_reservation(text);
        let ratio = reserved as f64 / o200k as f64;
        println!(
            "{name}: {} bytes, reserved {reserved}, o200k {o200k} ({ratio:.2}x), cl100k {cl100k} ({:.2}x)",
            text.len(),
            reserved as f64 / cl100k as f64
        );
        assert!(ratio > 1.0 && ratio < most, "{name}: {ratio}");
    }
}
