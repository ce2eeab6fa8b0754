//! Where in a JSON document something was found, written as people read it:
//! `messages[1].content[0].text`. The path goes into events, so a key that could itself be
//! sensitive (anything but a plain name, or one a detector fires on) is written `*`.

use std::fmt;

use super::dlp::Detectors;

#[derive(Debug, Default)]
pub struct Path {
    text: String,
    /// The length of `text` before each pushed segment.
    marks: Vec<usize>,
}

/// Longer keys are written `*`: names of fields are short, data used as keys is not.
const MAX_KEY: usize = 64;

impl Path {
    /// A path starting at `root` (`"arguments"`, `"body"`), or at the document's root.
    pub fn at(root: &str) -> Path {
        Path {
            text: root.to_owned(),
            marks: Vec::new(),
        }
    }

    pub fn push_key(&mut self, key: &str, sensitive: bool) {
        self.marks.push(self.text.len());
        if !self.text.is_empty() {
            self.text.push('.');
        }
        let plain = !key.is_empty()
            && key.len() <= MAX_KEY
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        self.text
            .push_str(if plain && !sensitive { key } else { "*" });
    }

    pub fn push_index(&mut self, index: usize) {
        self.marks.push(self.text.len());
        self.text.push('[');
        self.text.push_str(&index.to_string());
        self.text.push(']');
    }

    pub fn pop(&mut self) {
        if let Some(len) = self.marks.pop() {
            self.text.truncate(len);
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.text.is_empty() {
            "$"
        } else {
            &self.text
        })
    }
}

/// Whether a key could itself be a secret worth hiding from the path. Only long keys are
/// scanned: field names are short, and a short secret is no secret.
pub fn key_is_sensitive(detectors: &Detectors, key: &str) -> bool {
    key.len() >= 16 && !detectors.scan(key).is_empty()
}
