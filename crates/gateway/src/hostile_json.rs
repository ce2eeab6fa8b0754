//! Valid JSON built to be wrong: the members a parser looks for (`model`, `stream`, `id`,
//! `method`, `result`…) holding values of the wrong type, numbers past every integer
//! width, nesting past serde_json's limit. Random bytes are almost never JSON; this is
//! what a hostile agent or remote server sends instead. For fuzz targets only.

/// Member names the gateway's readers look up, so generated objects hit them.
const KEYS: &[&str] = &[
    "model",
    "stream",
    "stream_options",
    "include_usage",
    "messages",
    "input",
    "system",
    "instructions",
    "tools",
    "max_tokens",
    "max_completion_tokens",
    "max_output_tokens",
    "n",
    "jsonrpc",
    "id",
    "method",
    "params",
    "result",
    "error",
    "message",
    "taskId",
    "contextId",
    "task",
    "status",
    "state",
    "kind",
    "statusUpdate",
    "artifactUpdate",
    "configuration",
    "pushNotificationConfig",
    "url",
    "supportedInterfaces",
    "protocolBinding",
    "protocolVersion",
    "preferredTransport",
    "additionalInterfaces",
    "transport",
];

/// Values that are wrong somewhere: huge and odd numbers, the strings readers compare to.
const SCALARS: &[&str] = &[
    "null",
    "true",
    "false",
    "0",
    "-0",
    "1",
    "-1",
    "0.5",
    "1e400",
    "-1e400",
    "1E-400",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775809",
    "4294967296",
    "123456789012345678901234567890",
    "\"\"",
    "\"2.0\"",
    "\"true\"",
    "\"message/send\"",
    "\"message/stream\"",
    "\"tasks/get\"",
    "\"SendMessage\"",
    "\"TASK_STATE_WORKING\"",
    "\"input-required\"",
    "\"JSONRPC\"",
    "\"gpt-4o-mini\"",
    "\"http://127.0.0.1/\"",
    "\"\\u0000\\ud800\"",
    "\"\u{e9}\u{1F600}\"",
];

#[derive(Debug, bolero::TypeGenerator)]
pub struct Item {
    key: Key,
    token: Token,
}

#[derive(Debug, bolero::TypeGenerator)]
enum Key {
    Known(u8),
    Any(String),
}

#[derive(Debug, bolero::TypeGenerator)]
enum Token {
    Scalar(u8),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
    /// Opens an array or (true) an object; later items go inside until `Close`.
    Open(bool),
    Close,
    /// This many arrays, one inside the other.
    Deep(u8),
}

/// A JSON object of `items`: each item is a member, or (after an `Open`) goes inside the
/// array or object it opened.
pub fn object(items: &[Item]) -> String {
    let mut out = String::from("{");
    // For each open container: its closing bracket, and whether it has a member yet.
    let mut open = vec![('}', false)];
    for item in items {
        if let Token::Close = item.token {
            if open.len() > 1 {
                out.push(open.pop().map_or('}', |(close, _)| close));
            }
            continue;
        }
        let (close, filled) = open.last_mut().expect("the root stays open");
        if std::mem::replace(filled, true) {
            out.push(',');
        }
        if *close == '}' {
            out.push_str(&quoted(match &item.key {
                Key::Known(i) => KEYS[usize::from(*i) % KEYS.len()],
                Key::Any(s) => s,
            }));
            out.push(':');
        }
        match &item.token {
            Token::Scalar(i) => out.push_str(SCALARS[usize::from(*i) % SCALARS.len()]),
            Token::Int(n) => out.push_str(&n.to_string()),
            Token::Uint(n) => out.push_str(&n.to_string()),
            // Not finite is not JSON: the huge literals above cover overflow.
            Token::Float(f) => out.push_str(&serde_json::json!(f).to_string()),
            Token::Str(s) => out.push_str(&quoted(s)),
            Token::Open(object) => {
                out.push(if *object { '{' } else { '[' });
                open.push((if *object { '}' } else { ']' }, false));
            }
            Token::Close => unreachable!("handled above"),
            Token::Deep(n) => {
                let n = usize::from(*n);
                out.push_str(&"[".repeat(n));
                out.push_str(&"]".repeat(n));
            }
        }
    }
    while let Some((close, _)) = open.pop() {
        out.push(close);
    }
    out
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}
