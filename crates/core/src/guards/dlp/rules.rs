//! The built-in detectors: what each looks for, what wakes it up, and how sure a validated
//! match makes us.
//!
//! A detector runs only near its triggers: literal anchors found by the one Aho–Corasick
//! pass (`AKIA`, `ghp_`, `-----BEGIN`, `@`, ...) or, for numbers, the runs of digits found
//! by one pass over the bytes. Its pattern is then matched only in that window, so a body
//! with no anchors costs two linear passes and nothing more.

use super::validate::{self, Validator};

/// What makes a detector look at a region of text.
pub(super) enum Trigger {
    /// Any of these literals (ASCII case-insensitive). The window runs from `back` bytes
    /// before the literal to `reach` bytes after it.
    Anchors {
        literals: &'static [&'static str],
        back: usize,
        reach: usize,
    },
    /// A run of at least this many digits (single or double separators `-. ()/` allowed).
    DigitRun(usize),
    /// A run of digits right after two upper-case letters (`GB82`, `DE89`).
    CountryCode,
}

pub(super) struct Rule {
    pub id: &'static str,
    pub trigger: Trigger,
    /// Regular expressions; if one has a group named `secret`, that group is the finding.
    pub patterns: &'static [&'static str],
    pub validate: Validator,
    pub confidence: f32,
    /// Overlapping findings: a lower rank wins (a key in `api_key=sk-...` is an OpenAI key,
    /// not a generic secret; the password in `postgres://u:p@db.example.com` is no email).
    pub rank: u8,
}

/// A window that always holds a token of this family: it is bounded by its pattern.
const TOKEN: usize = 320;

/// A digit window: the longest run we validate (19-digit cards, 15-digit phones) and the
/// separators between, plus room for `+1 (` in front.
pub(super) const DIGIT_BACK: usize = 6;
pub(super) const DIGIT_REACH: usize = 4;

