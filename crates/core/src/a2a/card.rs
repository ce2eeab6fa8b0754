//! Agent cards: where the remote agent serves JSON-RPC, and the card an agent is shown —
//! every interface pointing at the gateway, the gateway's own security scheme, no
//! signatures (a rewritten card cannot keep them). Both card shapes are handled: 1.0
//! (`supportedInterfaces`, `securityRequirements`) and 0.3 (`url`, `additionalInterfaces`,
//! `preferredTransport`, `security`); cards served by the SDKs often carry both.

use serde_json::{Value, json};

use super::Version;

/// The name of the gateway's security scheme in rewritten cards.
pub const SCHEME: &str = "airlock";
const SCHEME_DESCRIPTION: &str = "An Airlock agent key, sent as `Authorization: Bearer <key>`.";

fn is_jsonrpc(binding: &Value) -> bool {
    binding
        .as_str()
        .is_some_and(|b| b.eq_ignore_ascii_case("JSONRPC"))
}

fn speaks(interface: &Value, version: Version) -> bool {
    match interface["protocolVersion"].as_str() {
        Some(v) => match version {
            Version::V1_0 => v.starts_with("1."),
            Version::V0_3 => v.starts_with("0.3"),
        },
        None => true,
    }
}

/// The URL the card gives for JSON-RPC of `version`: a matching 1.0 interface, else
/// (for 0.3) the 0.3 fields, else any JSON-RPC interface the card lists — an SDK server
/// often answers both versions at one URL.
pub fn jsonrpc_url(card: &Value, version: Version) -> Option<&str> {
    let interfaces = card["supportedInterfaces"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let listed = |wanted: Option<Version>| {
        interfaces.iter().find_map(|i| {
            (is_jsonrpc(&i["protocolBinding"]) && wanted.is_none_or(|v| speaks(i, v)))
                .then(|| i["url"].as_str())
                .flatten()
        })
    };
    let legacy = || {
        let preferred = &card["preferredTransport"];
        let main = (preferred.is_null() || is_jsonrpc(preferred))
            .then(|| card["url"].as_str())
            .flatten();
        main.or_else(|| {
            card["additionalInterfaces"]
                .as_array()?
                .iter()
                .find(|i| is_jsonrpc(&i["transport"]))?["url"]
                .as_str()
        })
    };
    listed(Some(version))
        .or_else(legacy)
        .or_else(|| listed(None))
}

/// Rewrites `card` for agents that reach the remote agent at `base`
/// (`http://<gateway>/a2a/<name>`): one JSON-RPC interface per version, all at `base`
/// (the gateway speaks JSON-RPC only); the gateway's bearer scheme instead of the remote
/// agent's (the agent presents its Airlock key; Airlock presents the remote credentials);
/// no signatures; no push notifications (refused through the gateway).
pub fn rewrite(card: &mut Value, base: &str) {
    let Some(obj) = card.as_object_mut() else {
        return;
    };
    obj.remove("signatures");
    if let Some(list) = obj
        .get_mut("supportedInterfaces")
        .and_then(Value::as_array_mut)
    {
        let mut versions: Vec<Value> = Vec::new();
        list.retain(|i| {
            let version = i["protocolVersion"].clone();
            let keep = is_jsonrpc(&i["protocolBinding"]) && !versions.contains(&version);
            if keep {
                versions.push(version);
            }
            keep
        });
        for i in list.iter_mut() {
            i["url"] = json!(base);
        }
    }
    let legacy = obj.contains_key("url") || obj.contains_key("security");
    if obj.contains_key("url") {
        obj.insert("url".into(), json!(base));
        obj.insert("preferredTransport".into(), json!("JSONRPC"));
    }
    if let Some(list) = obj
        .get_mut("additionalInterfaces")
        .and_then(Value::as_array_mut)
    {
        list.retain(|i| is_jsonrpc(&i["transport"]));
        list.truncate(1);
        for i in list.iter_mut() {
            i["url"] = json!(base);
        }
    }
    // One scheme object readable as both shapes, as the SDKs themselves serve it.
    obj.insert(
        "securitySchemes".into(),
        json!({ SCHEME: {
            "httpAuthSecurityScheme": {"scheme": "Bearer", "description": SCHEME_DESCRIPTION},
            "type": "http",
            "scheme": "Bearer",
            "description": SCHEME_DESCRIPTION,
        }}),
    );
    obj.insert(
        "securityRequirements".into(),
        json!([{ "schemes": { SCHEME: { "list": [] } } }]),
    );
    if legacy {
        obj.insert("security".into(), json!([{ SCHEME: [] }]));
    }
    // Per-skill requirements name the remote agent's schemes, which are gone.
    if let Some(skills) = obj.get_mut("skills").and_then(Value::as_array_mut) {
        for skill in skills.iter_mut().filter_map(Value::as_object_mut) {
            skill.remove("securityRequirements");
            skill.remove("security");
        }
    }
}
