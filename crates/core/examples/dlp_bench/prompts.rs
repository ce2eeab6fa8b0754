//! A deterministic stand-in for what agents really send: chat turns, code, JSON tool
//! results, logs, config files and markdown, with the numbers, dates, addresses, URLs and
//! `key`/`token`/`password` prose that wake the detectors up, and now and then a
//! well-formed fake secret (never a real one).
//!
//! The text is built so that it exercises the prefilter the way real prompts do: most
//! anchors (`://`, `@`, `key`, `pass`, `sk-` in `task-`, digit runs) come from harmless
//! text, and the rare secret has to be found among them.

/// splitmix64: a fixed seed gives the same corpus on every machine and every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn chars(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n).map(|_| char::from(self.pick(alphabet))).collect()
    }
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const URLSAFE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
const HEX: &[u8] = b"0123456789abcdef";

/// A planted secret: which detector should find it, and where.
pub struct Planted {
    pub detector: &'static str,
    pub doc: usize,
    pub start: usize,
    pub end: usize,
}

pub struct Corpus {
    pub docs: Vec<String>,
    pub planted: Vec<Planted>,
}

impl Corpus {
    pub fn bytes(&self) -> usize {
        self.docs.iter().map(String::len).sum()
    }
}

/// Request bodies of 1–64 KiB (most of them small, as chat turns are) until `total` bytes,
/// with a fake secret about every `secret_every` bytes (`None`: no secrets at all).
pub fn realistic(seed: u64, total: usize, secret_every: Option<usize>) -> Corpus {
    let mut rng = Rng::new(seed);
    let mut corpus = Corpus {
        docs: Vec::new(),
        planted: Vec::new(),
    };
    let mut next_secret = secret_every.map(|n| rng.range(n / 2, n * 3 / 2));
    let mut written = 0;
    while written < total {
        // Log-uniform sizes: as many 1–4 KiB bodies as 16–64 KiB ones.
        let size = (1024.0 * 64f64.powf(rng.below(1000) as f64 / 1000.0)) as usize;
        let doc = corpus.docs.len();
        let mut text = String::with_capacity(size + 1024);
        while text.len() < size {
            section(&mut rng, &mut text);
            if let (Some(every), Some(at)) = (secret_every, next_secret)
                && written + text.len() >= at
            {
                let (detector, range) = plant(&mut rng, &mut text);
                corpus.planted.push(Planted {
                    detector,
                    doc,
                    start: range.start,
                    end: range.end,
                });
                next_secret = Some(at + rng.range(every / 2, every * 3 / 2));
            }
        }
        written += text.len();
        corpus.docs.push(text);
    }
    corpus
}

/// One prompt of about `size` bytes with no secret in it.
pub fn clean_prompt(seed: u64, size: usize) -> String {
    let mut rng = Rng::new(seed);
    let mut text = String::with_capacity(size + 1024);
    while text.len() < size {
        section(&mut rng, &mut text);
    }
    text
}

fn section(rng: &mut Rng, out: &mut String) {
    match rng.below(10) {
        0..=2 => chat(rng, out),
        3 => code(rng, out),
        4 | 5 => tool_result(rng, out),
        6 => logs(rng, out),
        7 => config(rng, out),
        _ => markdown(rng, out),
    }
    out.push('\n');
}

// One line of words each, not one word a line.
#[rustfmt::skip]
const WORDS: &[&str] = &[
    "the", "the", "the", "a", "a", "to", "to", "of", "of", "and", "and", "in", "is", "it",
    "for", "that", "on", "with", "this", "we", "you", "can", "should", "would", "be", "not",
    "but", "if", "when", "then", "so", "our", "please", "could", "help", "me", "understand",
    "why", "how", "what", "there", "after", "before", "because", "every", "some", "only",
    "function", "service", "request", "response", "error", "returns", "value", "data",
    "user", "users", "customer", "report", "table", "query", "database", "cache", "latency",
    "deploy", "build", "test", "tests", "failing", "passed", "session", "cookie", "header",
    "endpoint", "migration", "schema", "invoice", "order", "shipping", "address", "meeting",
    "summary", "draft", "email", "review", "refactor", "async", "thread", "memory",
    "budget", "quarterly", "revenue", "growth", "team", "roadmap", "milestone", "bucket",
    "region", "cluster", "node", "pod", "Kubernetes", "Docker", "Postgres", "Redis",
    "Kafka", "GraphQL", "REST", "JSON", "YAML", "naïve", "café", "résumé", "Zürich", "São",
    "Paulo", "東京", "데이터", "🙂", "→",
];

