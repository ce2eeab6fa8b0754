//! Runs of digits as numbers are written, found on bit masks of the bytes: what wakes the
//! number detectors (cards, IBANs, SSNs, phones).

use super::lanes::{self, BLOCK, Kind};

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
    /// How many bytes of digits and gaps a run worth reporting spans at least (see
    /// [`DigitRuns::new`]); `None`: no length is enough.
    span: Option<usize>,
    /// Whether a run right after two capitals is worth reporting, however short.
    countries: bool,
    /// The masks of the blocks around the one last looked at.
    blocks: Window,
    /// The positions worth reporting in that block (see [`Window::hot`]).
    hot: u64,
}

impl<'a> DigitRuns<'a> {
    /// The runs of `bytes` with at least `min` digits or, if `countries`, right after two
    /// capitals (`GB82`), in order — and maybe some others, which the caller still checks.
    pub fn new(bytes: &'a [u8], min: Option<usize>, countries: bool) -> Self {
        DigitRuns {
            bytes,
            at: 0,
            // Runs that long are as rare; 32 keeps the mask arithmetic in 128 bits.
            span: min.map(|m| m.clamp(1, 32)),
            countries,
            blocks: Window::default(),
            hot: 0,
        }
        .start_block(0)
    }

    /// The start of the next run, from `at` on, worth reporting: one that spans at least
    /// `span` bytes (a run of `min` digits does), or starts after two capitals. Looked for
    /// 64 bytes at a time, with bit masks: most runs of a prompt (`"tokens": 1532`,
    /// `10:22:33`, the digits of a hash) are too short to be a number any detector wants.
    ///
    /// The first such position is always a run's start: a run that starts in an earlier
    /// block and spans `span` bytes from a later one did so from its start too, and was
    /// found there; the digit after two capitals starts a run.
    fn next_hot(&mut self) -> Option<usize> {
        while self.at < self.bytes.len() {
            let block = self.at / BLOCK;
            if self.blocks.index != block {
                self.blocks = if self.blocks.index + 1 == block {
                    self.blocks.advance(self.bytes)
                } else {
                    Window::new(self.bytes, block)
                };
                self.hot = self.blocks.hot(self.span, self.countries);
            }
            let hot = self.hot & (!0u64 << (self.at % BLOCK));
            if hot != 0 {
                return Some(block * BLOCK + hot.trailing_zeros() as usize);
            }
            self.at = (block + 1) * BLOCK;
        }
        None
    }

    fn start_block(mut self, block: usize) -> Self {
        self.blocks = Window::new(self.bytes, block);
        self.hot = self.blocks.hot(self.span, self.countries);
        self
    }

    /// The run starting at or after `at`, byte by byte.
    fn walk(&mut self) -> Option<DigitRun> {
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

impl Iterator for DigitRuns<'_> {
    type Item = DigitRun;

    fn next(&mut self) -> Option<DigitRun> {
        self.at = self.next_hot()?;
        self.walk()
    }
}

/// Digit, separator and capital masks (bit `i` for byte `i`) of three 64-byte blocks:
/// the one looked at, and the ones before and after it for the runs crossing its edges.
#[derive(Default)]
struct Window {
    index: usize,
    masks: [Masks; 3],
}

#[derive(Clone, Copy, Default)]
struct Masks {
    digit: u64,
    separator: u64,
    upper: u64,
}

impl Window {
    fn new(bytes: &[u8], index: usize) -> Window {
        let before = index.checked_sub(1).map(|i| masks(bytes, i));
        Window {
            index,
            masks: [
                before.unwrap_or_default(),
                masks(bytes, index),
                masks(bytes, index + 1),
            ],
        }
    }

    fn advance(&self, bytes: &[u8]) -> Window {
        Window {
            index: self.index + 1,
            masks: [self.masks[1], self.masks[2], masks(bytes, self.index + 2)],
        }
    }

