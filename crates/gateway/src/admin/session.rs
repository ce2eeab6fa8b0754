//! Dashboard sign-in. A person types the admin token into the login form once; the
//! browser then holds a random session id in an `HttpOnly`, `SameSite=Strict` cookie, so
//! the token never sits in a URL, in page script or in the browser's history. Only the
//! id's SHA-256 is kept, compared in constant time. Sessions live in this process (a
//! restart signs everyone out) and last 12 hours.
//!
//! A cookie rides along on any request the browser makes, so state-changing requests that
//! rely on it must also carry `x-airlock-dashboard: 1`: a page of another origin can only
//! add such a header after a CORS preflight, which this listener never grants.
//!
//! Sessions live in one process: behind a load balancer, the dashboard needs sticky routing
//! or one replica of its own.

use std::sync::Mutex;
use std::time::Duration;

use airlock_core::keys::KeyDigest;
use http::{HeaderMap, HeaderValue, Method, header};

const COOKIE: &str = "airlock_session";
const TTL_MS: u64 = 12 * 3600 * 1000;
/// Sessions kept at once; signing in beyond that ends the oldest.
const MOST: usize = 256;
/// How long each wrong admin token waits for its answer.
const WRONG_TOKEN_DELAY: Duration = Duration::from_millis(500);
/// The header a signed-in page adds to requests that change something.
pub const CSRF_HEADER: &str = "x-airlock-dashboard";

#[derive(Default)]
pub struct Sessions {
    /// Digest of each session id and when it expires, oldest first.
    open: Mutex<Vec<(KeyDigest, u64)>>,
    /// Wrong tokens take turns: guesses stay at two a second however many are sent at
    /// once, while right ones never wait.
    wrong: tokio::sync::Mutex<()>,
}

impl Sessions {
    /// Opens a session: the `Set-Cookie` value that carries it.
    pub fn open(&self, now_ms: u64) -> HeaderValue {
        let mut random = [0u8; 32];
        getrandom::fill(&mut random).expect("the OS random source is available");
        let id: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let mut open = self.lock();
        open.retain(|(_, expires)| *expires > now_ms);
        if open.len() >= MOST {
            open.remove(0);
        }
        open.push((KeyDigest::of(&id), now_ms + TTL_MS));
        cookie(&id, TTL_MS / 1000)
    }

    /// Whether the request carries a live session, and for a request that changes
    /// something, the dashboard's header too.
    pub fn admits(&self, method: &Method, headers: &HeaderMap, now_ms: u64) -> bool {
        let Some(id) = presented(headers) else {
            return false;
        };
        let safe = matches!(*method, Method::GET | Method::HEAD);
        if !safe && headers.get(CSRF_HEADER).is_none_or(|v| v != "1") {
            return false;
        }
        let digest = KeyDigest::of(id);
        self.lock()
            .iter()
            .any(|(d, expires)| *expires > now_ms && d.matches(&digest))
    }

    /// Ends the request's session; the `Set-Cookie` value that clears the cookie.
    pub fn close(&self, headers: &HeaderMap) -> HeaderValue {
        if let Some(id) = presented(headers) {
            let digest = KeyDigest::of(id);
            self.lock().retain(|(d, _)| !d.matches(&digest));
        }
        cookie("", 0)
    }

    /// Answers a wrong admin token (bearer or sign-in) in its turn, half a second each.
    pub async fn wrong_token(&self) {
        let _turn = self.wrong.lock().await;
        tokio::time::sleep(WRONG_TOKEN_DELAY).await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(KeyDigest, u64)>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn cookie(value: &str, max_age_s: u64) -> HeaderValue {
    // The admin listener is plain HTTP on a private address by default, so no `Secure`:
    // browsers would drop the cookie. `Path=/` covers the page and the API.
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Max-Age={max_age_s}; Path=/; HttpOnly; SameSite=Strict"
    ))
    .expect("a session id is ASCII")
}

/// The session id in the request's `Cookie` headers.
fn presented(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookie(set_cookie: &HeaderValue, csrf: bool) -> HeaderMap {
        let pair = set_cookie.to_str().unwrap().split(';').next().unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            format!("theme=dark; {pair}").parse().unwrap(),
        );
        if csrf {
            h.insert(CSRF_HEADER, HeaderValue::from_static("1"));
        }
        h
    }

    #[test]
    fn a_session_admits_reads_and_marked_writes_until_it_ends() {
        let sessions = Sessions::default();
        let set = sessions.open(1_000);
        let attrs = set.to_str().unwrap();
        assert!(attrs.contains("HttpOnly") && attrs.contains("SameSite=Strict"));
        let plain = with_cookie(&set, false);
        let marked = with_cookie(&set, true);
        assert!(sessions.admits(&Method::GET, &plain, 2_000));
        assert!(
            !sessions.admits(&Method::POST, &plain, 2_000),
            "no CSRF header"
        );
        assert!(sessions.admits(&Method::POST, &marked, 2_000));
        assert!(
            !sessions.admits(&Method::GET, &plain, 1_000 + TTL_MS),
            "expired"
        );

        let other = Sessions::default();
        assert!(!other.admits(&Method::GET, &plain, 2_000), "unknown id");
        assert!(!sessions.admits(&Method::GET, &HeaderMap::new(), 2_000));

        // Signing in again and again ends the oldest sessions, never grows without end.
        let first = with_cookie(&sessions.open(3_000), false);
        for _ in 0..MOST {
            sessions.open(3_000);
        }
        assert!(
            !sessions.admits(&Method::GET, &first, 3_000),
            "the oldest ended"
        );
        assert_eq!(sessions.lock().len(), MOST);

        let cleared = sessions.close(&plain);
        assert!(cleared.to_str().unwrap().contains("Max-Age=0"));
        assert!(!sessions.admits(&Method::GET, &plain, 2_000), "signed out");
    }
}
