//! Data-loss prevention: secrets and personal data in text an agent is about to send.
//!
//! [`Detectors`] is built once from config and scans any text — a prompt, a tool argument,
//! a request body — returning [`Finding`]s: which detector, which byte span, how sure. A
//! finding never holds the matched text, so it can go into events and logs as it is; the
//! caller redacts with [`redact`] or refuses, naming the detector.
//!
//! Speed comes from looking only where a secret can be. One Aho–Corasick pass finds the
//! token prefixes (`AKIA`, `ghp_`, `-----BEGIN`, `eyJ`, `://`, ...), `memchr` finds every
//! `@`, and bit masks of 64 bytes at a time (`lanes.rs`) find the `:` and `=` with a long
//! enough value after them (where `password = ...` and its kin are looked for, from the
//! value back to the name) and the runs of digits long enough to be a number. At each
//! trigger a gate of a few byte comparisons (`gates.rs`) throws out what cannot match
//! (`"tokens": 1532`, a URL with no user, a date), and the detector's pattern then runs
//! anchored at the trigger or confined to the few bytes around it: no search ever runs past
//! what its match could span. Custom detectors from config have no anchors and run over
//! the whole text.

mod digits;
mod gates;
mod lanes;
mod rules;
mod validate;

use std::cmp::Reverse;
use std::ops::Range;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, MatchKind};
use regex_automata::meta::Regex;
use regex_automata::{Anchored, Input, PatternID};

use digits::DigitRuns;
use rules::{RULES, Trigger};
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
    /// The literals of two bytes or more, exactly as written: the token prefixes are
    /// case-sensitive, which lets the automaton skip ahead with its SIMD prefilter.
    anchors: AhoCorasick,
    /// For each anchor pattern: the detectors it wakes, and how each looks there.
    anchor_rules: Vec<Vec<(usize, AnchorRule)>>,
    /// One-byte literals (`@`), found with `memchr`: in the automaton they would make every
    /// position a candidate for its prefilter.
    byte_rules: Vec<(u8, usize, gates::Within)>,
    /// Detectors woken by an assignment: `:` or `=` with a long enough value after it and
    /// one of the names before it.
    assignment_rules: Vec<(usize, &'static [&'static str], usize)>,
    /// Detectors woken by a run of at least `min` digits of the right shape.
    digit_rules: Vec<(usize, usize, gates::Shape)>,
    /// Detectors woken by two capitals and a digit run (`GB82`).
    country_rules: Vec<usize>,
    /// Detectors that scan everything: the custom ones.
    everywhere: Vec<usize>,
}

/// What a detector does at one of its literal anchors (see [`Trigger`]).
#[derive(Clone, Copy)]
enum AnchorRule {
    Prefix,
    Inside(gates::Within),
}

