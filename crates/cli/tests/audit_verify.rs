//! `airlock audit verify` on a SQLite ledger written as `serve` writes it: intact and
//! naming its checkpoint; rows deleted from the end found by the checkpoint; and without
//! one, saying truncation cannot be told.

use std::path::Path;
use std::process::{Command, Output};

use airlock_core::{Config, Event, Kind, Outcome, Usage};
use airlock_state::{Ledger, LedgerFiles};

fn event(id: &str) -> Event {
    Event {
        id: id.into(),
        ts_ms: 1_000,
        agent: Some("bot".into()),
        team: None,
        kind: Kind::Llm,
        target: Some("openai/m".into()),
        provider: Some("openai".into()),
        model: Some("m".into()),
        operation: "chat.completions".into(),
        status: 200,
        outcome: Outcome::Served,
        reason: None,
        usage: Usage::default(),
        cost_nanos: 7,
        latency_ms: 1,
        upstream_ms: None,
        bytes_in: 1,
        bytes_out: 1,
        run_id: None,
        extra: Default::default(),
    }
}

fn verify(config: &Path, extra: &[&str]) -> (bool, String) {
    let Output { status, stdout, .. } = Command::new(env!("CARGO_BIN_EXE_airlock"))
        .args(["audit", "verify", "--config"])
        .arg(config)
        .args(extra)
        .output()
        .unwrap();
    (status.success(), String::from_utf8(stdout).unwrap())
}

#[test]
fn verify_finds_rows_deleted_from_the_end_by_the_checkpoint() {
    let dir = std::env::temp_dir().join(format!("airlock-audit-verify-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("ledger.db");
    let config_path = dir.join("airlock.yaml");
    let yaml = format!("state:\n  ledger: sqlite://{}\n", db.display());
    std::fs::write(&config_path, &yaml).unwrap();
    let config = Config::parse(&yaml, &|_| None).unwrap();
    let checkpoint = config.state.checkpoint.clone().unwrap();
    assert_eq!(
        checkpoint,
        dir.join("ledger.db.checkpoint"),
        "beside the ledger"
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let files = LedgerFiles {
            checkpoint: Some(checkpoint.clone()),
            spill: None,
        };
        let ledger = Ledger::open_with(&config.state.ledger, files).unwrap();
        for batch in [&["a", "b", "c"][..], &["d", "e"]] {
            for id in batch {
                ledger.reserve().await.unwrap().record(event(id));
            }
            ledger.flush().await.unwrap();
        }
    });

    let (ok, out) = verify(&config_path, &[]);
    assert!(ok, "{out}");
    assert!(out.contains("intact: 5 events verified"), "{out}");
    let named = format!(
        "checked against checkpoint {}: 2 checkpoints",
        checkpoint.display()
    );
    assert!(out.contains(&named), "{out}");

    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("DELETE FROM events WHERE id IN ('d', 'e')")
        .unwrap();
    drop(conn);
    let (ok, out) = verify(&config_path, &[]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("the ledger ends before checkpoint seq 5 written at"),
        "{out}"
    );
    assert!(
        out.contains(&format!("({}, line 2)", checkpoint.display())),
        "{out}"
    );

    // A copy kept elsewhere is named on the command line.
    let copy = dir.join("elsewhere.checkpoint");
    std::fs::rename(&checkpoint, &copy).unwrap();
    let (ok, out) = verify(&config_path, &["--checkpoint", copy.to_str().unwrap()]);
    assert!(!ok && out.contains(&copy.display().to_string()), "{out}");

    let (ok, out) = verify(&config_path, &[]);
    assert!(ok, "{out}");
    assert!(
        out.contains("truncation not detectable: no checkpoint"),
        "{out}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
