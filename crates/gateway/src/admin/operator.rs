//! Operator actions: the kill switch and agent keys at run time. Changes land in the
//! counters and the ledger, so every replica sees them (keys within a second).

use std::sync::Arc;
use std::time::Duration;

use airlock_core::config::units::parse_span;
use airlock_core::keys::KeyDigest;
use airlock_state::StoredKey;
use bytes::Bytes;
use http::{Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::error;
use crate::controls::now_ms;
use crate::gateway::Gateway;
use crate::http::{Body, json_response};
use crate::identity::new_key;

/// How long a rotated key keeps working when the request names no grace period.
const DEFAULT_GRACE: Duration = Duration::from_secs(3600);

pub async fn agents(gateway: &Gateway) -> Response<Body> {
    let runtime = gateway.runtime();
    let suspended = gateway.ledger.suspensions().await.unwrap_or_default();
    let list: Vec<_> = runtime
        .config
        .agents
        .iter()
        .map(|a| {
            let s = suspended.iter().find(|s| s.agent == a.id);
            json!({"id": a.id, "team": a.team, "suspended": s.is_some(), "suspension": s})
        })
        .collect();
    json_response(StatusCode::OK, &json!({ "agents": list }))
}

pub async fn set_suspended(
    gateway: &Arc<Gateway>,
    agent: &str,
    suspend: bool,
    body: &Bytes,
) -> Response<Body> {
    if gateway.runtime().config.agent(agent).is_none() {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no agent `{agent}` in the config"),
        );
    }
    if suspend {
        #[derive(Deserialize, Default)]
        struct Why {
            reason: Option<String>,
        }
        let why: Why = serde_json::from_slice(body).unwrap_or_default();
        gateway
            .suspend(
                agent,
                why.reason.as_deref().unwrap_or("suspended by an operator"),
            )
            .await;
    } else {
        gateway.resume(agent).await;
    }
    json_response(
        StatusCode::OK,
        &json!({"agent": agent, "suspended": suspend}),
    )
}

pub async fn keys(gateway: &Gateway) -> Response<Body> {
    match gateway.ledger.keys().await {
        Ok(keys) => {
            let list: Vec<_> = keys
                .iter()
                .map(|k| json!({"id": k.id, "agent": k.agent, "created_ms": k.created_ms, "revoked_ms": k.revoked_ms}))
                .collect();
            json_response(StatusCode::OK, &json!({ "keys": list }))
        }
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ledger_unavailable",
            &e.to_string(),
        ),
    }
}

/// `{"agent": ID}` makes a key; with `"rotate": KEY_ID` the old key keeps working for
/// `"grace"` (default 1h) and then stops.
pub async fn create_key(gateway: &Gateway, body: &Bytes) -> Response<Body> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Create {
        agent: String,
        rotate: Option<String>,
        grace: Option<String>,
    }
    let req: Create = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                &format!("expected {{\"agent\": ID}}: {e}"),
            );
        }
    };
    if gateway.runtime().config.agent(&req.agent).is_none() {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no agent `{}` in the config", req.agent),
        );
    }
    let grace = match req.grace.as_deref().map(parse_span) {
        None => DEFAULT_GRACE,
        Some(Ok(g)) => g,
        Some(Err(e)) => return error(StatusCode::BAD_REQUEST, "bad_request", &e),
    };
    let now = now_ms();
    let key = new_key();
    let digest = KeyDigest::of(&key);
    let id = format!("key_{}", &digest.to_string()[7..23]);
    let record = StoredKey {
        id: id.clone(),
        agent: req.agent.clone(),
        digest,
        created_ms: now,
        revoked_ms: None,
    };
    if let Err(e) = gateway.ledger.insert_key(record).await {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ledger_unavailable",
            &e.to_string(),
        );
    }
    let mut answer = json!({"id": id, "agent": req.agent, "key": key});
    if let Some(old) = req.rotate {
        let until = now + grace.as_millis() as u64;
        match gateway.ledger.revoke_key(old.clone(), until).await {
            Ok(true) => answer["rotated"] = json!({"id": old, "valid_until_ms": until}),
            Ok(false) => {
                return error(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    &format!("no key `{old}` to rotate"),
                );
            }
            Err(e) => {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "ledger_unavailable",
                    &e.to_string(),
                );
            }
        }
    }
    gateway.refresh_keys().await;
    json_response(StatusCode::CREATED, &answer)
}

pub async fn revoke_key(gateway: &Gateway, id: &str) -> Response<Body> {
    match gateway.ledger.revoke_key(id.into(), now_ms()).await {
        Ok(true) => {
            gateway.refresh_keys().await;
            json_response(StatusCode::OK, &json!({"id": id, "revoked": true}))
        }
        Ok(false) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no key `{id}`"),
        ),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ledger_unavailable",
            &e.to_string(),
        ),
    }
}
