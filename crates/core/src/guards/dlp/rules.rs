//! The built-in detectors: what each looks for, what wakes it up, and how sure a validated
//! match makes us.
//!
//! A detector runs only at its triggers: literal anchors found by the one Aho–Corasick
//! pass (`AKIA`, `ghp_`, `-----BEGIN`, `://`), bytes found by `memchr` or bit masks (`@`,
//! and `:` or `=` for the named assignments), or, for numbers, the runs of digits found on
//! bit masks. A cheap gate (`gates.rs`) then decides whether
//! the pattern can match there at all, and the pattern runs anchored at the trigger or
//! confined to the few bytes around it, so a body costs two linear passes and a handful of
//! short searches.

use std::ops::Range;

use super::gates;
use super::validate::{self, Validator};

/// What makes a detector look at a place in the text, and where it then looks.
pub(super) enum Trigger {
    /// The match starts with one of these literals, exactly as written (the token patterns
    /// are case-sensitive): one anchored search there.
    Prefix(&'static [&'static str]),
    /// The match starts with one of these key-like names (ASCII case-insensitive) and goes on
    /// as an assignment of a value of at least `value` characters (`name = value`,
    /// `"name": "value"`). Found from the other end: at each `:` and `=` with that much
    /// value after it ([`gates::value_after`]), one anchored search at each name before it
    /// ([`gates::names_before`]).
    Assignment {
        names: &'static [&'static str],
        value: usize,
    },
    /// The match contains `literal` and lies in the span `within` gives around it (`None`:
    /// no match can): one search confined to that span.
    Inside {
        literal: &'static str,
        within: gates::Within,
    },
    /// A run of at least `min` digits (single or double separators `-. ()/` allowed) that
    /// `shape` accepts: one search confined to the run and a character on either side.
    Digits { min: usize, shape: gates::Shape },
    /// A run of digits right after two upper-case letters of a known country (`GB82`,
    /// `DE89`): one anchored search at the letters.
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

