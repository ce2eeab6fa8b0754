//! Tool pins, on both backends: what first sight pins, what a change waits for, and what
//! an operator's approval does.

use super::super::*;
use super::backends::TestDb;

/// A sight of `tool` whose definition is told apart by `version`.
pub(super) fn seen(tool: &str, version: &str, flags: &[&str]) -> SeenTool {
    SeenTool {
        tool: tool.into(),
        hash: format!("sha256:{version}"),
        definition: definition(tool, version),
        flags: flags.iter().map(|f| f.to_string()).collect(),
    }
}

fn definition(tool: &str, version: &str) -> String {
    serde_json::json!({"name": tool, "description": format!("{tool} {version}")}).to_string()
}

fn names(pins: &[ToolPin]) -> Vec<String> {
    pins.iter()
        .map(|p| format!("{}/{}", p.server, p.tool))
        .collect()
}

pub(super) async fn first_sight_pins_a_tool_and_an_unchanged_one_stays_approved(db: TestDb) {
    let ledger = Ledger::open(db.url()).unwrap();
    let listing = vec![
        seen("search", "v1", &[]),
        seen("Zed", "v1", &[]),
        seen("alpha", "v1", &[]),
    ];
    let pins = ledger
        .observe_tools("gh".into(), listing, 10, false)
        .await
        .unwrap();
    assert_eq!(
        names(&pins),
        ["gh/Zed", "gh/alpha", "gh/search"],
        "sorted bytewise by tool"
    );
    assert_eq!(
        pins[2],
        ToolPin {
            server: "gh".into(),
            tool: "search".into(),
            approved_hash: "sha256:v1".into(),
            approved_definition: definition("search", "v1"),
            pending_hash: None,
            pending_definition: None,
            flags: vec![],
            first_seen_ms: 10,
            last_seen_ms: 10,
            approved_ms: 10,
        }
    );
    assert_eq!(pins[2].status(), PinStatus::Approved);

    // A later listing with only one of them answers with every pin of the server.
    let pins = ledger
        .observe_tools("gh".into(), vec![seen("search", "v1", &[])], 20, false)
        .await
        .unwrap();
    assert_eq!(names(&pins), ["gh/Zed", "gh/alpha", "gh/search"]);
    let search = &pins[2];
    assert_eq!(
        (
            search.first_seen_ms,
            search.last_seen_ms,
            search.approved_ms
        ),
        (10, 20, 10)
    );
    assert_eq!(search.approved_hash, "sha256:v1");
    assert_eq!(search.status(), PinStatus::Approved);
    assert_eq!(
        pins[0].last_seen_ms, 10,
        "a tool not listed keeps its sight"
    );

    let other = ledger
        .observe_tools("fs".into(), vec![seen("read", "v1", &[])], 30, false)
        .await
        .unwrap();
    assert_eq!(names(&other), ["fs/read"], "only that server's pins");
    assert_eq!(
        names(&Ledger::open(db.url()).unwrap().tool_pins().await.unwrap()),
        ["fs/read", "gh/Zed", "gh/alpha", "gh/search"],
        "every pin, by server and tool, kept across opens"
    );
}

