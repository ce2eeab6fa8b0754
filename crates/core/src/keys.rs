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
        // Checked as bytes before any pairing: a multi-byte character in the text must
        // not reach a slice boundary (a panic here took hot reload down for good).
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("sha256 digest is not hexadecimal".to_string());
        }
        if hex.len() != 64 {
            return Err(format!(
                "sha256 digest has {} hex digits, expected 64",
                hex.len()
            ));
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
            // Every byte is a hex digit (checked above), so `to_digit` always answers.
            let digit = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
            *byte = (digit(pair[0]) << 4) | digit(pair[1]);
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
/// Whether `text` has the form of an Airlock agent key (`al-…`), which never goes to a
/// provider.
pub fn is_airlock_key(text: &str) -> bool {
    text.trim().starts_with(KEY_PREFIX)
}

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
    fn a_digest_with_a_multi_byte_character_is_an_error_not_a_panic() {
        // 64 bytes in all, with `é` (two bytes) across a pair boundary.
        let text = format!("sha256:a\u{e9}{}", "0".repeat(61));
        assert_eq!(text.len(), 7 + 64);
        assert!(KeyDigest::parse(&text).is_err());
        assert!(KeyDigest::parse(&format!("sha256:{}\u{e9}", "0".repeat(62))).is_err());
        let upper = format!("sha256:{}", "AB".repeat(32));
        assert_eq!(KeyDigest::parse(&upper).map(|d| d.0), Ok([0xab; 32]));
    }

    #[test]
    fn new_keys_are_prefixed() {
        let k = format_key([0xab; 24]);
        assert!(k.starts_with("al-"));
        assert_eq!(k.len(), 3 + 48);
    }

    /// Random inputs after the corpus in a `cargo test` run (milliseconds);
    /// `BOLERO_RANDOM_ITERATIONS` overrides it for a longer campaign (README "Fuzzing").
    const RANDOM_INPUTS: usize = 50_000;

    /// A written digest, maybe with one character replaced or inserted: what a hand-edited
    /// config or a damaged ledger row looks like.
    #[derive(Debug, bolero::TypeGenerator)]
    struct Written {
        digest: [u8; 32],
        upper: bool,
        edit: Option<(u8, char, bool)>,
    }

    #[test]
    fn any_written_digest_parses_or_is_refused() {
        bolero::check!()
            .with_iterations(RANDOM_INPUTS)
            .with_type::<Written>()
            .for_each(|w: &Written| {
                let mut text = KeyDigest(w.digest).to_string();
                if w.upper {
                    text = format!("sha256:{}", text[7..].to_ascii_uppercase());
                }
                let Some((at, c, replace)) = w.edit else {
                    assert_eq!(KeyDigest::parse(&text), Ok(KeyDigest(w.digest)));
                    return;
                };
                let mut chars: Vec<char> = text.chars().collect();
                let at = usize::from(at) % chars.len();
                if replace {
                    chars[at] = c;
                } else {
                    chars.insert(at, c);
                }
                let text: String = chars.into_iter().collect();
                let well_formed = text.strip_prefix("sha256:").is_some_and(|hex| {
                    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
                });
                match KeyDigest::parse(&text) {
                    Ok(d) => {
                        assert!(well_formed, "{text:?}");
                        assert_eq!(d.to_string(), text.to_ascii_lowercase());
                    }
                    Err(_) => assert!(!well_formed, "{text:?}"),
                }
            });
    }

    #[test]
    fn any_text_is_a_digest_or_an_error() {
        bolero::check!()
            .with_iterations(RANDOM_INPUTS)
            .for_each(|bytes: &[u8]| {
                let _ = KeyDigest::parse(&String::from_utf8_lossy(bytes));
            });
    }
}
