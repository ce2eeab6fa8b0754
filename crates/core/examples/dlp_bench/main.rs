//! How fast `Detectors::scan` is on one core, on three kinds of text; run by `bench/dlp`
//! (`cargo run --release -p airlock-core --example dlp_bench`), which saves what it prints.
//!
//! - Realistic prompts (`prompts.rs`): what an agent's request bodies look like, one fake
//!   secret about every 20 KiB. The figure the gateway lives with.
//! - The labelled corpus of the detector tests: a secret or a near miss on every line, the
//!   worst case for the prefilter.
//! - One clean 100 KB prompt: the time one large body costs, as a latency.
//!
//! Everything runs on the calling thread, so MB/s is per core. Each figure is the median of
//! several timed passes after a warm-up pass, so one disturbed pass does not move it.
//! Environment: `DLP_BENCH_SECS` (time per measurement, default 3), `DLP_BENCH_MB` (size of
//! the realistic corpus, default 8), `DLP_BENCH_DUMP` (a file to write that corpus to).

mod prompts;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use airlock_core::guards::dlp::Detectors;

const LABELLED: &str = include_str!("../../src/guards/corpus/labelled.jsonl");
const SEED: u64 = 20_261_128;
const SECRET_EVERY: usize = 20 * 1024;
const CLEAN_SIZE: usize = 100_000;

fn main() {
    let secs = env_or("DLP_BENCH_SECS", 3.0);
    let megabytes = env_or("DLP_BENCH_MB", 8.0);
    let detectors = Detectors::new(&[]).expect("built-in detectors compile");

    let corpus = prompts::realistic(SEED, (megabytes * 1e6) as usize, Some(SECRET_EVERY));
    if let Ok(path) = std::env::var("DLP_BENCH_DUMP") {
        // For reading the corpus, or for `perf record` on a scanner of your own.
        std::fs::write(&path, corpus.docs.join("\n\u{1e}\n")).expect("write the corpus");
    }
    let realistic = throughput(corpus.bytes(), secs, || {
        for doc in &corpus.docs {
            black_box(detectors.scan(doc));
        }
    });

    let lines: Vec<String> = LABELLED
        .lines()
        .map(|line| {
            let case: serde_json::Value = serde_json::from_str(line).expect("corpus line is JSON");
            case["text"].as_str().expect("a text").to_owned()
        })
        .collect();
    let line_bytes = lines.iter().map(String::len).sum();
    let by_line = throughput(line_bytes, secs, || {
        for line in &lines {
            black_box(detectors.scan(line));
        }
    });
    let body = lines.join("\n");
    let one_body = throughput(body.len(), secs, || {
        black_box(detectors.scan(&body));
    });

    let clean = prompts::clean_prompt(SEED + 1, CLEAN_SIZE);
    let mut times = Vec::new();
    let started = Instant::now();
    black_box(detectors.scan(&clean));
    while times.len() < 200 || started.elapsed().as_secs_f64() < secs {
        let t = Instant::now();
        black_box(detectors.scan(&clean));
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    let quantile = |q: f64| times[((times.len() - 1) as f64 * q) as usize];

    println!(
        "| corpus | size | scanned | MB/s on one core (median; min–max) | passes |\n|---|---|---|---|---|"
    );
    println!(
        "| realistic prompts (seed {SEED}, a fake secret every ~20 KiB) | {:.2} MB in {} bodies of 1–64 KiB | body by body | {} |",
        corpus.bytes() as f64 / 1e6,
        corpus.docs.len(),
        realistic
    );
    println!(
        "| labelled corpus (secret-dense) | {line_bytes} B in {} lines | line by line | {by_line} |",
        lines.len()
    );
    println!(
        "| labelled corpus (secret-dense) | {} B | as one body | {one_body} |",
        body.len()
    );
    println!(
        "\nClean {} B prompt: scan p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs over {} scans ({:.0} MB/s at p50).",
        clean.len(),
        quantile(0.5),
        quantile(0.9),
        quantile(0.99),
        times.len(),
        clean.len() as f64 / quantile(0.5)
    );
    println!("\n{}", quality(&detectors, &corpus, &clean));
}

/// Did the planted secrets get found, and what else was? Emails and phone numbers in the
/// text are findings by design (personal data); anything else is a false positive.
fn quality(detectors: &Detectors, corpus: &prompts::Corpus, clean: &str) -> String {
    let findings: Vec<_> = corpus.docs.iter().map(|doc| detectors.scan(doc)).collect();
    let mut found = 0;
    let mut missed = Vec::new();
    for p in &corpus.planted {
        let hit = findings[p.doc]
            .iter()
            .any(|f| &*f.detector == p.detector && f.start < p.end && p.start < f.end);
        if hit {
            found += 1;
        } else {
            missed.push(format!(
                "{} `{}`",
                p.detector,
                &corpus.docs[p.doc][p.start..p.end]
            ));
        }
    }
    let mut unplanted: BTreeMap<&str, usize> = BTreeMap::new();
    let mut false_positives = Vec::new();
    for (doc, list) in findings.iter().enumerate() {
        for f in list {
            let planted = corpus.planted.iter().any(|p| {
                p.doc == doc && &*f.detector == p.detector && f.start < p.end && p.start < f.end
            });
            if !planted {
                *unplanted.entry(&f.detector).or_default() += 1;
                if !matches!(&*f.detector, "email" | "phone") {
                    let text = &corpus.docs[doc][f.start..f.end];
                    false_positives.push(format!("{} `{text}`", f.detector));
                }
            }
        }
    }
    let clean_found = detectors.scan(clean).len();
    let mut out = format!(
        "Realistic corpus: {found} of {} planted secrets found{}. Other findings: {}. \
         The clean prompt: {clean_found} findings.",
        corpus.planted.len(),
        if missed.is_empty() {
            String::new()
        } else {
            format!(" (missed: {})", missed.join(", "))
        },
        if unplanted.is_empty() {
            "none".to_owned()
        } else {
            unplanted
                .iter()
                .map(|(d, n)| format!("{d} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    out.push_str(
        " (Emails and phone numbers in the generated text are personal data, found by design.)",
    );
    if !false_positives.is_empty() {
        out.push_str(&format!(
            " False positives: {}.",
            false_positives.join(", ")
        ));
    }
    out
}

/// MB/s (10^6 bytes) of `pass`, which scans `bytes`: median, min and max over passes.
struct Throughput {
    median: f64,
    min: f64,
    max: f64,
    passes: usize,
}

impl std::fmt::Display for Throughput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "**{:.1}** ({:.1}–{:.1}) | {}",
            self.median, self.min, self.max, self.passes
        )
    }
}

fn throughput(bytes: usize, secs: f64, mut pass: impl FnMut()) -> Throughput {
    pass();
    let mut rates = Vec::new();
    let started = Instant::now();
    while rates.len() < 5 || started.elapsed().as_secs_f64() < secs {
        let t = Instant::now();
        pass();
        rates.push(bytes as f64 / t.elapsed().as_secs_f64() / 1e6);
    }
    rates.sort_by(f64::total_cmp);
    Throughput {
        median: rates[rates.len() / 2],
        min: rates[0],
        max: rates[rates.len() - 1],
        passes: rates.len(),
    }
}

fn env_or(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