/// Where one search looks: its span, and whether the match must start at the span's start.
/// Look-around (`\b`, `^`) still sees the text outside the span.
struct Search {
    span: Range<usize>,
    anchored: bool,
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
        let mut anchor_rules: Vec<Vec<(usize, AnchorRule)>> = Vec::new();
        let mut byte_rules = Vec::new();
        let mut assignment_rules = Vec::new();
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
            let mut anchor =
                |word: &'static str, how| match literals.iter().position(|&w| w == word) {
                    Some(i) => anchor_rules[i].push((index, how)),
                    None => {
                        literals.push(word);
                        anchor_rules.push(vec![(index, how)]);
                    }
                };
            match rule.trigger {
                Trigger::Prefix(words) => {
                    for word in words {
                        anchor(word, AnchorRule::Prefix);
                    }
                }
                Trigger::Assignment { names, value } => {
                    assignment_rules.push((index, names, value));
                }
                Trigger::Inside { literal, within } => match literal.as_bytes() {
                    &[byte] => byte_rules.push((byte, index, within)),
                    _ => anchor(literal, AnchorRule::Inside(within)),
                },
                Trigger::Digits { min, shape } => digit_rules.push((index, min, shape)),
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
        // Leftmost-first rather than overlapping, so that the prefilter (Teddy) can skip
        // ahead; no literal starts inside another, so no hit is lost, and at one position
        // the earlier rule's literal wins (`sk-ant-` before `sk-`: an Anthropic key is no
        // OpenAI key).
        let anchors = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .build(&literals)
            .expect("DLP anchors build");
        Ok(Detectors {
            detectors,
            anchors,
            anchor_rules,
            byte_rules,
            assignment_rules,
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
        let bytes = text.as_bytes();
        let mut found = Vec::new();
        for hit in self.anchors.find_iter(text) {
            for &(det, rule) in &self.anchor_rules[hit.pattern().as_usize()] {
                let search = match rule {
                    AnchorRule::Prefix => Some(Search::at(hit.start(), text)),
                    AnchorRule::Inside(within) => within(bytes, hit.range()).map(Search::within),
                };
                if let Some(search) = search {
                    self.run(det, text, search, &mut found);
                }
            }
        }
        for &(byte, det, within) in &self.byte_rules {
            for at in memchr::memchr_iter(byte, bytes) {
                if let Some(span) = within(bytes, at..at + 1) {
                    self.run(det, text, Search::within(span), &mut found);
                }
            }
        }
        if !self.assignment_rules.is_empty() {
            self.scan_assignments(text, &mut found);
        }
        if !self.digit_rules.is_empty() || !self.country_rules.is_empty() {
            self.scan_numbers(text, &mut found);
        }
        for &det in &self.everywhere {
            self.run(det, text, Search::within(0..text.len()), &mut found);
        }
        self.resolve(found)
    }

    /// The assignment detectors, at each `:` and `=`: these bytes are common, but the value
    /// after most of them is short (`"tokens": 1532`, `10:22:33`), which is checked first
    /// (on bit masks by [`gates::Assignments`], then byte by byte);
    /// the name before is looked at only after that.
    fn scan_assignments(&self, text: &str, found: &mut Vec<(usize, Finding)>) {
        let bytes = text.as_bytes();
        let shortest = self.assignment_rules.iter().map(|r| r.2).min().unwrap_or(0);
        let longest = self.assignment_rules.iter().map(|r| r.2).max().unwrap_or(0);
        for op in gates::Assignments::new(bytes, shortest) {
            let value = gates::value_after(bytes, op, longest);
            if value < shortest {
                continue;
            }
            for &(det, names, min) in &self.assignment_rules {
                if value < min {
                    continue;
                }
                // The leftmost name that starts a match, as an unanchored search would find.
                for start in gates::names_before(bytes, op, names) {
                    if self.run(det, text, Search::at(start, text), found) {
                        break;
                    }
                }
            }
        }
    }

    /// The number detectors, at each run of digits.
    fn scan_numbers(&self, text: &str, found: &mut Vec<(usize, Finding)>) {
        let bytes = text.as_bytes();
        let min = self.digit_rules.iter().map(|r| r.1).min();
        for run in DigitRuns::new(bytes, min, !self.country_rules.is_empty()) {
            for &(det, min, shape) in &self.digit_rules {
                if run.digits >= min && shape(bytes, run.start..run.end) {
                    // A pattern may take the character on either side (`(?:^|[^\w+])`), and
                    // a phone number starts with the `+` or `(` before its first digit.
                    let start = floor_boundary(text, run.start.saturating_sub(2));
                    let end = ceil_boundary(text, (run.end + 1).min(text.len()));
                    self.run(det, text, Search::within(start..end), found);
                }
            }
            let letters = run.start.wrapping_sub(2);
            let country = run.start >= 2
                && bytes[letters..run.start].iter().all(u8::is_ascii_uppercase)
                && gates::iban_country(bytes, letters);
            if country {
                for &det in &self.country_rules {
                    self.run(det, text, Search::at(letters, text), found);
                }
            }
        }
    }

    /// Runs one detector's patterns in one place, keeping what its validator accepts.
    /// Whether any pattern matched, accepted or not.
    fn run(
        &self,
        det: usize,
        text: &str,
        search: Search,
        found: &mut Vec<(usize, Finding)>,
    ) -> bool {
        let detector = &self.detectors[det];
        let mut matched = false;
        for (regex, secret) in &detector.patterns {
            let anchored = if search.anchored {
                Anchored::Yes
            } else {
                Anchored::No
            };
            let mut input = Input::new(text)
                .span(search.span.clone())
                .anchored(anchored);
            while let Some(m) = regex.search(&input) {
                matched = true;
                let span = match secret {
                    Some(group) => secret_span(regex, text, m.range(), *group),
                    None => m.range(),
                };
                // An empty match (a custom `x*`) marks no text to report or redact.
                let valid = (!span.is_empty())
                    .then(|| (detector.validate)(text, span.clone()))
                    .flatten();
                if let Some(span) = valid {
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
                // The next match may start inside this one's trailing context.
                let next = if span.end > m.start() {
                    span.end
                } else {
                    m.start() + 1
                };
                if search.anchored || next >= search.span.end {
                    break;
                }
                input.set_start(ceil_boundary(text, next));
            }
        }
        matched
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

fn compile(pattern: &str) -> Result<(Regex, Option<usize>), String> {
    let regex = Regex::new(pattern).map_err(|e| e.to_string())?;
    let secret = regex.group_info().to_index(PatternID::ZERO, "secret");
    Ok((regex, secret))
}

/// The span of the `secret` group of a match, found again with captures on the match alone
/// (matches are rare; the search that found it needed no captures).
fn secret_span(regex: &Regex, text: &str, matched: Range<usize>, group: usize) -> Range<usize> {
    let mut caps = regex.create_captures();
    let input = Input::new(text)
        .span(matched.clone())
        .anchored(Anchored::Yes);
    regex.search_captures(&input, &mut caps);
    caps.get_group(group).map_or(matched, |g| g.range())
}

impl Search {
    /// Anchored at `start`, free to run to the end of the text.
    fn at(start: usize, text: &str) -> Search {
        Search {
            span: start..text.len(),
            anchored: true,
        }
    }

    fn within(span: Range<usize>) -> Search {
        Search {
            span,
            anchored: false,
        }
    }
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

#[cfg(test)]
mod tests;

/// A seeded xorshift generator, for the randomized tests that hold the fast gates to a
/// plain byte-by-byte walk.
#[cfg(test)]
fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}