/// Words that hold an anchor of the prefilter (`key`, `pass`, `auth`, `sk-`, `aws`, ...),
/// drawn for one word in twenty: more often than in most prose, as prompts about software
/// talk about keys and tokens.
#[rustfmt::skip]
const ANCHOR_WORDS: &[&str] = &[
    "passing", "bypass", "compass", "author", "authored", "monkey", "keyboard", "turkey",
    "whiskey", "key", "keys", "token", "tokens", "password", "passwords", "secret",
    "secrets", "credential", "credentials", "auth", "tokenizer", "pwd", "passport",
    "task-list", "ask-me", "risk-based", "disk-io", "sk-learn", "AWS", "aws", "Lambda",
];

const KEY_PROSE: &[&str] = &[
    "The key point is that the cache must be invalidated first.",
    "We hit the token limit of the model, so the summary was cut short.",
    "Reset your password from the account page; the link expires in 24 hours.",
    "The secret to good latency is batching the writes.",
    "Each API key is scoped to one project and can be rotated from the console.",
    "Use the auth middleware before the router, otherwise the session is empty.",
    "The password field must be at least 12 characters long.",
    "Store credentials in the vault, never in the repository.",
    "Count tokens with the tokenizer before sending the prompt.",
    "A primary key on (tenant_id, created_at) made the query 40x faster.",
    "token_count: 1532 for the prompt, 208 for the completion.",
    "The bearer token is read from the Authorization header by the gateway.",
    "Set OPENAI_API_KEY=sk-... in your .env file and restart.",
    "The keyboard shortcut is Ctrl+Shift+K; the passkey prompt appears after it.",
];

// One line of words each, not one word a line.
#[rustfmt::skip]
const NAMES: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
    "mallory", "oscar", "peggy", "trent", "victor", "walter",
];

const DOMAINS: &[&str] = &[
    "example.com",
    "example.org",
    "acme.io",
    "corp.example.net",
    "mail.example.co.uk",
];

fn date(rng: &mut Rng) -> String {
    format!(
        "20{:02}-{:02}-{:02}",
        rng.range(19, 26),
        rng.range(1, 12),
        rng.range(1, 28)
    )
}

fn timestamp(rng: &mut Rng) -> String {
    format!(
        "{}T{:02}:{:02}:{:02}.{:03}Z",
        date(rng),
        rng.below(24),
        rng.below(60),
        rng.below(60),
        rng.below(1000)
    )
}

fn email(rng: &mut Rng) -> String {
    format!(
        "{}.{}@{}",
        rng.pick(NAMES),
        rng.pick(NAMES),
        rng.pick(DOMAINS)
    )
}

fn url(rng: &mut Rng) -> String {
    format!(
        "https://{}/{}/{}?page={}",
        rng.pick(&[
            "docs.example.com",
            "github.com",
            "api.acme.io",
            "en.wikipedia.org"
        ]),
        rng.pick(&["v1", "guide", "acme/infra", "wiki", "issues"]),
        rng.pick(&[
            "getting-started",
            "Rate_limiting",
            "1234",
            "pulls",
            "auth#tokens"
        ]),
        rng.below(20)
    )
}

fn uuid(rng: &mut Rng) -> String {
    format!(
        "{}-{}-4{}-a{}-{}",
        rng.chars(HEX, 8),
        rng.chars(HEX, 4),
        rng.chars(HEX, 3),
        rng.chars(HEX, 3),
        rng.chars(HEX, 12)
    )
}

