use serde_json::{Value, json};

use super::card::{jsonrpc_url, rewrite};
use super::*;
use crate::Config;

/// A card as the Python SDK serves it with 0.3 compatibility: both shapes merged.
fn sdk_card() -> Value {
    json!({
        "name": "echo",
        "supportedInterfaces": [
            {"url": "http://127.0.0.1:9000/", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
            {"url": "http://127.0.0.1:9000/grpc", "protocolBinding": "GRPC", "protocolVersion": "1.0"},
            {"url": "http://127.0.0.1:9000/v03", "protocolBinding": "JSONRPC", "protocolVersion": "0.3"},
        ],
        "capabilities": {"streaming": true, "pushNotifications": true},
        "securitySchemes": {"up": {"httpAuthSecurityScheme": {"scheme": "Bearer"}, "type": "http", "scheme": "Bearer"}},
        "securityRequirements": [{"schemes": {"up": {}}}],
        "skills": [{"id": "echo", "securityRequirements": [{"schemes": {"up": {}}}], "security": [{"up": []}]}],
        "signatures": [{"protected": "x", "signature": "y"}],
        "preferredTransport": "JSONRPC",
        "protocolVersion": "0.3",
        "security": [{"up": []}],
        "url": "http://127.0.0.1:9000/",
        "additionalInterfaces": [
            {"url": "http://127.0.0.1:9000/grpc", "transport": "GRPC"},
            {"url": "http://127.0.0.1:9000/", "transport": "JSONRPC"},
        ],
    })
}

#[test]
fn the_jsonrpc_url_is_the_one_for_the_version_asked() {
    let card = sdk_card();
    assert_eq!(
        jsonrpc_url(&card, Version::V1_0),
        Some("http://127.0.0.1:9000/")
    );
    assert_eq!(
        jsonrpc_url(&card, Version::V0_3),
        Some("http://127.0.0.1:9000/v03")
    );
    // A pure 0.3 card: its `url`, or the JSON-RPC one of its additional interfaces.
    let old = json!({"url": "http://a/rpc", "preferredTransport": "JSONRPC"});
    assert_eq!(jsonrpc_url(&old, Version::V0_3), Some("http://a/rpc"));
    assert_eq!(jsonrpc_url(&old, Version::V1_0), Some("http://a/rpc"));
    let grpc_first = json!({"url": "http://a/grpc", "preferredTransport": "GRPC",
        "additionalInterfaces": [{"url": "http://a/rpc", "transport": "JSONRPC"}]});
    assert_eq!(
        jsonrpc_url(&grpc_first, Version::V0_3),
        Some("http://a/rpc")
    );
    // A pure 1.0 card answers 0.3 requests at its only JSON-RPC URL.
    let new = json!({"supportedInterfaces": [{"url": "http://b/", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}]});
    assert_eq!(jsonrpc_url(&new, Version::V0_3), Some("http://b/"));
    assert_eq!(
        jsonrpc_url(
            &json!({"supportedInterfaces": [{"url": "http://g", "protocolBinding": "GRPC"}]}),
            Version::V1_0
        ),
        None
    );
}

#[test]
fn a_rewritten_card_points_only_at_the_gateway_with_its_scheme_and_no_signatures() {
    let mut card = sdk_card();
    let base = "http://127.0.0.1:4000/a2a/echo";
    rewrite(&mut card, base);
    let text = card.to_string();
    assert!(!text.contains("9000"), "{text}");
    assert!(card.get("signatures").is_none());
    let interfaces = card["supportedInterfaces"].as_array().unwrap();
    assert_eq!(interfaces.len(), 2, "one JSON-RPC interface per version");
    assert!(
        interfaces
            .iter()
            .all(|i| i["url"] == base && i["protocolBinding"] == "JSONRPC")
    );
    assert_eq!(card["url"], base);
    assert_eq!(card["preferredTransport"], "JSONRPC");
    assert_eq!(
        card["additionalInterfaces"],
        json!([{"url": base, "transport": "JSONRPC"}])
    );
    let schemes = card["securitySchemes"].as_object().unwrap();
    assert_eq!(schemes.keys().collect::<Vec<_>>(), ["airlock"]);
    assert_eq!(
        schemes["airlock"]["httpAuthSecurityScheme"]["scheme"],
        "Bearer"
    );
    assert_eq!(schemes["airlock"]["type"], "http");
    assert_eq!(
        card["securityRequirements"],
        json!([{"schemes": {"airlock": {"list": []}}}])
    );
    assert_eq!(card["security"], json!([{"airlock": []}]));
    assert!(card["skills"][0].get("securityRequirements").is_none());
    assert!(card["skills"][0].get("security").is_none());
    assert_eq!(
        card["capabilities"],
        // Capabilities are the remote agent's own: push configs are vetted, not hidden.
        json!({"streaming": true, "pushNotifications": true})
    );

    // A pure 1.0 card gains no 0.3 fields.
    let mut new = json!({"supportedInterfaces": [{"url": "http://b/", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}]});
    rewrite(&mut new, base);
    assert!(new.get("url").is_none() && new.get("security").is_none());
    assert_eq!(new["supportedInterfaces"][0]["url"], base);
}

#[test]
fn the_method_table_knows_both_versions() {
    let m = method("SendStreamingMessage").unwrap();
    assert_eq!(
        (m.version, m.purpose, m.streams),
        (Version::V1_0, Purpose::Message, true)
    );
    let m = method("tasks/resubscribe").unwrap();
    assert_eq!(
        (m.version, m.purpose, m.streams),
        (Version::V0_3, Purpose::Task, true)
    );
    assert_eq!(
        method("tasks/pushNotificationConfig/set").unwrap().purpose,
        Purpose::SetPushConfig
    );
    assert_eq!(
        method("tasks/pushNotificationConfig/get").unwrap().purpose,
        Purpose::PushConfig
    );
    assert_eq!(
        method("agent/getAuthenticatedExtendedCard")
            .unwrap()
            .purpose,
        Purpose::ExtendedCard
    );
    assert!(!method("message/send").unwrap().streams);
    assert!(method("tasks/delete").is_none() && method("sendMessage").is_none());
}

fn agent(yaml_policy: &str) -> crate::config::Agent {
    let yaml = format!("agents:\n  - id: bot\n{yaml_policy}");
    Config::parse(&yaml, &|_| None).unwrap().agents.remove(0)
}

#[test]
fn allow_and_deny_lists_and_push_configs_decide() {
    let send = method("SendMessage").unwrap();
    let open = agent("");
    assert!(decide(&open, "planner", send, &json!({})).is_ok());
    let listed =
        agent("    allow: { agents: [\"plan*\"] }\n    deny: { agents: [\"planner-prod\"] }\n");
    assert!(decide(&listed, "planner", send, &json!({})).is_ok());
    for remote in ["writer", "planner-prod"] {
        let d = decide(&listed, remote, send, &json!({})).unwrap_err();
        assert_eq!(d.reason, Reason::NotAllowed);
        assert!(d.message.contains(remote), "{}", d.message);
    }
    let none = agent("    allow: { agents: [] }\n");
    assert!(decide(&none, "planner", send, &json!({})).is_err());
    // Push notifications, as methods or inside a message's configuration: their URL comes
    // back to be held to the egress rules; a config without one is refused.
    let set = method("tasks/pushNotificationConfig/set").unwrap();
    let create = method("CreateTaskPushNotificationConfig").unwrap();
    assert!(decide(&open, "planner", set, &json!({"taskId": "t"})).is_err());
    let url = |d: Result<Option<String>, _>| d.unwrap().unwrap();
    let v03 = json!({"taskId": "t", "pushNotificationConfig": {"url": "http://hook.test/a"}});
    assert_eq!(
        url(decide(&open, "planner", set, &v03)),
        "http://hook.test/a"
    );
    let v10 = json!({"taskId": "t", "url": "http://hook.test/b"});
    assert_eq!(
        url(decide(&open, "planner", create, &v10)),
        "http://hook.test/b"
    );
    for config in [
        json!({"configuration": {"taskPushNotificationConfig": {"url": "http://x.test"}}}),
        json!({"configuration": {"pushNotificationConfig": {"url": "http://x.test"}}}),
    ] {
        assert_eq!(
            url(decide(&open, "planner", send, &config)),
            "http://x.test"
        );
    }
    // Reading and deleting configs name no URL and make no call.
    let get = method("tasks/pushNotificationConfig/get").unwrap();
    assert_eq!(
        decide(&open, "planner", get, &json!({"id": "t"})).unwrap(),
        None
    );
    assert_eq!(decide(&open, "planner", send, &json!({})).unwrap(), None);
}

#[test]
fn task_facts_follow_results_and_stream_events_of_both_versions() {
    let mut f = TaskFacts::of_request(&json!({"message": {"messageId": "m", "contextId": "c1"}}));
    assert_eq!(
        (f.task_id.as_deref(), f.context_id.as_deref()),
        (None, Some("c1"))
    );
    // 1.0 stream: task, status update, artifact update, final status.
    f.observe(&json!({"task": {"id": "t1", "contextId": "c1", "status": {"state": "TASK_STATE_SUBMITTED"}}}));
    assert_eq!(f.state.as_deref(), Some("submitted"));
    f.observe(&json!({"statusUpdate": {"taskId": "t1", "contextId": "c1", "status": {"state": "TASK_STATE_WORKING"}}}));
    f.observe(
        &json!({"artifactUpdate": {"taskId": "t1", "contextId": "c1", "artifact": {"parts": []}}}),
    );
    assert_eq!(f.state.as_deref(), Some("working"));
    f.observe(&json!({"statusUpdate": {"taskId": "t1", "status": {"state": "TASK_STATE_INPUT_REQUIRED"}}}));
    assert_eq!(
        f,
        TaskFacts {
            task_id: Some("t1".into()),
            context_id: Some("c1".into()),
            state: Some("input-required".into())
        }
    );

    // 0.3: a Task, a status-update event, a Message.
    let mut f = TaskFacts::of_request(&json!({"id": "t2"}));
    assert_eq!(f.task_id.as_deref(), Some("t2"));
    f.observe(
        &json!({"kind": "task", "id": "t2", "contextId": "c2", "status": {"state": "working"}}),
    );
    f.observe(&json!({"kind": "status-update", "taskId": "t2", "contextId": "c2", "status": {"state": "canceled"}, "final": true}));
    assert_eq!(f.state.as_deref(), Some("canceled"));
    let mut m = TaskFacts::default();
    m.observe(&json!({"kind": "message", "messageId": "x", "contextId": "c3", "role": "agent", "parts": []}));
    m.observe(&json!({"message": {"messageId": "y", "contextId": "c4", "taskId": "t4"}}));
    assert_eq!(
        (m.task_id.as_deref(), m.context_id.as_deref(), m.state),
        (Some("t4"), Some("c4"), None)
    );
    // 1.0 GetTask / CancelTask answer with a bare Task.
    let mut t = TaskFacts::default();
    t.observe(&json!({"id": "t5", "contextId": "c5", "status": {"state": "TASK_STATE_CANCELED"}}));
    assert_eq!(t.state.as_deref(), Some("canceled"));
    // A list says nothing about one task.
    let mut l = TaskFacts::default();
    l.observe(&json!({"tasks": [{"id": "t6", "status": {"state": "completed"}}]}));
    assert_eq!(l, TaskFacts::default());
}

#[test]
fn origins_compare_scheme_host_and_port() {
    let o = |u: &str| origin(u).map(|o| o.to_string());
    assert_eq!(
        o("http://Example.com/a").as_deref(),
        Some("http://example.com:80")
    );
    assert_eq!(
        o("https://user:pw@x.io:8443/p?q").as_deref(),
        Some("https://x.io:8443")
    );
    assert_eq!(o("http://[::1]:9/").as_deref(), Some("http://[::1]:9"));
    assert_eq!(
        origin("http://127.0.0.1"),
        origin("HTTP://127.0.0.1:80/rpc")
    );
    assert_ne!(origin("http://127.0.0.1:1"), origin("http://127.0.0.1:2"));
    for bad in [
        "ftp://x",
        "http://",
        "http://:80",
        "127.0.0.1:80",
        "http://x:99999",
        "http://[::1",
    ] {
        assert!(origin(bad).is_none(), "{bad}");
    }
}

#[test]
fn states_are_named_alike_in_both_versions() {
    assert_eq!(state_name("TASK_STATE_AUTH_REQUIRED"), "auth-required");
    assert_eq!(state_name("auth-required"), "auth-required");
    assert_eq!(state_name("TASK_STATE_COMPLETED"), "completed");
}
