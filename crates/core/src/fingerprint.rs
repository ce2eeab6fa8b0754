//! A call's fingerprint for the loop guard: who called what, with which arguments,
//! ignoring what changes between two otherwise identical calls (request ids, stream flags,
//! progress tokens, timestamps), so a retry loop shows up as one repeating value.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::event::Kind;

/// Members dropped at the top of a body: transport and bookkeeping, not the request.
const VOLATILE_TOP: &[&str] = &[
    "id",
    "jsonrpc",
    "stream",
    "stream_options",
    "user",
    "metadata",
    "safety_identifier",
    "prompt_cache_key",
    "store",
    "request_id",
];

/// Members dropped at any depth: per-message identifiers and protocol metadata.
const VOLATILE_ANYWHERE: &[&str] = &["_meta", "messageId", "progressToken", "timestamp"];

/// A 128-bit fingerprint, hex-encoded.
pub fn fingerprint(
    agent: &str,
    kind: Kind,
    target: &str,
    operation: &str,
    body: Option<&Value>,
) -> String {
    let mut h = Sha256::new();
    for part in [agent, kind.as_str(), target, operation] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    if let Some(body) = body {
        let mut canonical = String::new();
        write_canonical(
            body,
            &|name, top| {
                !(VOLATILE_ANYWHERE.contains(&name) || top && VOLATILE_TOP.contains(&name))
            },
            &mut canonical,
        );
        h.update(canonical.as_bytes());
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// JSON with object members sorted by name at every depth, no whitespace, strings escaped as
/// serde_json escapes them, and only the members `keep(name, top)` accepts; `top` is true for
/// the members of the outermost object. Equal values write equal text whatever their member
/// order, so the text can be hashed.
pub(crate) fn write_canonical(v: &Value, keep: &dyn Fn(&str, bool) -> bool, out: &mut String) {
    write_value(v, keep, true, out);
}

fn write_value(v: &Value, keep: &dyn Fn(&str, bool) -> bool, top: bool, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().filter(|k| keep(k, top)).collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_value(&map[k], keep, false, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, keep, false, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fp(body: Value) -> String {
        fingerprint(
            "bot",
            Kind::Llm,
            "openai/gpt-4o",
            "chat.completions",
            Some(&body),
        )
    }

    #[test]
    fn volatile_fields_and_key_order_do_not_matter() {
        let a = fp(
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": true, "user": "u1"}),
        );
        let b = fp(
            json!({"messages": [{"content": "hi", "role": "user"}], "model": "m", "stream": false}),
        );
        assert_eq!(a, b);
        let rpc = |id: u32, token: &str| {
            fingerprint(
                "bot",
                Kind::Mcp,
                "github/search",
                "tools/call",
                Some(&json!({
                    "jsonrpc": "2.0", "id": id, "method": "tools/call",
                    "params": {"name": "search", "arguments": {"q": "x"}, "_meta": {"progressToken": token}}
                })),
            )
        };
        assert_eq!(rpc(1, "a"), rpc(2, "b"));
    }

    #[test]
    fn what_is_asked_and_who_asks_do_matter() {
        let base = fp(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}));
        assert_ne!(
            base,
            fp(json!({"model": "m", "messages": [{"role": "user", "content": "hello"}]}))
        );
        // "id" is only volatile at the top: a nested id is part of the request.
        assert_ne!(fp(json!({"x": {"id": 1}})), fp(json!({"x": {"id": 2}})));
        let other_agent = fingerprint(
            "other",
            Kind::Llm,
            "openai/gpt-4o",
            "chat.completions",
            Some(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})),
        );
        assert_ne!(base, other_agent);
        assert_eq!(base.len(), 32);
    }
}
