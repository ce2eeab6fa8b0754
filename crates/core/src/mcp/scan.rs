//! Tool poisoning: instructions aimed at the model hidden in a tool's metadata — its
//! description, title, and the descriptions, defaults and enum values of its parameters —
//! which the model reads but the user rarely sees.
//!
//! [`scan_text`] knows nothing about tools, so the same rules can vet tool results for prompt
//! injection. Rules favour precision: phrases that also occur in honest descriptions
//! ("Overrides the default timeout", "Send the message to a channel") need the context that
//! makes them an instruction to the model before they count.

use std::sync::LazyLock;

use regex::{RegexSet, RegexSetBuilder};
use serde_json::Value;

/// "Ignore previous instructions", "you are now ...", "new instructions:", and the like.
pub const OVERRIDE_INSTRUCTIONS: &str = "override_instructions";
/// Pseudo-tags (`<IMPORTANT>`, `<SYSTEM>`, `[INST]`) and requests to keep things from the user.
pub const HIDDEN_BLOCK: &str = "hidden_block";
/// Zero-width, bidi and other invisible format characters, and Unicode tag characters.
pub const INVISIBLE_UNICODE: &str = "invisible_unicode";
/// Credential files and private keys (`~/.ssh`, `.env`, `.aws/credentials`, `mcp.json`, ...).
pub const SENSITIVE_FILES: &str = "sensitive_files";
/// Orders to call another tool first or instead, or to send data elsewhere.
pub const TOOL_REDIRECT: &str = "tool_redirect";

/// Every rule, in the order [`scan_text`] reports them.
const RULES: [&str; 5] = [
    OVERRIDE_INSTRUCTIONS,
    HIDDEN_BLOCK,
    INVISIBLE_UNICODE,
    SENSITIVE_FILES,
    TOOL_REDIRECT,
];

/// Matches a span inside one sentence: a full stop ends it unless it is part of a path or
/// name (`~/.ssh`, `mcp.json`).
macro_rules! span {
    ($n:literal) => {
        concat!(r"(?:[^.\n]|\.\S){0,", $n, "}?")
    };
}

const OVERRIDE_PATTERNS: &[&str] = &[
    r"\b(?:ignore|disregard|forget)\s+(?:all\s+|any\s+)?(?:of\s+)?(?:the\s+|your\s+|my\s+)?(?:previous|prior|above|earlier|preceding)\s+(?:instruction|direction|prompt|rule)s?\b",
    r"\bnew\s+instructions?\s*:",
    // Not "you are now logged in": only a change of role or of what is allowed.
    r"\byou\s+are\s+now\s+(?:a|an|in|acting|operating|free|unrestricted|no\s+longer|allowed|permitted|required|expected)\b",
    // Not "The system prompt to send to the model": only what would subvert it.
    r"\b(?:ignore|disregard|forget|bypass|reveal|leak|print|repeat)\s+(?:the\s+|your\s+|any\s+|all\s+)?system\s+prompts?\b",
    r"\b(?:your|new)\s+system\s+prompt\b",
    // Not "Overrides the default timeout" or "override rules per directory".
    r"\boverrides?\s+(?:all\s+|any\s+)?(?:of\s+)?(?:the\s+|your\s+|my\s+)?(?:previous|prior|above|earlier|preceding|original|system)\s+(?:instruction|direction|prompt|rule|guideline)s?\b",
    r"\boverrides?\s+(?:all|any|other|existing)\s+(?:other\s+)?(?:instructions|directions|guidelines)\b",
    r"\boverrides?\s+(?:all\s+|any\s+)?(?:of\s+)?(?:your\s+(?:\w+\s+)?|the\s+(?:user|assistant|model|ai|agent|llm)'?s\s+)(?:instructions|directions|prompts|rules|guidelines|programming|training|system\s+prompt)\b",
    r"\b(?:this|these|the\s+following)\s+(?:instructions?|notes?|messages?|directives?)\s+(?:overrides?|supersedes?|takes?\s+precedence\s+over)\b",
    r"\b(?:precedence|priority)\s+over\s+(?:all\s+|any\s+)?(?:other\s+|previous\s+|prior\s+)?(?:instructions|directions|prompts|guidelines|system\s+prompt)\b",
];