    /// The positions of the middle block that start `span` bytes of a run, or are a digit
    /// after two capitals (if `countries`).
    fn hot(&self, span: Option<usize>, countries: bool) -> u64 {
        // Four bytes of the block before (bit 0 is its byte 60), the block, and 60 of the next.
        let wide = |mask: fn(&Masks) -> u64| {
            let [before, this, after] = self.masks.each_ref().map(mask);
            u128::from(before >> 60) | u128::from(this) << 4 | u128::from(after) << 68
        };
        let digit = wide(|m| m.digit);
        let mut hot = 0;
        if let Some(span) = span {
            // One or two separators between digits join them into a run.
            let separator = wide(|m| m.separator);
            let gap1 = digit << 1 & separator & digit >> 1;
            let gap2 = digit << 1 & separator & separator >> 1 & digit >> 2;
            let run = digit | gap1 | gap2 | gap2 << 1;
            // Where `span` bytes of run start, doubling the length known each step.
            let (mut starts, mut known) = (run, 1);
            while known < span {
                let step = known.min(span - known);
                starts &= starts >> step;
                known += step;
            }
            hot |= starts;
        }
        if countries {
            let upper = wide(|m| m.upper);
            hot |= digit & upper << 1 & upper << 2;
        }
        (hot >> 4) as u64
    }
}

/// The masks of the 64-byte block `index`.
fn masks(bytes: &[u8], index: usize) -> Masks {
    const KINDS: [Kind; 3] = [
        Kind {
            bytes: &[],
            ranges: &[(b'0', b'9')],
            high: false,
            except: &[],
        },
        Kind {
            bytes: b" -.()/",
            ranges: &[],
            high: false,
            except: &[],
        },
        Kind {
            bytes: &[],
            ranges: &[(b'A', b'Z')],
            high: false,
            except: &[],
        },
    ];
    let [digit, separator, upper] = lanes::block(bytes, index, &KINDS);
    Masks {
        digit,
        separator,
        upper,
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

    /// Every run, one byte at a time: what `DigitRuns` must agree with.
    fn plain_runs(b: &[u8]) -> Vec<(usize, usize, usize)> {
        let mut runs = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if !b[i].is_ascii_digit() {
                i += 1;
                continue;
            }
            let (start, mut digits) = (i, 0);
            let end = loop {
                while i < b.len() && b[i].is_ascii_digit() {
                    digits += 1;
                    i += 1;
                }
                let gap = b[i..]
                    .iter()
                    .take(2)
                    .take_while(|c| b" -.()/".contains(c))
                    .count();
                if gap > 0 && b.get(i + gap).is_some_and(u8::is_ascii_digit) {
                    i += gap;
                } else {
                    break i;
                }
            };
            runs.push((start, end, digits));
        }
        runs
    }

    #[test]
    fn the_runs_worth_reporting_are_those_a_plain_walk_finds() {
        // Few kinds of bytes, so that digits cluster, cross blocks and meet capitals often.
        const ALPHABET: &[u8] = b"0123456789000111 - . ( ) / :,xGBDE\n\xc3\xa9";
        let mut random = crate::guards::dlp::xorshift(0x9e37_79b9_7f4a_7c15_u64);
        for case in 0..3000 {
            let len = (random() % 400) as usize;
            let digit_share = random() % 100;
            let text: Vec<u8> = (0..len)
                .map(|_| {
                    if random() % 100 < digit_share {
                        b'0' + (random() % 10) as u8
                    } else {
                        ALPHABET[(random() % ALPHABET.len() as u64) as usize]
                    }
                })
                .collect();
            let all = plain_runs(&text);
            for min in [None, Some(1), Some(2), Some(8), Some(13), Some(40)] {
                for countries in [false, true] {
                    let found: Vec<_> = DigitRuns::new(&text, min, countries)
                        .map(|r| (r.start, r.end, r.digits))
                        .collect();
                    let worth = |&&(start, _, digits): &&(usize, usize, usize)| {
                        min.is_some_and(|m| digits >= m)
                            || countries
                                && start >= 2
                                && text[start - 2..start].iter().all(u8::is_ascii_uppercase)
                    };
                    let want: Vec<_> = all.iter().filter(worth).collect();
                    let got: Vec<_> = found.iter().filter(worth).collect();
                    assert_eq!(got, want, "case {case}, {min:?}, {countries}");
                    assert!(found.iter().all(|r| all.contains(r)), "case {case}");
                }
            }
        }
    }

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