pub(super) async fn a_changed_definition_waits_for_approval(db: TestDb) {
    let ledger = Ledger::open(db.url()).unwrap();
    let observe = |version: &'static str, now: u64| {
        let ledger = ledger.clone();
        async move {
            let pins = ledger
                .observe_tools("gh".into(), vec![seen("search", version, &[])], now, false)
                .await
                .unwrap();
            pins.into_iter().next().unwrap()
        }
    };
    observe("v1", 10).await;
    let pin = observe("v2", 20).await;
    assert_eq!(pin.status(), PinStatus::Changed);
    assert_eq!(
        (pin.approved_hash.as_str(), pin.pending_hash.as_deref()),
        ("sha256:v1", Some("sha256:v2"))
    );
    assert_eq!(pin.approved_definition, definition("search", "v1"));
    assert_eq!(
        pin.pending_definition.as_deref(),
        Some(definition("search", "v2").as_str())
    );
    assert_eq!((pin.approved_ms, pin.last_seen_ms), (10, 20));

    // Upstream going back to the approved version withdraws the change.
    assert_eq!(observe("v1", 25).await.status(), PinStatus::Approved);
    assert_eq!(observe("v2", 30).await.status(), PinStatus::Changed);
    assert_eq!(
        ledger.tool_pins().await.unwrap()[0].status(),
        PinStatus::Changed
    );

    let approved = ledger
        .approve_tool("gh".into(), "search".into(), 40)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(approved.status(), PinStatus::Approved);
    assert_eq!(approved.approved_hash, "sha256:v2");
    assert_eq!(approved.approved_definition, definition("search", "v2"));
    assert_eq!(
        (
            approved.pending_hash.as_ref(),
            approved.pending_definition.as_ref()
        ),
        (None, None)
    );
    assert_eq!(approved.approved_ms, 40);
    assert_eq!(ledger.tool_pins().await.unwrap(), vec![approved.clone()]);
    assert_eq!(
        observe("v2", 50).await.status(),
        PinStatus::Approved,
        "the approved version is served without a new approval"
    );

    // Nothing pending: approving again changes nothing.
    let again = ledger
        .approve_tool("gh".into(), "search".into(), 60)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.approved_ms, 40);
    assert_eq!(again.approved_hash, "sha256:v2");
}

pub(super) async fn auto_approve_takes_a_change_at_once(db: TestDb) {
    let ledger = Ledger::open(db.url()).unwrap();
    ledger
        .observe_tools("gh".into(), vec![seen("search", "v1", &[])], 10, true)
        .await
        .unwrap();
    let pins = ledger
        .observe_tools("gh".into(), vec![seen("search", "v2", &[])], 20, true)
        .await
        .unwrap();
    let pin = &pins[0];
    assert_eq!(pin.status(), PinStatus::Approved);
    assert_eq!(
        (pin.approved_hash.as_str(), pin.pending_hash.as_deref()),
        ("sha256:v2", None)
    );
    assert_eq!(pin.approved_definition, definition("search", "v2"));
    assert_eq!((pin.first_seen_ms, pin.approved_ms), (10, 20));
}

pub(super) async fn flags_are_stored_and_shown(db: TestDb) {
    let ledger = Ledger::open(db.url()).unwrap();
    let observe = |version: &'static str, flags: &'static [&'static str]| {
        let ledger = ledger.clone();
        async move {
            let listing = vec![seen("search", version, flags)];
            ledger
                .observe_tools("gh".into(), listing, 10, false)
                .await
                .unwrap()
                .remove(0)
        }
    };
    let pin = observe("v1", &["hidden_instructions", "exfil_url"]).await;
    assert_eq!(pin.status(), PinStatus::Flagged);
    assert_eq!(pin.flags, ["hidden_instructions", "exfil_url"]);
    assert_eq!(ledger.tool_pins().await.unwrap()[0].flags, pin.flags);
    assert_eq!(
        observe("v2", &["exfil_url"]).await.status(),
        PinStatus::Changed,
        "a change outranks a flag"
    );
    let clean = observe("v1", &[]).await;
    assert!(clean.flags.is_empty());
    assert_eq!(clean.status(), PinStatus::Approved);
    assert_eq!(PinStatus::Flagged.as_str(), "flagged");
    assert_eq!(PinStatus::Changed.as_str(), "changed");
    assert_eq!(PinStatus::Approved.as_str(), "approved");
}

pub(super) async fn approving_an_unknown_tool_finds_nothing(db: TestDb) {
    let ledger = Ledger::open(db.url()).unwrap();
    assert_eq!(
        ledger
            .approve_tool("gh".into(), "search".into(), 1)
            .await
            .unwrap(),
        None
    );
    ledger
        .observe_tools("gh".into(), vec![seen("search", "v1", &[])], 10, false)
        .await
        .unwrap();
    for (server, tool) in [("gh", "other"), ("fs", "search")] {
        let found = ledger
            .approve_tool(server.into(), tool.into(), 20)
            .await
            .unwrap();
        assert_eq!(found, None, "{server}/{tool}");
    }
    assert_eq!(ledger.tool_pins().await.unwrap().len(), 1);
}
