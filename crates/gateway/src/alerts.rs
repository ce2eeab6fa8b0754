//! Alerts: budgets crossing 80% and 100%, loop and velocity trips, suspensions. Each is
//! raised once per threshold and window (deduplicated in the counters, so once across
//! replicas too), kept in the ledger, and sent to the configured webhooks through a bounded
//! queue by one delivery task that retries with backoff: never on the request path.

use std::sync::Arc;
use std::time::Duration;

use airlock_core::config::Webhook;
use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::Full;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use airlock_state::AlertRecord;

use crate::controls::now_ms;
use crate::gateway::Gateway;
use crate::upstream::Client;

/// Alerts waiting for delivery; beyond this they are logged and dropped.
const QUEUE: usize = 1024;
const ATTEMPTS: u32 = 4;
const TIMEOUT: Duration = Duration::from_secs(5);

pub struct Alert {
    /// `budget_threshold`, `loop_detected`, `velocity_tripped`, `agent_suspended`.
    pub kind: &'static str,
    pub agent: String,
    pub message: String,
    pub detail: Value,
}

pub struct Alerts {
    tx: mpsc::Sender<(Alert, Arc<Vec<Webhook>>)>,
}

impl Alerts {
    /// Starts the delivery task; it ends when the gateway (holding the sender) is dropped.
    pub fn start(client: Client) -> Alerts {
        let (tx, mut rx) = mpsc::channel::<(Alert, Arc<Vec<Webhook>>)>(QUEUE);
        tokio::spawn(async move {
            while let Some((alert, hooks)) = rx.recv().await {
                for hook in hooks.iter() {
                    deliver(&client, hook, &alert).await;
                }
            }
        });
        Alerts { tx }
    }
}

impl Gateway {
    /// Sends `alert` once per `dedupe` key within `ttl_ms`, off the request path.
    pub(crate) fn alert(self: &Arc<Self>, alert: Alert, dedupe: String, ttl_ms: u64) {
        let hooks = Arc::new(self.runtime().config.webhooks.clone());
        let gateway = self.clone();
        tokio::spawn(async move {
            let key = format!("alerted:{dedupe}");
            match gateway.counters.adjust(&[(key, 1, ttl_ms)], now_ms()).await {
                Ok(v) if v.first() == Some(&1) => {}
                Ok(_) => return, // already sent in this window
                Err(e) => {
                    tracing::warn!(error = %e, "alert deduplication unavailable; sending anyway")
                }
            }
            tracing::info!(kind = alert.kind, agent = %alert.agent, "alert: {}", alert.message);
            let record = AlertRecord {
                ts_ms: now_ms(),
                kind: alert.kind.into(),
                agent: alert.agent.clone(),
                message: alert.message.clone(),
                detail: alert.detail.to_string(),
            };
            if let Err(e) = gateway.ledger.record_alert(record).await {
                tracing::error!(error = %e, "could not record an alert in the ledger");
            }
            if !hooks.is_empty() && gateway.alerts.tx.try_send((alert, hooks)).is_err() {
                tracing::error!("alert queue full; alert dropped");
            }
        });
    }
}

async fn deliver(client: &Client, hook: &Webhook, alert: &Alert) {
    let body = if hook.slack {
        json!({ "text": format!(":rotating_light: Airlock — {}", alert.message) })
    } else {
        json!({
            "type": alert.kind,
            "agent": alert.agent,
            "message": alert.message,
            "detail": alert.detail,
            "ts_ms": now_ms(),
        })
    };
    let body = Bytes::from(body.to_string());
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
        }
        let request = Request::builder()
            .method(Method::POST)
            .uri(&hook.url)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(body.clone()));
        let Ok(request) = request else {
            tracing::error!("alert webhook URL is not valid");
            return;
        };
        match tokio::time::timeout(TIMEOUT, client.request(request)).await {
            Ok(Ok(res)) if res.status().is_success() => return,
            Ok(Ok(res)) => tracing::warn!(
                status = res.status().as_u16(),
                attempt,
                "alert webhook refused"
            ),
            Ok(Err(e)) => tracing::warn!(error = %e, attempt, "alert webhook unreachable"),
            Err(_) => tracing::warn!(attempt, "alert webhook timed out"),
        }
    }
    tracing::error!(
        kind = alert.kind,
        "alert not delivered after {ATTEMPTS} attempts"
    );
}
