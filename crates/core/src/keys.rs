//! Agent keys: what is stored (a SHA-256 digest, never the key) and how a presented key
//! is checked against it.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix of every key Airlock makes, so a leaked one is recognisable in a scan.
pub const KEY_PREFIX: &str = "al-";

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyDigest([u8; 32]);

impl KeyDigest {
    pub fn of(key: &str) -> KeyDigest {
        KeyDigest(Sha256::digest(key.as_bytes()).into())
    }

    /// Parses `sha256:<64 hex>` as written in config and the ledger.
    pub fn parse(text: &str) -> Result<KeyDigest, String> {
        let hex = text
            .strip_prefix("sha256:")
            .ok_or_else(|| "a key must be written as sha256:<64 hex digits>".to_string())?;
        if hex.len() != 64 {
            return Err(format!(
                "sha256 digest has {} hex digits, expected 64",
                hex.len()
            ));
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                .map_err(|_| "sha256 digest is not hexadecimal".to_string())?;
        }
        Ok(KeyDigest(out))
    }

    /// Equality that takes the same time wherever the digests differ.
    pub fn matches(&self, other: &KeyDigest) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl std::fmt::Display for KeyDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("sha256:")?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl std::fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

/// Formats random bytes as a new agent key (`al-` + 48 hex digits: 192 bits).
pub fn format_key(random: [u8; 24]) -> String {
    let mut key = String::from(KEY_PREFIX);
    for b in random {
        key.push_str(&format!("{b:02x}"));
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_key_digest_matches_the_config_contract() {
        let d = KeyDigest::of("al-example-support-bot-key");
        assert_eq!(
            d.to_string(),
            "sha256:f5a4500cbaff95f6f7a3b8dc3f7e0c486550f263217f68951dd5e37445e7a7d0"
        );
        assert_eq!(KeyDigest::parse(&d.to_string()), Ok(d));
        assert!(d.matches(&KeyDigest::of("al-example-support-bot-key")));
        assert!(!d.matches(&KeyDigest::of("al-other")));
        assert!(KeyDigest::parse("md5:abc").is_err());
        assert!(KeyDigest::parse("sha256:zz").is_err());
    }

    #[test]
    fn new_keys_are_prefixed() {
        let k = format_key([0xab; 24]);
        assert!(k.starts_with("al-"));
        assert_eq!(k.len(), 3 + 48);
    }
}
