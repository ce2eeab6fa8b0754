//! Fuzzing config parsing with what an operator's editor can produce: any text, and the
//! example file with a few edits (a line lost, a value swapped for a hostile one). Every
//! outcome must be a `ConfigError`; a panic here would take hot reload down.

use super::Config;

/// Random inputs after the corpus in a `cargo test` run (about 0.8 s each in a debug build: a parse builds the DLP detectors);
/// `BOLERO_RANDOM_ITERATIONS` overrides it for a longer campaign (README "Fuzzing").
const RANDOM_INPUTS: usize = 200;

const EXAMPLE: &str = include_str!("../../../../examples/airlock.example.yaml");

/// Every `${VAR}` is set, so errors come from the file, not the environment.
fn parse(text: &str) {
    let _ = Config::parse(text, &|_| Some("fuzz-value".to_string()));
}

/// Corpus: `__fuzz__/config__fuzz__any_text/corpus`, the example and hostile YAML.
#[test]
fn any_text() {
    bolero::check!()
        .with_iterations(RANDOM_INPUTS)
        .for_each(|bytes: &[u8]| {
            if let Ok(text) = std::str::from_utf8(bytes) {
                parse(text);
            }
        });
}

/// Things a YAML config is made of, and values that are wrong for most keys.
const FRAGMENTS: &[&str] = &[
    "\n",
    ": ",
    "  ",
    "- ",
    "#",
    "\"",
    "'",
    "{",
    "}",
    "[",
    "]",
    ",",
    "~",
    "null",
    "true",
    "0",
    "-1",
    "1e400",
    "18446744073709551616",
    "0.000000001",
    "99999999999999999999",
    "&a ",
    "*a",
    "!!binary ",
    "<<: *a",
    "---\n",
    "${",
    "${X}",
    "$${X}",
    "sha256:",
    "http://",
    "https://[::1]:0/",
    "0x7f.1",
    "10.0.0.0/33",
    "1h",
    "0s",
    "-5m",
    "10MiB",
    "1e3GiB",
    "\u{e9}",
    "\u{1F600}",
    "\t",
    "\r\n",
    "\0",
    "*",
    "**",
    "?",
    "/",
    "%",
];

#[derive(Debug, bolero::TypeGenerator)]
enum Edit {
    Delete {
        at: u16,
        len: u8,
    },
    Insert {
        at: u16,
        fragment: u8,
    },
    InsertText {
        at: u16,
        text: String,
    },
    /// Copies a piece elsewhere: duplicated keys, a list item moved under a map.
    Copy {
        from: u16,
        len: u8,
        at: u16,
    },
}

/// A position in `text` picked by `at`, moved back onto a `char` boundary.
fn position(text: &str, at: u16) -> usize {
    floor(text, usize::from(at) % (text.len() + 1))
}

fn floor(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// `len` bytes from `at`, or what is left of the text, on `char` boundaries.
fn piece(text: &str, at: u16, len: u8) -> std::ops::Range<usize> {
    let start = position(text, at);
    start..floor(text, start + usize::from(len))
}

fn apply(text: &mut String, edit: &Edit) {
    match edit {
        Edit::Delete { at, len } => text.replace_range(piece(text, *at, *len), ""),
        Edit::Insert { at, fragment } => {
            let fragment = FRAGMENTS[usize::from(*fragment) % FRAGMENTS.len()];
            text.insert_str(position(text, *at), fragment);
        }
        Edit::InsertText { at, text: inserted } => {
            text.insert_str(position(text, *at), inserted);
        }
        Edit::Copy { from, len, at } => {
            let copied = text[piece(text, *from, *len)].to_string();
            text.insert_str(position(text, *at), &copied);
        }
    }
}

#[test]
fn the_example_edited() {
    bolero::check!()
        .with_iterations(RANDOM_INPUTS)
        .with_type::<Vec<Edit>>()
        .for_each(|edits: &Vec<Edit>| {
            let mut text = EXAMPLE.to_string();
            for edit in edits {
                apply(&mut text, edit);
            }
            parse(&text);
        });
}