fn sentence(rng: &mut Rng, out: &mut String) {
    if rng.chance(8) {
        out.push_str(rng.pick(KEY_PROSE));
        out.push(' ');
        return;
    }
    let n = rng.range(6, 22);
    for i in 0..n {
        if i > 0 {
            out.push(' ');
        }
        match rng.below(40) {
            0 => out.push_str(&rng.range(2, 99_999).to_string()),
            1 => out.push_str(&date(rng)),
            2 => out.push_str(&format!("{}.{}%", rng.below(100), rng.below(10))),
            3 => out.push_str(&format!(
                "v{}.{}.{}",
                rng.below(5),
                rng.below(30),
                rng.below(10)
            )),
            4 if rng.chance(30) => out.push_str(&email(rng)),
            5 if rng.chance(40) => out.push_str(&url(rng)),
            6 => out.push_str(&format!("${}.{:02}", rng.range(1, 5000), rng.below(100))),
            7 | 8 => out.push_str(rng.pick(ANCHOR_WORDS)),
            _ => out.push_str(rng.pick(WORDS)),
        }
    }
    out.push_str(rng.pick(&[". ", "? ", ". ", "! ", ".\n"]));
}

fn chat(rng: &mut Rng, out: &mut String) {
    out.push_str(rng.pick(&["User: ", "Assistant: ", "", "Q: ", "> "]));
    for _ in 0..rng.range(2, 12) {
        sentence(rng, out);
    }
    out.push('\n');
}

fn code(rng: &mut Rng, out: &mut String) {
    let snippets: &[&str] = &[
        "```python\nimport os\n\nclient = OpenAI(api_key=os.environ[\"OPENAI_API_KEY\"])\n\ndef get_password_hash(password: str) -> str:\n    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(12))\n\nfor i in range(0, 1000, 50):\n    batch = rows[i:i + 50]\n```\n",
        "```rust\nlet token = req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok());\nlet key = format!(\"{}:{}\", tenant_id, user_id);\nif let Some(secret) = vault.read(&key).await? {\n    cache.insert(key, secret, Duration::from_secs(3600));\n}\n```\n",
        "```js\nconst res = await fetch(`https://api.example.com/v2/orders/${orderId}`, {\n  headers: { Authorization: `Bearer ${process.env.API_TOKEN}` },\n});\nconst { items, total_cents: total } = await res.json();\nconsole.log(`order ${orderId}: ${items.length} items, ${total / 100} USD`);\n```\n",
        "```sql\nSELECT u.id, u.email, count(o.id) AS orders\nFROM users u JOIN orders o ON o.user_id = u.id\nWHERE o.created_at >= '2024-01-01' AND o.total_cents > 10000\nGROUP BY 1, 2 ORDER BY 3 DESC LIMIT 50;\n```\n",
        "```go\nfunc (s *Server) auth(next http.Handler) http.Handler {\n\treturn http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {\n\t\ttok := strings.TrimPrefix(r.Header.Get(\"Authorization\"), \"Bearer \")\n\t\tif !s.keys.Valid(tok) { http.Error(w, \"unauthorized\", 401); return }\n\t\tnext.ServeHTTP(w, r)\n\t})\n}\n```\n",
        "```bash\ngit clone git@github.com:acme/infra.git && cd infra\nexport AWS_PROFILE=staging AWS_REGION=eu-west-1\naws s3 cp s3://acme-reports/2024/q3.csv ./data/ --recursive\nkubectl -n payments rollout status deploy/api --timeout=120s\n```\n",
    ];
    out.push_str(rng.pick(snippets));
    if rng.chance(50) {
        out.push_str(&format!(
            "commit {} on {} by {} <{}>\n",
            rng.chars(HEX, 40),
            date(rng),
            rng.pick(NAMES),
            email(rng)
        ));
    }
}

