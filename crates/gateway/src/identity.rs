//! Who is calling: the agent key from the request headers, looked up among the digests of
//! the configured and runtime-made keys. Keys themselves are never stored or logged.

use std::collections::HashMap;
use std::sync::Arc;

use airlock_core::config::{Agent, Config};
use airlock_core::keys::{KeyDigest, format_key};
use airlock_state::StoredKey;
use http::HeaderMap;

/// Digest → agent, rebuilt with every config snapshot.
#[derive(Default)]
pub struct KeyRing {
    by_digest: HashMap<KeyDigest, (KeyDigest, Arc<Agent>)>,
}

impl KeyRing {
    /// Config keys, and stored keys not revoked by `now_ms` (a rotated key keeps working
    /// until its grace period ends).
    pub fn build(config: &Config, stored: &[StoredKey], now_ms: u64) -> KeyRing {
        let mut by_digest = HashMap::new();
        for agent in &config.agents {
            let shared = Arc::new(agent.clone());
            for d in &agent.keys {
                by_digest.insert(*d, (*d, shared.clone()));
            }
            for k in stored
                .iter()
                .filter(|k| k.agent == agent.id && k.revoked_ms.is_none_or(|r| r > now_ms))
            {
                by_digest.insert(k.digest, (k.digest, shared.clone()));
            }
        }
        KeyRing { by_digest }
    }

    /// The agent owning `key`. The map is keyed by the key's SHA-256, so lookup timing
    /// says nothing useful about the key; the final comparison is constant-time anyway.
    pub fn identify(&self, key: &str) -> Option<Arc<Agent>> {
        let digest = KeyDigest::of(key);
        let (stored, agent) = self.by_digest.get(&digest)?;
        stored.matches(&digest).then(|| agent.clone())
    }
}

impl KeyRing {
    /// Whether the key of this digest still identifies an agent (not revoked, not removed).
    pub fn holds(&self, digest: &KeyDigest) -> bool {
        self.by_digest.contains_key(digest)
    }
}

/// The key an agent presented: `Authorization: Bearer`, else `x-api-key` (Anthropic SDKs).
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    bearer
        .or_else(|| {
            headers
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        })
        .filter(|k| !k.is_empty())
}

/// The key an agent presented to the egress proxy: the password of `Proxy-Authorization:
/// Basic` (what `HTTPS_PROXY=http://agent:KEY@host:port` sends), or the user name when the
/// password is empty; `Bearer` also works.
pub fn proxy_key(headers: &HeaderMap) -> Option<String> {
    use base64::Engine;
    let value = headers
        .get(http::header::PROXY_AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    if let Some(token) = value.strip_prefix("Bearer ") {
        return Some(token.trim().to_string()).filter(|k| !k.is_empty());
    }
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':').unwrap_or((&decoded, ""));
    let key = if password.is_empty() { user } else { password };
    Some(key.to_string()).filter(|k| !k.is_empty())
}

/// A fresh agent key from the OS's random source.
pub fn new_key() -> String {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    format_key(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_credentials_carry_the_key_as_password_or_user() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(http::header::PROXY_AUTHORIZATION, v.parse().unwrap());
            proxy_key(&h)
        };
        // base64("agent:al-key") and base64("al-key:")
        assert_eq!(with("Basic YWdlbnQ6YWwta2V5").as_deref(), Some("al-key"));
        assert_eq!(with("Basic YWwta2V5Og==").as_deref(), Some("al-key"));
        assert_eq!(with("Bearer al-key").as_deref(), Some("al-key"));
        assert_eq!(with("Basic !!!"), None);
        assert_eq!(with("Basic Og=="), None); // ":" alone
        assert_eq!(proxy_key(&HeaderMap::new()), None);
    }

    #[test]
    fn both_sdk_header_styles_are_accepted() {
        let mut h = HeaderMap::new();
        h.insert("x-api-key", "al-a".parse().unwrap());
        assert_eq!(presented_key(&h), Some("al-a"));
        h.insert("authorization", "Bearer al-b".parse().unwrap());
        assert_eq!(presented_key(&h), Some("al-b"));
        assert_eq!(presented_key(&HeaderMap::new()), None);
    }

    #[test]
    fn configured_and_stored_keys_identify_their_agent() {
        let cfg = Config::parse(
            &format!(
                "agents:\n  - id: bot\n    keys: [\"{}\"]\n  - id: other\n",
                KeyDigest::of("al-config")
            ),
            &|_| None,
        )
        .unwrap();
        let stored = [
            StoredKey {
                id: "1".into(),
                agent: "other".into(),
                digest: KeyDigest::of("al-stored"),
                created_ms: 0,
                revoked_ms: None,
            },
            StoredKey {
                id: "2".into(),
                agent: "other".into(),
                digest: KeyDigest::of("al-revoked"),
                created_ms: 0,
                revoked_ms: Some(1),
            },
            StoredKey {
                id: "3".into(),
                agent: "gone".into(),
                digest: KeyDigest::of("al-orphan"),
                created_ms: 0,
                revoked_ms: None,
            },
        ];
        let ring = KeyRing::build(&cfg, &stored, 1);
        assert_eq!(ring.identify("al-config").unwrap().id, "bot");
        assert_eq!(ring.identify("al-stored").unwrap().id, "other");
        assert!(ring.identify("al-revoked").is_none());
        assert!(ring.identify("al-orphan").is_none());
        assert!(ring.identify("al-unknown").is_none());
        assert!(new_key() != new_key());
    }
}
