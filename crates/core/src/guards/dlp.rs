//! Data-loss prevention: secrets and personal data in text an agent is about to send.
//!
//! [`Detectors`] is built once from config and scans any text — a prompt, a tool argument,
//! a request body — returning [`Finding`]s: which detector, which byte span, how sure. A
//! finding never holds the matched text, so it can go into events and logs as it is; the
//! caller redacts with [`redact`] or refuses, naming the detector.
//!
//! Speed comes from looking only where a secret can be. One Aho–Corasick pass finds every
//! literal anchor (`AKIA`, `ghp_`, `-----BEGIN`, `eyJ`, `@`, `password`, ...) and one pass
//! over the bytes finds runs of digits; each detector's regular expressions then run only in
//! the windows around its own triggers. Custom detectors from config have no anchors and
//! run over the whole text.

mod rules;
mod validate;

use std::cmp::Reverse;
use std::ops::Range;
use std::sync::Arc;

use aho_corasick::AhoCorasick;
use regex::{Regex, RegexBuilder};

use rules::{DIGIT_BACK, DIGIT_REACH, RULES, Trigger};
use validate::Validator;

/// One detected secret or piece of personal data. Holds where it is, never what it is.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// The detector's id: a built-in one (`"aws_access_key"`, `"payment_card"`, ...) or a
    /// custom one from `guards.dlp.custom`.
    pub detector: Arc<str>,
    /// Byte offsets into the scanned text, on `char` boundaries.
    pub start: usize,
    pub end: usize,
    /// 0–1: how likely this is what the detector names. Fixed per detector.
    pub confidence: f32,
}

/// A detector of the user's own, from `guards.dlp.custom`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomDetector {
    /// Names the detector in findings and in `[REDACTED:<id>]`: letters, digits, `_`, `.`
    /// and `-` only, since the placeholder lands inside JSON strings.
    pub id: String,
    /// A regular expression (Rust `regex` syntax). If it has a group named `secret`, that
    /// group is the finding.
    pub pattern: String,
    /// One of [`validator_names`]: a match it rejects is no finding.
    pub validator: Option<String>,
}

/// The validators a custom detector may name, for config error messages.
pub fn validator_names() -> &'static [&'static str] {
    validate::CUSTOM_NAMES
}

/// Custom detectors are the user's own patterns; a match is taken as meant.
const CUSTOM_CONFIDENCE: f32 = 0.9;

/// A window's haystack runs this far past it, so a token that starts inside the window is
/// matched whole and a pattern's trailing boundary can be seen.
const OVERHANG: usize = 256;

struct Detector {
    id: Arc<str>,
    /// Each pattern with the index of its `secret` group, if it has one.
    patterns: Vec<(Regex, Option<usize>)>,
    validate: Validator,
    confidence: f32,
    rank: u8,
}

/// Every detector, compiled once. Cheap to share: scanning takes `&self`.
pub struct Detectors {
    detectors: Vec<Detector>,
    anchors: AhoCorasick,
    /// For each anchor pattern: the detector it wakes, and the window around it.
    anchor_windows: Vec<(usize, usize, usize)>,
    /// Detectors woken by a run of at least this many digits.
    digit_rules: Vec<(usize, usize)>,
    /// Detectors woken by two capitals and a digit run (`GB82`).
    country_rules: Vec<usize>,
    /// Detectors that scan everything: the custom ones.
    everywhere: Vec<usize>,
}

impl std::fmt::Debug for Detectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.ids()).finish()
    }
}