/// Every built-in detector, in the order their findings are reported for the same span.
pub(super) const RULES: &[Rule] = &[
    Rule {
        id: "anthropic_key",
        trigger: Trigger::Prefix(&["sk-ant-"]),
        patterns: &[r"\bsk-ant-[a-z]{2,8}\d{2}-[A-Za-z0-9_\-]{32,}"],
        validate: validate::any,
        confidence: 0.99,
        rank: 0,
    },
    Rule {
        id: "openai_key",
        trigger: Trigger::Prefix(&["sk-"]),
        patterns: &[r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{32,}"],
        validate: validate::openai_key,
        confidence: 0.97,
        rank: 0,
    },
    Rule {
        id: "aws_access_key",
        trigger: Trigger::Prefix(&["AKIA", "ASIA", "ABIA", "ACCA"]),
        patterns: &[r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}\b"],
        validate: validate::any,
        confidence: 0.99,
        rank: 0,
    },
    Rule {
        id: "aws_secret_key",
        trigger: Trigger::Assignment {
            names: &["aws", "secret"],
            value: 40,
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
        trigger: Trigger::Prefix(&["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"]),
        patterns: &[r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{60,})\b"],
        validate: validate::any,
        confidence: 0.99,
        rank: 0,
    },
    Rule {
        id: "gitlab_token",
        trigger: Trigger::Prefix(&["glpat-"]),
        patterns: &[r"\bglpat-[A-Za-z0-9_\-.]{20,}"],
        validate: validate::any,
        confidence: 0.99,
        rank: 0,
    },
    Rule {
        id: "slack_token",
        trigger: Trigger::Prefix(&["xoxa-", "xoxb-", "xoxp-", "xoxr-", "xoxs-"]),
        patterns: &[r"\bxox[abprs]-[A-Za-z0-9\-]{20,}"],
        validate: validate::slack_token,
        confidence: 0.98,
        rank: 0,
    },
    Rule {
        id: "google_api_key",
        trigger: Trigger::Prefix(&["AIza"]),
        patterns: &[r"\bAIza[0-9A-Za-z_\-]{35}(?:[^0-9A-Za-z_\-]|$)"],
        validate: google_key_span,
        confidence: 0.98,
        rank: 0,
    },
    Rule {
        id: "stripe_key",
        trigger: Trigger::Prefix(&["sk_live_", "rk_live_", "sk_test_", "rk_test_"]),
        patterns: &[r"\b[sr]k_(?:live|test)_[0-9A-Za-z]{20,}"],
        validate: validate::mixed,
        confidence: 0.99,
        rank: 0,
    },
    Rule {
        id: "azure_key",
        trigger: Trigger::Assignment {
            names: &["AccountKey", "SharedAccessKey"],
            value: 40,
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
        trigger: Trigger::Prefix(&["-----BEGIN"]),
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
        trigger: Trigger::Prefix(&["eyJ"]),
        patterns: &[r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*"],
        validate: validate::jwt,
        confidence: 0.95,
        rank: 0,
    },
    Rule {
        id: "webhook_url",
        // A webhook URL is its own credential: whoever has it can post to the channel.
        // At the `://` the connection strings look at already, not at anchors of their own:
        // `hoo`, `dis`, `out` and `.lo` begin too many words for the anchors' prefilter.
        trigger: Trigger::Inside {
            literal: "://",
            within: gates::webhook_span,
        },
        patterns: &[concat!(
            r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Z0-9]{8,12}/[A-Z0-9]{8,12}/(?:\d{6,24}/)?[A-Za-z0-9]{20,40}",
            r"|discord(?:app)?\.com/api(?:/v\d{1,2})?/webhooks/\d{15,21}/[A-Za-z0-9_\-]{60,100}",
            r"|(?:\.webhook|outlook)\.office\.com/webhook(?:b2)?/[0-9a-fA-F\-]{36}@[0-9a-fA-F\-]{36}/IncomingWebhook/[0-9a-fA-F]{32}(?:/[0-9a-fA-F\-]{36})?(?:/[A-Za-z0-9_\-]{20,})?",
            r"|\.(?:logic\.azure|environment\.api\.powerplatform)\.com(?::\d{1,5})?/[A-Za-z0-9_/\-]{0,80}workflows/[0-9a-fA-F]{32}/triggers/[^\s?#]{1,100}\?[^\s\x22'<>]*?\bsig=[A-Za-z0-9_\-%]{20,}",
        )],
        validate: validate::webhook_url,
        confidence: 0.97,
        rank: 0,
    },
    Rule {
        id: "connection_string_password",
        trigger: Trigger::Inside {
            literal: "://",
            within: gates::userinfo_span,
        },
        patterns: &[
            // The user may be empty (`redis://:password@cache`); a password may hold a `#`,
            // which people write unescaped in DSNs.
            r"\b[A-Za-z][A-Za-z0-9+.\-]{1,20}://[^\s:/@?#]{0,64}:(?P<secret>[^\s/@?]{1,128})@[A-Za-z0-9\[]",
        ],
        validate: validate::url_password,
        confidence: 0.9,
        rank: 1,
    },
    Rule {
        id: "generic_secret",
        // Every way the pattern's name can begin; `key` alone is no name (`monkey`, `keys`).
        trigger: Trigger::Assignment {
            names: &[
                "pass",
                "pwd",
                "secret",
                "token",
                "apikey",
                "api_key",
                "api-key",
                "accesskey",
                "access_key",
                "access-key",
                "auth",
                "credential",
                "privatekey",
                "private_key",
                "private-key",
                "signingkey",
                "signing_key",
                "signing-key",
                // `ENCRYPTION_KEY`, `master.key`: a name that ends in `key` after a separator.
                "_key",
                "-key",
                ".key",
            ],
            // A password may be short; the validator asks 20 characters of other values.
            value: 8,
        },
        patterns: &[
            r#"(?i:pass(?:word|wd|phrase)?|pwd|secret|token|api[_\-]?key|access[_\-]?key|auth(?:orization)?|credentials?|private[_\-]?key|signing[_\-]?key|[_.\-]key)[A-Za-z0-9_.\-]{0,24}["']?\s*(?::=|=>|:|=)\s*["']?(?:(?i:bearer|basic|token)\s+)?(?P<secret>[A-Za-z0-9_\-+/=.~!#$%^&*]{8,})"#,
        ],
        validate: validate::generic_secret,
        confidence: 0.7,
        rank: 2,
    },
    Rule {
        id: "email",
        trigger: Trigger::Inside {
            literal: "@",
            within: gates::email_span,
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
        trigger: Trigger::Digits {
            min: 13,
            shape: gates::any_shape,
        },
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
        trigger: Trigger::Digits {
            min: 9,
            shape: gates::ssn_shape,
        },
        patterns: &[r"\b\d{3}-\d{2}-\d{4}\b|\b\d{3} \d{2} \d{4}\b"],
        validate: validate::us_ssn,
        confidence: 0.8,
        rank: 1,
    },
    Rule {
        id: "phone",
        trigger: Trigger::Digits {
            min: 8,
            shape: gates::phone_shape,
        },
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
fn google_key_span(_: &str, span: Range<usize>) -> Option<Range<usize>> {
    Some(span.start..(span.start + 39).min(span.end))
}

/// File names (`logo@2x.png`), the user in a URL (`ftp://anonymous@ftp.example.org`) and
/// scp-style remotes (`git@github.com:acme/infra.git`) look like addresses but are not.
fn email(text: &str, span: Range<usize>) -> Option<Range<usize>> {
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
