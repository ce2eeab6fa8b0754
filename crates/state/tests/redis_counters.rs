//! The Redis counters against a real redis-server of their own (a free port, no
//! persistence), stopped and restarted to see failures and recovery.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use airlock_core::admission::{Charge, Plan, Rule};
use airlock_state::{Counters, CountersError, Decision};

struct RedisServer {
    port: u16,
    child: Child,
}

impl RedisServer {
    fn start_on(port: u16) -> RedisServer {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (.ci/run installs it)");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return RedisServer { port, child };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut child = child;
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server did not start on port {port}");
    }

    fn start() -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        RedisServer::start_on(port)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn plan(charges: Vec<Charge>) -> Plan {
    let rules = charges
        .iter()
        .map(|_| Rule::CallsPerRun { limit: 0 })
        .collect();
    Plan {
        charges,
        rules,
        ..Plan::default()
    }
}

fn charge(key: &str, limit: u64, amount: u64) -> Charge {
    Charge {
        key: key.into(),
        limit,
        amount,
        ttl_ms: 60_000,
        enforce: true,
    }
}

#[tokio::test]
async fn an_empty_store_refuses_until_rebuilt_then_applies_plans_atomically() {
    let server = RedisServer::start();
    let c = Counters::open(&server.url()).unwrap();
    let p = plan(vec![charge("budget:a", 10, 4), charge("budget:b", 5, 4)]);
    assert!(
        matches!(c.admit("x", &p, "f", 0).await, Err(CountersError::Empty)),
        "never silently from zero"
    );

    assert!(
        c.restore(&[("budget:a".into(), 2, 60_000)], &["frozen".into()], 0)
            .await
            .unwrap()
    );
    assert!(
        !c.restore(&[("budget:a".into(), 99, 60_000)], &[], 0)
            .await
            .unwrap(),
        "a ready store is left alone"
    );
    assert!(matches!(
        c.admit("x", &p, "f", 0).await,
        Ok(Decision::Admitted { .. })
    ));
    assert_eq!(
        c.admit("x", &p, "f", 0).await.unwrap(),
        Decision::Refused {
            index: 1,
            current: 4
        }
    );
    assert_eq!(
        c.adjust(&[("budget:a".into(), 0, 60_000)], 0)
            .await
            .unwrap(),
        vec![6],
        "2 restored + 4, the refusal added nothing"
    );
    assert_eq!(
        c.admit("frozen", &plan(vec![]), "f", 0).await.unwrap(),
        Decision::Suspended
    );
    assert_eq!(c.suspended().await.unwrap(), vec!["frozen".to_string()]);
}

#[tokio::test]
async fn concurrent_admissions_never_overshoot() {
    let server = RedisServer::start();
    let c = Arc::new(Counters::open(&server.url()).unwrap());
    c.restore(&[], &[], 0).await.unwrap();
    let p = Arc::new(plan(vec![charge("budget:shared", 100, 10)]));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (c, p) = (c.clone(), p.clone());
            tokio::spawn(async move { c.admit("x", &p, "f", 0).await.unwrap() })
        })
        .collect();
    let mut admitted = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), Decision::Admitted { .. }) {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 10);
}

#[tokio::test]
async fn monitor_flags_history_and_settlements_round_trip() {
    let server = RedisServer::start();
    let c = Counters::open(&server.url()).unwrap();
    c.restore(&[], &[], 0).await.unwrap();
    let mut p = plan(vec![Charge {
        enforce: false,
        ..charge("same:fp", 1, 1)
    }]);
    p.history = Some(("runhist:x:r".into(), 3, 60_000));
    c.admit("x", &p, "a", 0).await.unwrap();
    c.admit("x", &p, "b", 0).await.unwrap();
    c.admit("x", &p, "c", 0).await.unwrap();
    let Decision::Admitted { flagged, recent } = c.admit("x", &p, "d", 0).await.unwrap() else {
        panic!()
    };
    assert_eq!(flagged, vec![(0, 3)]);
    assert_eq!(recent, ["b", "c", "d"]);
    assert_eq!(
        c.adjust(
            &[("same:fp".into(), -4, 60_000), ("new".into(), 7, 60_000)],
            0
        )
        .await
        .unwrap(),
        vec![0, 7]
    );
}

#[tokio::test]
async fn an_outage_is_an_error_and_a_restart_needs_a_rebuild() {
    let mut server = RedisServer::start();
    let port = server.port;
    let c = Counters::open(&server.url()).unwrap();
    c.restore(&[], &[], 0).await.unwrap();
    let p = plan(vec![charge("k", 10, 1)]);
    assert!(c.admit("x", &p, "f", 0).await.is_ok());
    server.stop();
    assert!(matches!(
        c.admit("x", &p, "f", 0).await,
        Err(CountersError::Unavailable(_))
    ));
    let _again = RedisServer::start_on(port);
    let mut answer = c.admit("x", &p, "f", 0).await;
    for _ in 0..50 {
        if !matches!(answer, Err(CountersError::Unavailable(_))) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        answer = c.admit("x", &p, "f", 0).await;
    }
    assert!(matches!(answer, Err(CountersError::Empty)), "{answer:?}");
}
