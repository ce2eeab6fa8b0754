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
        let start = self.at + first_digit(&b[self.at..])?;
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

/// The first ASCII digit, eight bytes at a time: most bytes of a prompt are not digits,
/// and this is the loop every byte of the text goes through.
fn first_digit(b: &[u8]) -> Option<usize> {
    let mut chunks = b.chunks_exact(8);
    for (n, chunk) in chunks.by_ref().enumerate() {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let digits = digit_bytes(word);
        if digits != 0 {
            return Some(n * 8 + digits.trailing_zeros() as usize / 8);
        }
    }
    let tail = b.len() - chunks.remainder().len();
    chunks
        .remainder()
        .iter()
        .position(u8::is_ascii_digit)
        .map(|i| tail + i)
}

/// `0x80` in each byte of `word` that is an ASCII digit, `0` in the others.
fn digit_bytes(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    // Digits become 0..=9, and only they do.
    let t = word ^ (ONES * b'0' as u64);
    // The high bit is set where the low seven bits are 10 or more (no carry leaves a
    // byte: 0x7f + 0x76 < 0x100) or where it was set already.
    let ten_or_more = ((t & (ONES * 0x7f)) + ONES * 0x76) | t;
    !ten_or_more & (ONES * 0x80)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_digit_is_found_in_any_byte_of_a_word() {
        for len in 0..40 {
            for at in 0..=len {
                let mut text = vec![b'x'; len];
                text.extend_from_slice(b"/:9");
                text.splice(at..at, [b'0' + (at % 10) as u8]);
                assert_eq!(first_digit(&text), Some(at), "{len} {at}");
            }
        }
        assert_eq!(first_digit(b"/:abc\xff\x80 ~"), None);
        for b in 0..=255u8 {
            assert_eq!(first_digit(&[b; 9]).is_some(), b.is_ascii_digit(), "{b}");
        }
    }
}