const HIDDEN_PATTERNS: &[&str] = &[
    r"<\s*/?\s*(?:important|system|secret|instructions?|hidden|admin)\s*>",
    r"\[/?inst\]|<<\s*/?sys\s*>>|<\|im_start\|>",
    r"\b(?:do\s+not|don'?t|never)\s+(?:tell|inform)\s+the\s+user\b",
    r"\b(?:do\s+not|don'?t|never)\s+mention\b",
    r"\bwithout\s+(?:telling|informing)\s+the\s+user\b",
    r"\buser\s+(?:must|should|shall)\s+(?:not|never)\s+(?:know|notice|find\s+out|be\s+told)\b",
    r"\b(?:hide|conceal|keep)\s+(?:this|it|that)\s+(?:secret\s+|hidden\s+)?from\s+the\s+user\b",
];

const SENSITIVE_PATTERNS: &[&str] = &[
    // A dot-file only as a name of its own: not "environment", "process.env" or "app.env".
    r"(?:^|[^\w.-])\.(?:ssh|env|netrc|npmrc|pypirc|git-credentials)\b",
    r"\bid_(?:rsa|dsa|ecdsa|ed25519)\b|\.aws/credentials\b|/etc/(?:passwd|shadow)\b|\bmcp\.json\b",
    // Not "Signs the payload with the given private key": only a request to hand it over.
    concat!(
        r"\b(?:read|cat|send|include|print|output|copy|upload|share|leak|exfiltrate|extract|attach|forward|reveal|pass|dump)\b",
        span!(40),
        r"\bprivate\s+keys?\b"
    ),
];

const REDIRECT_PATTERNS: &[&str] = &[
    r"\bbefore\s+(?:using|calling|invoking|running)\s+(?:this|the|any)\s+tool\s*,?\s+(?:you\s+(?:must|should|need\s+to)\s+)?(?:first\s+|always\s+)?(?:call|use|run|invoke|execute)\b",
    r"\binstead\s+of\s+(?:using|calling|invoking)\b",
    r"\balso\s+(?:call|send|forward|invoke|email|bcc)\b",
    r"\bsend\s+(?:it|them|this|that|everything|all\s+of\s+(?:it|them))\s+to\b",
    // Not "Send the message to a Slack channel": only what should not leave.
    r"\bsend\s+(?:the\s+|its\s+|their\s+|your\s+|all\s+)?(?:\w+\s+){0,3}?(?:contents?|data|keys?|credentials?|tokens?|secrets?|passwords?|conversation|history|context|emails)\s+to\b",
    concat!(
        r"\bsend\b",
        span!(60),
        r"\bto\s+(?:https?://|[\w.+-]+@[\w-]+\.\w)"
    ),
    // Not "pass the contents as base64": only into a named parameter.
    r"\bpass\s+(?:its|their)\s+contents?\s+(?:as|in|into|to)\b",
    r#"\bpass\s+(?:the|this|that|your)\s+contents?\s+(?:as|in|into|to|via)\s+(?:the\s+|a\s+)?(?:['"`]|\w+\s+(?:parameter|argument|param|field)\b)"#,
    // Not "include the contents of each matched file in the results".
    concat!(
        r"\binclude\s+(?:the\s+)?(?:full\s+|entire\s+|raw\s+)?contents?\s+of\b",
        span!(80),
        r#"\b(?:as|in|into)\s+(?:(?:the\s+|a\s+)?(?:['"`]|\w+\s+(?:parameter|argument|param|field)\b)|your\s+(?:response|reply|answer|message)\b)"#
    ),
];

/// Every text rule's patterns in one set, matched case-insensitively in one pass, with the
/// rule each pattern belongs to.
static TEXT_RULES: LazyLock<(RegexSet, Vec<&'static str>)> = LazyLock::new(|| {
    let rules = [
        (OVERRIDE_INSTRUCTIONS, OVERRIDE_PATTERNS),
        (HIDDEN_BLOCK, HIDDEN_PATTERNS),
        (SENSITIVE_FILES, SENSITIVE_PATTERNS),
        (TOOL_REDIRECT, REDIRECT_PATTERNS),
    ];
    let (owners, patterns): (Vec<&str>, Vec<&str>) = rules
        .iter()
        .flat_map(|(rule, patterns)| patterns.iter().map(move |p| (*rule, *p)))
        .unzip();
    let set = RegexSetBuilder::new(patterns)
        .case_insensitive(true)
        .build()
        .expect("scan patterns compile");
    (set, owners)
});

