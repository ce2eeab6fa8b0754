//! Text from the ledger or the admin API made safe to print. Model names, targets, tool
//! names and messages are chosen by agents and remote servers; printed as they are, an
//! ESC or CSI sequence clears the screen or forges a hyperlink, and `\r` or `\n` forges a
//! line of output. Every command prints such text through here.

use std::borrow::Cow;
use std::fmt::Write;

/// Characters a terminal acts on instead of showing: C0 (with `\t`, `\n` and `\r`), DEL and
/// C1 (`\u{9b}` is a CSI by itself), and the Unicode line separators and bidirectional
/// overrides that move or reorder what follows.
fn is_active(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every active character written out visibly: `\x1b` for C0 and DEL,
/// `\u{9b}` for the others. Borrowed when there is nothing to escape, as is usual.
pub fn for_terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_active) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        // Writing into a String cannot fail.
        let _ = match c {
            c if !is_active(c) => out.write_char(c),
            c if (c as u32) < 0x80 => write!(out, "\\x{:02x}", c as u32),
            c => write!(out, "\\u{{{:x}}}", c as u32),
        };
    }
    Cow::Owned(out)
}

/// JSON text safe to print: `serde_json` escapes C0 in strings but writes DEL, C1 and the
/// other active characters raw. Outside strings JSON text is ASCII without controls, so
/// each one found is inside a string, where its `\u` escape means the same character.
pub fn json_for_terminal(json: &str) -> Cow<'_, str> {
    // Pretty JSON's own line breaks are layout, outside any string.
    let raw = |c: char| is_active(c) && c != '\n';
    if !json.chars().any(raw) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 8);
    for c in json.chars() {
        let _ = match c {
            c if !raw(c) => out.write_char(c),
            c => write!(out, "\\u{:04x}", c as u32),
        };
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_controls_are_shown_not_acted_on() {
        for (hostile, shown) in [
            ("gpt\x1b[2J\x1b[H", "gpt\\x1b[2J\\x1b[H"),
            (
                "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\",
                "\\x1b]8;;https://evil.example\\x1b\\click\\x1b]8;;\\x1b\\",
            ),
            (
                "m\r00:00:00.000  admin  ok",
                "m\\x0d00:00:00.000  admin  ok",
            ),
            ("a\nb\tc\x7f", "a\\x0ab\\x09c\\x7f"),
            ("csi\u{9b}2J", "csi\\u{9b}2J"),
            ("rtl\u{202e}gpj.exe", "rtl\\u{202e}gpj.exe"),
        ] {
            assert_eq!(for_terminal(hostile), shown, "{hostile:?}");
        }
        assert!(matches!(for_terminal("gpt-4o-mini é"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_stays_json_with_no_raw_controls() {
        let value = serde_json::json!({"model": "a\u{9b}2J\x1b[2J\u{7f}é"});
        let text = serde_json::to_string_pretty(&value).unwrap();
        let safe = json_for_terminal(&text);
        assert!(!safe.chars().any(|c| is_active(c) && c != '\n'), "{safe}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&safe).unwrap(),
            value
        );
    }
}