fn tool_result(rng: &mut Rng, out: &mut String) {
    out.push_str("{\"tool\":\"");
    out.push_str(rng.pick(&["search_orders", "read_file", "list_issues", "http_get"]));
    out.push_str("\",\"result\":[");
    for i in 0..rng.range(1, 8) {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            "{{\"id\":\"{}\",\"created_at\":\"{}\",\"status\":{},\"amount\":{}.{:02},\"currency\":\"{}\",\"customer\":{{\"name\":\"{} {}\",\"email\":{}}},\"url\":\"{}\",\"sha\":\"{}\",\"tokens\":{},\"note\":\"",
            uuid(rng),
            timestamp(rng),
            rng.pick(&[200, 201, 404, 500]),
            rng.range(1, 99_999),
            rng.below(100),
            rng.pick(&["USD", "EUR", "GBP"]),
            rng.pick(NAMES),
            rng.pick(NAMES),
            if rng.chance(30) {
                format!("\"{}\"", email(rng))
            } else {
                "null".to_owned()
            },
            url(rng),
            rng.chars(HEX, 12),
            rng.range(10, 128_000),
        ));
        sentence(rng, out);
        out.push_str("\"}");
    }
    out.push_str("]}\n");
}

fn logs(rng: &mut Rng, out: &mut String) {
    for _ in 0..rng.range(3, 25) {
        out.push_str(&format!(
            "{} {} [{}] request_id={} method={} path=/api/v{}/{} status={} latency_ms={} ip=10.{}.{}.{} user={}\n",
            timestamp(rng),
            rng.pick(&["INFO", "INFO", "WARN", "DEBUG", "ERROR"]),
            rng.pick(&["http", "auth", "db", "worker-3"]),
            rng.chars(HEX, 16),
            rng.pick(&["GET", "POST", "PUT"]),
            rng.range(1, 3),
            rng.pick(&["orders", "users/me", "tokens/refresh", "keys", "password/reset"]),
            rng.pick(&[200, 200, 204, 401, 403, 429, 500]),
            rng.range(1, 2500),
            rng.below(256),
            rng.below(256),
            rng.below(256),
            rng.pick(NAMES),
        ));
    }
}

fn config(rng: &mut Rng, out: &mut String) {
    let files: &[&str] = &[
        "# .env.example\nDATABASE_URL=postgres://app@localhost:5432/app\nREDIS_URL=redis://localhost:6379/0\nOPENAI_API_KEY=\nSECRET_KEY=change-me\nTOKEN_TTL_SECONDS=3600\nPASSWORD_MIN_LENGTH=12\nLOG_LEVEL=info\n",
        "server:\n  port: 8080\n  read_timeout: 30s\nauth:\n  issuer: https://auth.example.com/\n  audience: api\n  token_ttl: 15m\n  api_key: ${API_KEY}\n  password: ${DB_PASSWORD}\nlimits:\n  requests_per_minute: 600\n  max_body_bytes: 1048576\n",
        "[package]\nname = \"billing-service\"\nversion = \"2.14.3\"\nedition = \"2021\"\n\n[dependencies]\ntokio = { version = \"1.38\", features = [\"full\"] }\njsonwebtoken = \"9.3\"\nargon2 = \"0.5\"\n",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: api-credentials\n  namespace: payments\ntype: Opaque\nstringData:\n  username: svc-payments\n  password: <set-by-ci>\n",
    ];
    out.push_str(rng.pick(files));
}

fn markdown(rng: &mut Rng, out: &mut String) {
    out.push_str(rng.pick(&[
        "## Summary\n\n",
        "### Steps to reproduce\n\n",
        "# Notes\n\n",
    ]));
    for _ in 0..rng.range(1, 4) {
        out.push_str("- ");
        sentence(rng, out);
        out.push('\n');
    }
    out.push_str("\n| date | region | orders | revenue |\n|---|---|---|---|\n");
    for _ in 0..rng.range(2, 8) {
        out.push_str(&format!(
            "| {} | {} | {} | {},{:03}.{:02} |\n",
            date(rng),
            rng.pick(&["EMEA", "NA", "APAC"]),
            rng.range(10, 99_999),
            rng.range(1, 999),
            rng.below(1000),
            rng.below(100)
        ));
    }
    out.push_str(&format!("\nSee [the runbook]({})", url(rng)));
    if rng.chance(30) {
        out.push_str(&format!(" or call +1 (415) 555-0{:03}", rng.below(1000)));
    }
    out.push_str(".\n");
}