/// Schemas nest no deeper than this in practice; the bound keeps a hostile one cheap.
const MAX_DEPTH: usize = 32;

/// One reason a tool definition looks poisoned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The rule tripped, one of this module's rule ids (`"hidden_block"`, ...).
    pub rule: &'static str,
    /// Where: `"description"`, `"title"`, `"annotations.title"`,
    /// `"inputSchema.properties.path.description"`, `"inputSchema.properties.mode.enum[2]"`...
    pub location: String,
}

/// Scans the text of a tool definition the model reads: description, title, annotations.title,
/// and every `description`, `title`, string `default` or `const`, string `enum` value and string
/// `examples` inside inputSchema/outputSchema (recursively, bounded depth 32).
pub fn scan_tool(tool: &Value) -> Vec<Finding> {
    let mut findings = Vec::new();
    for location in ["description", "title"] {
        scan_value(&tool[location], location, &mut findings);
    }
    scan_value(
        &tool["annotations"]["title"],
        "annotations.title",
        &mut findings,
    );
    for schema in ["inputSchema", "outputSchema"] {
        let mut path = schema.to_owned();
        scan_schema(&tool[schema], &mut path, 0, &mut findings);
    }
    findings
}

/// The rules one piece of text trips, each once, in a fixed order.
pub fn scan_text(text: &str) -> Vec<&'static str> {
    let invisible = text.chars().any(is_invisible);
    let (set, owners) = &*TEXT_RULES;
    let matches = if invisible {
        // Match what the model reads: words split by zero-width characters joined again,
        // and text smuggled in tag characters spelled out.
        let revealed: String = text.chars().filter_map(reveal).collect();
        set.matches(&revealed)
    } else {
        set.matches(text)
    };
    RULES
        .into_iter()
        .filter(|&rule| {
            if rule == INVISIBLE_UNICODE {
                invisible
            } else {
                matches.iter().any(|i| owners[i] == rule)
            }
        })
        .collect()
}

fn scan_value(value: &Value, location: &str, findings: &mut Vec<Finding>) {
    if let Some(text) = value.as_str() {
        findings.extend(scan_text(text).into_iter().map(|rule| Finding {
            rule,
            location: location.to_owned(),
        }));
    }
}

/// Walks a JSON Schema; `path` is its location and is left as it was found.
fn scan_schema(schema: &Value, path: &mut String, depth: usize, findings: &mut Vec<Finding>) {
    if depth > MAX_DEPTH {
        return;
    }
    let len = path.len();
    match schema {
        Value::Object(map) => {
            for (key, value) in map {
                path.push('.');
                path.push_str(key);
                match (key.as_str(), value) {
                    ("description" | "title" | "default" | "const", Value::String(_)) => {
                        scan_value(value, path, findings);
                    }
                    ("enum" | "examples", Value::Array(items)) => {
                        for (i, item) in items.iter().enumerate() {
                            scan_value(item, &format!("{path}[{i}]"), findings);
                        }
                    }
                    _ => scan_schema(value, path, depth + 1, findings),
                }
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push_str(&format!("[{i}]"));
                scan_schema(item, path, depth + 1, findings);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// Zero-width, bidi-control and other invisible format characters, and the tag block.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{FEFF}'
        | '\u{00AD}'
        | '\u{E0000}'..='\u{E007F}')
}

/// A character as the rules should see it: tag characters as the ASCII they mirror, other
/// invisible characters dropped.
fn reveal(c: char) -> Option<char> {
    match c {
        '\u{E0020}'..='\u{E007E}' => char::from_u32(c as u32 - 0xE0000),
        c if is_invisible(c) => None,
        c => Some(c),
    }
}

#[cfg(test)]
mod tests;
