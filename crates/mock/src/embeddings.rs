//! OpenAI embeddings (`POST /v1/embeddings`) and the model list
//! (`GET /v1/models`).

use hyper::{Response, StatusCode};
use serde_json::{Value, json};

use crate::body::{self, MockBody};
use crate::errors::Shape;
use crate::input;
use crate::reply::Ctx;

const DIMENSIONS: usize = 8;

pub(crate) fn handle(ctx: &Ctx, request: &Value) -> Response<MockBody> {
    let inputs: Vec<&Value> = match request.get("input") {
        // A flat array of token ids is a single input.
        Some(ids @ Value::Array(items))
            if !items.is_empty() && items.iter().all(Value::is_number) =>
        {
            vec![ids]
        }
        Some(Value::Array(items)) if !items.is_empty() => items.iter().collect(),
        Some(item @ Value::String(_)) => vec![item],
        _ => {
            return Shape::OpenAi.error(
                StatusCode::BAD_REQUEST,
                "'input' must be a string or a non-empty array",
            );
        }
    };
    // The openai Python SDK asks for base64 by default.
    let base64 = request.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let vector = vector(item, index);
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                Value::String(encode_base64(&bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let tokens = input::embeddings(request);
    body::json(
        StatusCode::OK,
        &json!({
            "object": "list",
            "data": data,
            "model": ctx.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }),
    )
}

pub(crate) fn models() -> Response<MockBody> {
    body::json(
        StatusCode::OK,
        &json!({
            "object": "list",
            "data": [{"id": "mock-model", "object": "model", "created": 0, "owned_by": "mock"}],
        }),
    )
}

/// Derived from the input so equal inputs embed equally; values are exact
/// in f32 so tests can compare them.
fn vector(item: &Value, index: usize) -> [f32; DIMENSIONS] {
    let seed = match item {
        Value::String(text) => text.len(),
        Value::Array(ids) => ids.len(),
        _ => 0,
    };
    std::array::from_fn(|i| ((seed + index + i * 7) % 16) as f32 / 16.0)
}

fn encode_base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let b = [
            group[0],
            *group.get(1).unwrap_or(&0),
            *group.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= group.len() {
                out.push(char::from(ALPHABET[(n >> shift) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(encode_base64(b""), "");
        assert_eq!(encode_base64(b"f"), "Zg==");
        assert_eq!(encode_base64(b"fo"), "Zm8=");
        assert_eq!(encode_base64(b"foo"), "Zm9v");
        assert_eq!(encode_base64(b"foobar"), "Zm9vYmFy");
    }
}