impl Detectors {
    /// The built-in detectors plus the `custom` ones from `guards.dlp.custom`. Fails on a
    /// custom id that is empty, already taken or has characters outside `[A-Za-z0-9_.-]`, a
    /// pattern that does not compile, or an unknown validator.
    pub fn new(custom: &[CustomDetector]) -> Result<Detectors, String> {
        let mut detectors = Vec::with_capacity(RULES.len() + custom.len());
        let mut literals = Vec::new();
        let mut anchor_windows = Vec::new();
        let mut digit_rules = Vec::new();
        let mut country_rules = Vec::new();
        for (index, rule) in RULES.iter().enumerate() {
            let patterns = rule
                .patterns
                .iter()
                .map(|p| compile(p).expect("built-in DLP patterns compile"))
                .collect();
            detectors.push(Detector {
                id: Arc::from(rule.id),
                patterns,
                validate: rule.validate,
                confidence: rule.confidence,
                rank: rule.rank,
            });
            match rule.trigger {
                Trigger::Anchors {
                    literals: words,
                    back,
                    reach,
                } => {
                    for word in words {
                        literals.push(*word);
                        anchor_windows.push((index, back, reach));
                    }
                }
                Trigger::DigitRun(min) => digit_rules.push((index, min)),
                Trigger::CountryCode => country_rules.push(index),
            }
        }
        let mut everywhere = Vec::with_capacity(custom.len());
        for CustomDetector {
            id,
            pattern,
            validator,
        } in custom
        {
            if id.is_empty() {
                return Err("a custom detector needs an id".to_owned());
            }
            if !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
            {
                return Err(format!(
                    "custom detector id `{id}`: use only letters, digits, `_`, `.` and `-`"
                ));
            }
            if detectors.iter().any(|d| &*d.id == id.as_str()) {
                return Err(format!("detector id `{id}` is already taken"));
            }
            let compiled = compile(pattern).map_err(|e| format!("custom detector `{id}`: {e}"))?;
            let validate = match validator.as_deref() {
                None => validate::any,
                Some(name) => validate::custom(name).ok_or_else(|| {
                    format!(
                        "custom detector `{id}`: unknown validator `{name}` (known: {})",
                        validator_names().join(", ")
                    )
                })?,
            };
            everywhere.push(detectors.len());
            detectors.push(Detector {
                id: Arc::from(id.as_str()),
                patterns: vec![compiled],
                validate,
                confidence: CUSTOM_CONFIDENCE,
                rank: 0,
            });
        }
        let anchors = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(&literals)
            .expect("DLP anchors build");
        Ok(Detectors {
            detectors,
            anchors,
            anchor_windows,
            digit_rules,
            country_rules,
            everywhere,
        })
    }

    /// Every detector id, built-in first, for checking `guards.dlp.actions` keys.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.detectors.iter().map(|d| &*d.id)
    }

    /// Everything found in `text`, ordered by position. Where findings of different
    /// detectors overlap, the more specific one stands (an OpenAI key, not a generic secret).
    pub fn scan(&self, text: &str) -> Vec<Finding> {
        let mut windows = self.windows(text);
        windows.sort_unstable_by_key(|&(det, ref w)| (det, w.start));
        let mut found = Vec::new();
        let mut current: Option<(usize, Range<usize>)> = None;
        for (det, window) in windows {
            match &mut current {
                Some((d, w)) if *d == det && window.start <= w.end => {
                    w.end = w.end.max(window.end);
                }
                _ => {
                    if let Some((d, w)) = current.take() {
                        self.run(d, text, w, &mut found);
                    }
                    current = Some((det, window));
                }
            }
        }
        if let Some((d, w)) = current {
            self.run(d, text, w, &mut found);
        }
        for &det in &self.everywhere {
            self.run(det, text, 0..text.len(), &mut found);
        }
        self.resolve(found)
    }

    /// The regions each detector must look at, as (detector, byte range), unmerged.
    fn windows(&self, text: &str) -> Vec<(usize, Range<usize>)> {
        let len = text.len();
        let mut windows = Vec::new();
        for hit in self.anchors.find_overlapping_iter(text) {
            let (det, back, reach) = self.anchor_windows[hit.pattern().as_usize()];
            let start = hit.start().saturating_sub(back);
            windows.push((det, start..(hit.end() + reach).min(len)));
        }
        if self.digit_rules.is_empty() && self.country_rules.is_empty() {
            return windows;
        }
        let bytes = text.as_bytes();
        for run in DigitRuns::new(bytes) {
            let around = run.start.saturating_sub(DIGIT_BACK)..(run.end + DIGIT_REACH).min(len);
            for &(det, min) in &self.digit_rules {
                if run.digits >= min {
                    windows.push((det, around.clone()));
                }
            }
            let country = run.start >= 2
                && bytes[run.start - 2..run.start]
                    .iter()
                    .all(u8::is_ascii_uppercase);
            if country {
                let start = run.start - 2;
                for &det in &self.country_rules {
                    windows.push((det, start..(start + 48).min(len)));
                }
            }
        }
        windows
    }

    /// Runs one detector over one window, keeping what its validator accepts.
    fn run(&self, det: usize, text: &str, window: Range<usize>, found: &mut Vec<(usize, Finding)>) {
        let detector = &self.detectors[det];
        let start = floor_boundary(text, window.start);
        let end = ceil_boundary(text, window.end);
        let haystack = &text[..ceil_boundary(text, end.saturating_add(OVERHANG).min(text.len()))];
        for (regex, secret) in &detector.patterns {
            let mut at = start;
            while at < end {
                let Some(m) = regex.find_at(haystack, at) else {
                    break;
                };
                if m.start() >= end {
                    break;
                }
                let span = match secret {
                    Some(group) => regex
                        .captures_at(haystack, m.start())
                        .and_then(|c| c.get(*group))
                        .map_or(m.range(), |g| g.range()),
                    None => m.range(),
                };
                at = if span.end > m.start() {
                    span.end
                } else {
                    ceil_boundary(text, m.start() + 1)
                };
                if let Some(span) = (detector.validate)(text, span) {
                    found.push((
                        det,
                        Finding {
                            detector: detector.id.clone(),
                            start: span.start,
                            end: span.end,
                            confidence: detector.confidence,
                        },
                    ));
                }
            }
        }
    }

    /// Drops repeats of one detector on one span, and findings that overlap a finding of a
    /// lower (more specific) rank.
    fn resolve(&self, mut found: Vec<(usize, Finding)>) -> Vec<Finding> {
        found.sort_unstable_by_key(|(det, f)| (self.detectors[*det].rank, f.start, Reverse(f.end)));
        let mut kept: Vec<(usize, Finding)> = Vec::with_capacity(found.len());
        // Spans kept at lower ranks, sorted and disjoint, for a binary search.
        let mut taken: Vec<Range<usize>> = Vec::new();
        let mut last_end = vec![0; self.detectors.len()];
        let mut rank_start = 0;
        let mut rank = None;
        for (det, finding) in found {
            let this_rank = self.detectors[det].rank;
            if rank != Some(this_rank) {
                taken.extend(kept[rank_start..].iter().map(|(_, f)| f.start..f.end));
                taken.sort_unstable_by_key(|r| r.start);
                taken = merge(taken);
                rank_start = kept.len();
                rank = Some(this_rank);
            }
            let i = taken.partition_point(|r| r.end <= finding.start);
            if taken.get(i).is_some_and(|r| r.start < finding.end) {
                continue;
            }
            // Within a rank findings come by start, so a repeat overlaps its detector's last.
            if finding.start >= last_end[det] {
                last_end[det] = finding.end;
                kept.push((det, finding));
            }
        }
        let mut out: Vec<Finding> = kept.into_iter().map(|(_, f)| f).collect();
        out.sort_by_key(|f| (f.start, Reverse(f.end)));
        out
    }
}

