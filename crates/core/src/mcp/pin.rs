//! Tool pinning: a definition's hash, taken when the tool is approved and compared on every
//! later `tools/list`, so a server cannot change what a tool tells the model after the fact.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::fingerprint::write_canonical;

/// The members of a tool definition the model reads or acts on. `_meta`, `icons` and anything
/// else are left out: they may change freely without changing what the tool asks of the model.
const PINNED: &[&str] = &[
    "name",
    "title",
    "description",
    "inputSchema",
    "outputSchema",
    "annotations",
];

/// Lowercase hex SHA-256 of the canonical JSON of the tool's pinned members (those present),
/// so equal definitions hash equal whatever their member order.
pub fn definition_hash(tool: &Value) -> String {
    let mut canonical = String::new();
    write_canonical(
        tool,
        &|name, top| !top || PINNED.contains(&name),
        &mut canonical,
    );
    Sha256::digest(canonical.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool() -> Value {
        json!({
            "name": "read_file",
            "title": "Read file",
            "description": "Reads a file under the shared root.",
            "inputSchema": {
                "type": "object",
                "properties": {"path": {"type": "string", "description": "Relative path"}},
                "required": ["path"]
            },
            "annotations": {"readOnlyHint": true},
            "_meta": {"version": 1}
        })
    }

    /// The tool with one member replaced by `f`.
    fn changed(f: impl FnOnce(&mut Value)) -> String {
        let mut t = tool();
        f(&mut t);
        definition_hash(&t)
    }

    #[test]
    fn member_order_does_not_matter() {
        let reordered = json!({
            "_meta": {"version": 1},
            "annotations": {"readOnlyHint": true},
            "inputSchema": {
                "required": ["path"],
                "properties": {"path": {"description": "Relative path", "type": "string"}},
                "type": "object"
            },
            "description": "Reads a file under the shared root.",
            "title": "Read file",
            "name": "read_file"
        });
        let hash = definition_hash(&tool());
        assert_eq!(hash, definition_hash(&reordered));
        assert_eq!(hash.len(), 64);
        assert!(hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    }

    #[test]
    fn what_the_model_reads_changes_the_hash() {
        let base = definition_hash(&tool());
        let changes = [
            changed(|t| t["description"] = json!("Reads any file. <IMPORTANT>...</IMPORTANT>")),
            changed(|t| {
                t["inputSchema"]["properties"]["path"]["description"] = json!("Absolute path")
            }),
            changed(|t| t["inputSchema"]["required"] = json!([])),
            changed(|t| t["annotations"]["readOnlyHint"] = json!(false)),
            changed(|t| t["annotations"]["destructiveHint"] = json!(true)),
            changed(|t| t["title"] = json!("Read")),
            changed(|t| t["name"] = json!("read")),
            changed(|t| t["outputSchema"] = json!({"type": "object"})),
        ];
        for (i, hash) in changes.iter().enumerate() {
            assert_ne!(&base, hash, "change {i} kept the hash");
        }
    }

    #[test]
    fn other_members_are_ignored() {
        let base = definition_hash(&tool());
        assert_eq!(base, changed(|t| t["_meta"] = json!({"version": 2})));
        assert_eq!(base, changed(|t| t["icons"] = json!([{"src": "x.png"}])));
        assert_eq!(
            base,
            changed(|t| {
                t.as_object_mut().unwrap().remove("_meta");
            })
        );
    }

    #[test]
    fn missing_members_are_fine() {
        let bare = json!({"name": "ping"});
        assert_eq!(
            definition_hash(&bare),
            definition_hash(&json!({"name": "ping"}))
        );
        assert_ne!(
            definition_hash(&bare),
            definition_hash(&json!({"name": "pong"}))
        );
        // Absent and null are different definitions.
        assert_ne!(
            definition_hash(&bare),
            definition_hash(&json!({"name": "ping", "description": null}))
        );
    }
}
