//! A fresh ledger per test on each backend.
//!
//! The PostgreSQL server is `AIRLOCK_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/test`); each test gets a schema of its own, so tests
//! run in parallel and leave nothing behind. No server means failing tests, never skipped
//! ones: CI starts one (.ci/run).

use std::sync::atomic::{AtomicUsize, Ordering};

use super::super::postgres::off_runtime;
use super::super::*;

pub enum TestDb {
    Sqlite {
        dir: std::path::PathBuf,
        url: String,
    },
    Postgres {
        schema: String,
        url: String,
    },
}

fn server() -> String {
    std::env::var("AIRLOCK_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Runs `sql` on the test server as its own client, off the async runtime.
pub(super) fn admin<T: Send>(f: impl FnOnce(&mut ::postgres::Client) -> T + Send) -> T {
    off_runtime(|| {
        let url = server();
        let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {url} ({}): start it (.ci/run does) \
                 or point AIRLOCK_TEST_POSTGRES at one",
                LedgerError::from(e)
            )
        });
        f(&mut client)
    })
}

impl TestDb {
    pub fn sqlite(name: &str) -> TestDb {
        let dir =
            std::env::temp_dir().join(format!("airlock-ledger-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("ledger.db").display());
        TestDb::Sqlite { dir, url }
    }

    /// An empty schema of its own on the test server, first on the ledger's search path.
    pub fn postgres() -> TestDb {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let schema = format!(
            "airlock_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}");
        admin(|c| c.batch_execute(&sql)).unwrap();
        let base = server();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-csearch_path%3D{schema}");
        TestDb::Postgres { schema, url }
    }

    pub fn url(&self) -> &str {
        match self {
            TestDb::Sqlite { url, .. } | TestDb::Postgres { url, .. } => url,
        }
    }

    /// A checkpoint file of this test's own, removed with it.
    pub fn checkpoint(&self) -> std::path::PathBuf {
        match self {
            TestDb::Sqlite { dir, .. } => dir.join("ledger.checkpoint"),
            TestDb::Postgres { schema, .. } => {
                std::env::temp_dir().join(format!("{schema}.checkpoint"))
            }
        }
    }

    /// Runs `sql` on the ledger's database behind its back, as someone editing it would.
    pub fn tamper(&self, sql: &str) {
        match self {
            TestDb::Sqlite { dir, .. } => {
                let conn = rusqlite::Connection::open(dir.join("ledger.db")).unwrap();
                conn.execute_batch(sql).unwrap();
            }
            TestDb::Postgres { schema, .. } => {
                let sql = format!("SET search_path TO {schema}; {sql}");
                admin(|c| c.batch_execute(&sql)).unwrap();
            }
        }
    }

    /// Whether `needle` is anywhere in what the ledger stored: the database files' bytes,
    /// or the text of any row of the keys table.
    pub fn stores(&self, needle: &str) -> bool {
        match self {
            TestDb::Sqlite { dir, .. } => std::fs::read_dir(dir).unwrap().any(|f| {
                let raw = std::fs::read(f.unwrap().path()).unwrap();
                raw.windows(needle.len()).any(|w| w == needle.as_bytes())
            }),
            TestDb::Postgres { schema, .. } => {
                let sql = format!(
                    "SELECT COUNT(*) FROM {schema}.agent_keys k WHERE strpos(k::text, $1) > 0"
                );
                let n: i64 = admin(|c| c.query_one(&sql, &[&needle])).unwrap().get(0);
                n > 0
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match self {
            TestDb::Sqlite { dir, .. } => {
                let _ = std::fs::remove_dir_all(dir);
            }
            // Not `admin`, which panics: this may run while a failed test unwinds.
            TestDb::Postgres { schema, .. } => off_runtime(|| {
                let _ =
                    std::fs::remove_file(std::env::temp_dir().join(format!("{schema}.checkpoint")));
                if let Ok(mut c) = ::postgres::Client::connect(&server(), ::postgres::NoTls) {
                    let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
                }
            }),
        }
    }
}