/// Every built-in detector, in the order their findings are reported for the same span.
pub(super) const RULES: &[Rule] = &[
    Rule {
        id: "anthropic_key",
        trigger: Trigger::Anchors {
            literals: &["sk-ant-"],
            back: 0,
            reach: TOKEN,
        },
        patterns: &[r"\bsk-ant-[a-z]{2,8}\d{2}-[A-Za-z0-9_\-]{32,}"],
        validate: validate::any,
        confidence: 0.99,
        rank: 0,
    },
    Rule {
        id: "openai_key",
        trigger: Trigger::Anchors {
            literals: &["sk-"],
            back: 0,
            reach: TOKEN,
        },
        patterns: &[r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{32,}"],
        validate: validate::openai_key,
        confidence: 0.97,
        rank: 0,
    },
    Rule {
        id: "aws_access_key",
        trigger: Trigger::Anchors {
            literals: &["AKIA", "ASIA", "ABIA", "ACCA"],
            back: 0,
            reach: 24,
        },
        patterns: &[r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}\b"],
        validate: validate::any,
        confidence: 0.99,
        rank: 0,
    },
    Rule {
        id: "aws_secret_key",
        trigger: Trigger::Anchors {
            literals: &["aws", "secret"],
            back: 0,
            reach: 120,
        },
        patterns: &[
            r#"(?i:aws[A-Za-z0-9_.\-]{0,32}|secret[_\-]?(?:access[_\-]?)?key)["']?\s*(?::|=|=>)\s*["']?(?P<secret>[A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"#,
        ],
        validate: validate::aws_secret,
        confidence: 0.9,
        rank: 1,
    },
    Rule {
        id: "github_token",
        trigger: Trigger::Anchors {
            literals: &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
            back: 0,
            reach: TOKEN,
        },
        patterns: &[r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{60,})\b"],
        validate: validate::any,
        confidence: 0.99,
        rank: 0,
    },
    Rule {
        id: "gitlab_token",
        trigger: Trigger::Anchors {
            literals: &["glpat-"],
            back: 0,
            reach: 100,
        },
        patterns: &[r"\bglpat-[A-Za-z0-9_\-.]{20,}"],
        validate: validate::any,
        confidence: 0.99,
        rank: 0,
    },
    Rule {
        id: "slack_token",
        trigger: Trigger::Anchors {
            literals: &["xoxa-", "xoxb-", "xoxp-", "xoxr-", "xoxs-"],
            back: 0,
            reach: 200,
        },
        patterns: &[r"\bxox[abprs]-[A-Za-z0-9\-]{20,}"],
        validate: validate::slack_token,
        confidence: 0.98,
        rank: 0,
    },
    Rule {
        id: "google_api_key",
        trigger: Trigger::Anchors {
            literals: &["AIza"],
            back: 0,
            reach: 48,
        },
        patterns: &[r"\bAIza[0-9A-Za-z_\-]{35}(?:[^0-9A-Za-z_\-]|$)"],
        validate: google_key_span,
        confidence: 0.98,
        rank: 0,
    },
    Rule {
        id: "stripe_key",
        trigger: Trigger::Anchors {
            literals: &["sk_live_", "rk_live_", "sk_test_", "rk_test_"],
            back: 0,
            reach: 200,
        },
        patterns: &[r"\b[sr]k_(?:live|test)_[0-9A-Za-z]{20,}"],
        validate: validate::mixed,
        confidence: 0.99,
        rank: 0,
    },
    Rule {
        id: "azure_key",
        trigger: Trigger::Anchors {
            literals: &["AccountKey", "SharedAccessKey"],
            back: 0,
            reach: 140,
        },
        patterns: &[
            r"(?:AccountKey|SharedAccessKey)\s*=\s*(?P<secret>[A-Za-z0-9+/]{40,86}={0,2})(?:[^A-Za-z0-9+/=]|$)",
        ],
        validate: validate::any,
        confidence: 0.97,
        rank: 0,
    },
    Rule {
        id: "private_key",
        trigger: Trigger::Anchors {
            literals: &["-----BEGIN"],
            back: 0,
            reach: 16 * 1024,
        },
        // The whole block when its END is there; else the header and the base64 lines after.
        patterns: &[
            r"-----BEGIN[A-Z ]{0,24}PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]*?-----END[A-Z ]{0,24}PRIVATE KEY(?: BLOCK)?-----|(?:(?:\s|\\[nr])+[A-Za-z0-9+/=]{40,})*)",
        ],
        validate: validate::any,
        confidence: 0.99,
        rank: 0,
    },
    Rule {
        id: "jwt",
        trigger: Trigger::Anchors {
            literals: &["eyJ"],
            back: 0,
            reach: 4096,
        },
        patterns: &[r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*"],
        validate: validate::jwt,
        confidence: 0.95,
        rank: 0,
    },
    Rule {
        id: "connection_string_password",
        trigger: Trigger::Anchors {
            literals: &["://"],
            back: 24,
            reach: 256,
        },
        patterns: &[
            r"\b[A-Za-z][A-Za-z0-9+.\-]{1,20}://[^\s:/@?#]{1,64}:(?P<secret>[^\s/@?#]{1,128})@[A-Za-z0-9\[]",
        ],
        validate: validate::url_password,
        confidence: 0.9,
        rank: 1,
    },
    Rule {
        id: "generic_secret",
        trigger: Trigger::Anchors {
            literals: &[
                "pass",
                "pwd",
                "secret",
                "token",
                "key",
                "auth",
                "credential",
            ],
            // `key` sits at the end of `signing_key`, `api-key`, `private_key`.
            back: 12,
            reach: 200,
        },
        patterns: &[
            r#"(?i:pass(?:word|wd|phrase)?|pwd|secret|token|api[_\-]?key|access[_\-]?key|auth(?:orization)?|credentials?|private[_\-]?key|signing[_\-]?key)[A-Za-z0-9_.\-]{0,24}["']?\s*(?::=|=>|:|=)\s*["']?(?:(?i:bearer|basic|token)\s+)?(?P<secret>[A-Za-z0-9_\-+/=.~!#$%^&*]{20,})"#,
        ],
        validate: validate::generic_secret,
        confidence: 0.7,
        rank: 2,
    },
    Rule {
        id: "email",
        trigger: Trigger::Anchors {
            literals: &["@"],
            back: 64,
            reach: 256,
        },
        patterns: &[
            r"\b[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63})*\.[A-Za-z]{2,24}\b",
        ],
        validate: email,
        confidence: 0.95,
        rank: 2,
    },
    Rule {
        id: "payment_card",
        trigger: Trigger::DigitRun(13),
        patterns: &[r"\b\d(?:[ \-]?\d){12,22}\b"],
        validate: validate::payment_card,
        confidence: 0.95,
        rank: 1,
    },
    Rule {
        id: "iban",
        trigger: Trigger::CountryCode,
        patterns: &[r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"],
        validate: validate::iban,
        confidence: 0.97,
        rank: 0,
    },
    Rule {
        id: "us_ssn",
        trigger: Trigger::DigitRun(9),
        patterns: &[r"\b\d{3}-\d{2}-\d{4}\b|\b\d{3} \d{2} \d{4}\b"],
        validate: validate::us_ssn,
        confidence: 0.8,
        rank: 1,
    },
    Rule {
        id: "phone",
        trigger: Trigger::DigitRun(8),
        patterns: &[
            // E.164, with or without separators: +14155552671, +44 20 7946 0958.
            r"(?:^|[^\w+])(?P<secret>\+[1-9](?:[ .\-]?\(?\d\)?){7,14})(?:[^\w]|$)",
            // North American: (415) 555-2671, 415-555-2671, 415.555.2671.
            r"(?:^|[^\w+.\-])(?P<secret>(?:1[ .\-])?(?:\([2-9]\d{2}\) ?|[2-9]\d{2}[ .\-])[2-9]\d{2}[ .\-]\d{4})(?:[^\w.\-]|$)",
            // European national: 020 7946 0958, 030 9018 2044, 01 23 45 67 89.
            r"(?:^|[^\w+.\-/])(?P<secret>0[1-9]\d{1,3}[ \-/]\d{3,4}(?:[ \-]\d{2,4}){0,2}|0[1-9](?:[ .]\d{2}){4})(?:[^\w.\-/:]|$)",
        ],
        validate: validate::phone,
        confidence: 0.7,
        rank: 2,
    },
];

/// The trailing character the pattern needed to see is not part of the key.
fn google_key_span(_: &str, span: std::ops::Range<usize>) -> Option<std::ops::Range<usize>> {
    Some(span.start..(span.start + 39).min(span.end))
}

/// File names (`logo@2x.png`), the user in a URL (`ftp://anonymous@ftp.example.org`) and
/// scp-style remotes (`git@github.com:acme/infra.git`) look like addresses but are not.
fn email(text: &str, span: std::ops::Range<usize>) -> Option<std::ops::Range<usize>> {
    let address = &text[span.clone()];
    if text[..span.start].ends_with(['/', ':']) {
        return None;
    }
    let mut after = text[span.end..].bytes();
    if after.next() == Some(b':') && after.next().is_some_and(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let tld = address.rsplit('.').next()?.to_ascii_lowercase();
    let file = matches!(
        tld.as_str(),
        "png"
            | "jpg"
            | "jpeg"
            | "gif"
            | "svg"
            | "webp"
            | "js"
            | "ts"
            | "css"
            | "py"
            | "rs"
            | "json"
            | "md"
            | "txt"
            | "html"
            | "lock"
            | "tgz"
            | "zip"
    );
    (!file).then_some(span)
}
