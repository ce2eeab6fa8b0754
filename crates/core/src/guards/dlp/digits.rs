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

/// The digit groups of a run (`(415) 555-2671` → `415`, `555`, `2671`), for the gates that
/// look at a number's shape. Runs with more groups than this are not looked at so closely.
pub(super) struct Groups<'a> {
    list: [&'a [u8]; 16],
    len: usize,
}

impl<'a> Groups<'a> {
    /// `None` when the run has more groups than we keep.
    pub fn of(run: &'a [u8]) -> Option<Groups<'a>> {
        let mut groups = Groups {
            list: [&[]; 16],
            len: 0,
        };
        for group in run.split(|b| !b.is_ascii_digit()).filter(|g| !g.is_empty()) {
            *groups.list.get_mut(groups.len)? = group;
            groups.len += 1;
        }
        Some(groups)
    }

    pub fn list(&self) -> &[&'a [u8]] {
        &self.list[..self.len]
    }

    /// Consecutive groups with these lengths somewhere in the run.
    pub fn has_lengths(&self, want: &[usize]) -> bool {
        self.list()
            .windows(want.len())
            .any(|w| w.iter().map(|g| g.len()).eq(want.iter().copied()))
    }
}