/// Appends one line holding a fake secret, the way it leaks into a prompt; returns the
/// detector meant to find it and the secret's byte range.
fn plant(rng: &mut Rng, out: &mut String) -> (&'static str, std::ops::Range<usize>) {
    let (detector, before, secret, after) = match rng.below(12) {
        0 => (
            "aws_access_key",
            "aws_access_key_id = ",
            format!("AKIA{}", rng.chars(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)),
            "",
        ),
        1 => (
            "github_token",
            "git remote set-url origin https://x-access-token:",
            format!("ghp_{}", rng.chars(ALNUM, 36)),
            "@github.com/acme/infra.git",
        ),
        2 => (
            "openai_key",
            "Here is my key, why does it 401? ",
            format!("sk-proj-{}A1b", rng.chars(URLSAFE, 61)),
            "",
        ),
        3 => (
            "anthropic_key",
            "ANTHROPIC_API_KEY=",
            format!("sk-ant-api03-{}", rng.chars(URLSAFE, 93)),
            "",
        ),
        4 => (
            "stripe_key",
            "stripe.api_key = \"",
            format!("sk_live_{}Z9a", rng.chars(ALNUM, 24)),
            "\"",
        ),
        5 => (
            "slack_token",
            "SLACK_BOT_TOKEN: ",
            format!(
                "xoxb-{}-{}-{}",
                rng.range(100_000_000_000, 999_999_999_999),
                rng.range(100_000_000_000, 999_999_999_999),
                rng.chars(ALNUM, 24)
            ),
            "",
        ),
        6 => (
            "jwt",
            "curl -H 'Authorization: Bearer ",
            format!(
                "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ{}.{}",
                rng.chars(URLSAFE, 60),
                rng.chars(URLSAFE, 43)
            ),
            "' https://api.example.com/v1/me",
        ),
        7 => (
            "connection_string_password",
            "DATABASE_URL=postgres://app:",
            format!("{}7", rng.chars(ALNUM, 15)),
            "@db.prod.internal:5432/app",
        ),
        8 => ("payment_card", "Card on file: ", card(rng), ", exp 09/27."),
        9 => ("iban", "Please wire it to ", iban(rng), " by Friday."),
        10 => (
            "generic_secret",
            "client_secret = \"",
            format!("{}4", rng.chars(ALNUM, 31)),
            "\"",
        ),
        _ => (
            "google_api_key",
            "GOOGLE_MAPS_KEY=",
            format!("AIza{}", rng.chars(URLSAFE, 35)),
            "",
        ),
    };
    out.push_str(before);
    let start = out.len();
    out.push_str(&secret);
    let end = out.len();
    out.push_str(after);
    out.push('\n');
    (detector, start..end)
}

/// A Visa number with a valid Luhn check digit, grouped in fours.
fn card(rng: &mut Rng) -> String {
    let mut digits: Vec<u32> = vec![4];
    digits.extend((0..14).map(|_| rng.below(10) as u32));
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            // Next to the check digit comes the first doubled one.
            let d = if i % 2 == 0 { d * 2 } else { d };
            if d > 9 { d - 9 } else { d }
        })
        .sum();
    digits.push((10 - sum % 10) % 10);
    let s: String = digits.iter().map(|d| char::from(b'0' + *d as u8)).collect();
    format!("{} {} {} {}", &s[..4], &s[4..8], &s[8..12], &s[12..])
}

/// A British IBAN with a valid mod-97 check, grouped in fours.
fn iban(rng: &mut Rng) -> String {
    let bank = rng.chars(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", 4);
    let account = rng.chars(b"0123456789", 14);
    // Check digits: 98 minus (BBAN + "GB00") mod 97, with letters as 10..35.
    let rem = format!("{bank}{account}GB00").bytes().fold(0u32, |rem, b| {
        if b.is_ascii_digit() {
            (rem * 10 + u32::from(b - b'0')) % 97
        } else {
            (rem * 100 + u32::from(b - b'A') + 10) % 97
        }
    });
    let s = format!("GB{:02}{bank}{account}", 98 - rem);
    let groups: Vec<&str> = (0..s.len())
        .step_by(4)
        .map(|i| &s[i..(i + 4).min(s.len())])
        .collect();
    groups.join(" ")
}
