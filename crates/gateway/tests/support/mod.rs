//! Boots a real Airlock on loopback in front of the in-repo mock provider.

// Each test file uses its own part of the harness.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use airlock_core::Config;
use airlock_core::keys::KeyDigest;
use airlock_gateway::{Gateway, Running, start};
use airlock_mock::Mock;
use airlock_state::Ledger;
use airlock_state::ledger::SqliteStore;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub const KEY: &str = "al-test-agent-key";
pub const ADMIN: &str = "adm-test";

pub struct Harness {
    pub mock: Mock,
    pub running: Running,
    pub client: Client<HttpConnector, Full<Bytes>>,
    pub _dir: TempDir,
}

pub struct TempDir(pub std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir() -> TempDir {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("airlock-it-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

/// Starts the mock and a gateway whose config is `extra` appended to a base that routes
/// `gpt-4o-mini` and `claude` to the mock and gives agent `bot` the key [`KEY`].
pub async fn boot(extra: &str) -> Harness {
    boot_with(extra, Options::default()).await
}

/// What [`boot_with`] changes in the base setup.
#[derive(Default)]
pub struct Options {
    /// The ledger's queue, in events (its default when `None`).
    pub queue: Option<usize>,
    /// `state.durable`.
    pub durable: bool,
}

/// [`boot`] with `options`.
pub async fn boot_with(extra: &str, options: Options) -> Harness {
    let queue = options.queue;
    let mock = Mock::start().await;
    let dir = temp_dir();
    let yaml = format!(
        "listen: {{ gateway: 127.0.0.1:0, admin: 127.0.0.1:0, egress: 127.0.0.1:0 }}
state: {{ ledger: sqlite://{db}, durable: {durable} }}
providers:
  mock: {{ kind: openai, base_url: http://{addr}/v1, api_key: sk-upstream }}
  ant: {{ kind: anthropic, base_url: http://{addr}, api_key: sk-ant-upstream }}
  down: {{ kind: openai, base_url: http://{addr}/status=503/v1, api_key: sk-down }}
agents:
  - id: bot
    team: core
    keys: [\"{digest}\"]
{extra}",
        db = dir.0.join("ledger.db").display(),
        durable = options.durable,
        addr = mock.addr,
        digest = KeyDigest::of(KEY),
    );
    let config =
        Config::parse(&yaml, &|_| None).unwrap_or_else(|e| panic!("test config: {e}\n{yaml}"));
    let ledger = match queue {
        None => Ledger::open(&config.state.ledger).unwrap(),
        Some(n) => {
            let path = dir.0.join("ledger.db");
            let store = || Box::new(SqliteStore::open(&path).unwrap());
            Ledger::with_capacity(store(), store(), n)
        }
    };
    let counters = airlock_state::Counters::open("memory").unwrap();
    let gateway: Arc<Gateway> = Gateway::new(config, ledger, counters, Vec::new(), ADMIN.into());
    let running = start(gateway, None).await.unwrap();
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new()).build(http);
    Harness {
        mock,
        running,
        client,
        _dir: dir,
    }
}

impl Harness {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running.gateway_addr)
    }

    pub fn post(&self, path: &str) -> http::request::Builder {
        http::Request::post(self.url(path))
            .header("authorization", format!("Bearer {KEY}"))
            .header("content-type", "application/json")
    }

    pub async fn send(
        &self,
        req: http::Request<Full<Bytes>>,
    ) -> http::Response<hyper::body::Incoming> {
        self.client.request(req).await.expect("the gateway answers")
    }

    /// Events from the admin API, newest first, once `n` have been written.
    pub async fn events(&self, n: usize) -> Vec<serde_json::Value> {
        for _ in 0..200 {
            self.running.gateway.ledger().flush().await.unwrap();
            let req = http::Request::get(format!(
                "http://{}/api/events?limit=100",
                self.running.admin_addr
            ))
            .header("authorization", format!("Bearer {ADMIN}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
            let res = self.send(req).await;
            let body: serde_json::Value =
                serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes())
                    .unwrap();
            let events = body["events"].as_array().cloned().unwrap_or_default();
            if events.len() >= n {
                return events;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("fewer than {n} events were recorded");
    }
}

pub fn json_body(v: &serde_json::Value) -> Full<Bytes> {
    Full::new(Bytes::from(v.to_string()))
}

pub async fn read_json(res: http::Response<hyper::body::Incoming>) -> serde_json::Value {
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)))
}