/// `text` with each finding's span replaced by `[REDACTED:<detector>]`. Overlapping spans
/// become one placeholder named after the first of them; spans not on `char` boundaries
/// are left alone.
pub fn redact(text: &str, findings: &[Finding]) -> String {
    let mut spans: Vec<&Finding> = findings
        .iter()
        .filter(|f| {
            f.start < f.end
                && f.end <= text.len()
                && text.is_char_boundary(f.start)
                && text.is_char_boundary(f.end)
        })
        .collect();
    spans.sort_by_key(|f| (f.start, Reverse(f.end)));
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    let mut i = 0;
    while i < spans.len() {
        let first = spans[i];
        let mut end = first.end;
        i += 1;
        while i < spans.len() && spans[i].start < end {
            end = end.max(spans[i].end);
            i += 1;
        }
        out.push_str(&text[at..first.start]);
        out.push_str("[REDACTED:");
        out.push_str(&first.detector);
        out.push(']');
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

fn compile(pattern: &str) -> Result<(Regex, Option<usize>), regex::Error> {
    let regex = RegexBuilder::new(pattern).build()?;
    let secret = regex
        .capture_names()
        .position(|name| name == Some("secret"));
    Ok((regex, secret))
}

fn merge(sorted: Vec<Range<usize>>) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::with_capacity(sorted.len());
    for r in sorted {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

fn floor_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// A run of digits as a number is written: single digits groups joined by at most two of
/// `-. ()/` (`(415) 555-2671`, `4111 1111 1111 1111`, `2024-01-15`).
struct DigitRun {
    start: usize,
    end: usize,
    digits: usize,
}

struct DigitRuns<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> DigitRuns<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        DigitRuns { bytes, at: 0 }
    }
}

impl Iterator for DigitRuns<'_> {
    type Item = DigitRun;

    fn next(&mut self) -> Option<DigitRun> {
        let b = self.bytes;
        let start = self.at + b[self.at..].iter().position(u8::is_ascii_digit)?;
        let mut i = start;
        let mut digits = 0;
        let end = loop {
            while i < b.len() && b[i].is_ascii_digit() {
                digits += 1;
                i += 1;
            }
            let end = i;
            let mut j = i;
            while j < b.len()
                && j - i < 2
                && matches!(b[j], b' ' | b'-' | b'.' | b'(' | b')' | b'/')
            {
                j += 1;
            }
            if j > i && j < b.len() && b[j].is_ascii_digit() {
                i = j;
            } else {
                break end;
            }
        };
        self.at = end;
        Some(DigitRun { start, end, digits })
    }
}

#[cfg(test)]
mod tests;
