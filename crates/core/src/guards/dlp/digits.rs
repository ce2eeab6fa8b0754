//! Runs of digits as numbers are written, found in one pass over the bytes: what wakes the
//! number detectors (cards, IBANs, SSNs, phones).

/// A run of digits as a number is written: single digits groups joined by at most two of
/// `-. ()/` (`(415) 555-2671`, `4111 1111 1111 1111`, `2024-01-15`).
pub(super) struct DigitRun {
    pub start: usize,
    pub end: usize,
    pub digits: usize,
}

pub(super) struct DigitRuns<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> DigitRuns<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
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

/// The lengths of the digit groups of `run` (`(415) 555-2671` → 3, 3, 4).
pub(super) fn groups(run: &[u8]) -> impl Iterator<Item = &[u8]> {
    run.split(|b| !b.is_ascii_digit()).filter(|g| !g.is_empty())
}

/// Three consecutive groups of these lengths somewhere in the run.
pub(super) fn has_groups(run: &[u8], want: [usize; 3]) -> bool {
    let mut last = [0; 3];
    groups(run).any(|g| {
        last = [last[1], last[2], g.len()];
        last == want
    })
}
