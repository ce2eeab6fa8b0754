//! Bit masks of kinds of bytes, 64 bytes at a time: bit `i` of a block's mask is set when
//! byte `i` of the block is of that kind. The gates that look at every byte of the text
//! (runs of digits, values after `:` and `=`) work on these with shifts and counts of
//! zeros, instead of looking at the bytes one by one.

pub(super) const BLOCK: usize = 64;

/// A kind of byte: these bytes, these ranges (inclusive, within `0x01..=0x7e`), and, if
/// `high`, every byte from `0x80` up, but none of `except`. No kind holds `0x00`, which
/// pads the last block.
pub(super) struct Kind {
    pub bytes: &'static [u8],
    pub ranges: &'static [(u8, u8)],
    pub high: bool,
    pub except: &'static [u8],
}

impl Kind {
    #[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
    pub fn contains(&self, b: u8) -> bool {
        (self.bytes.contains(&b)
            || self
                .ranges
                .iter()
                .any(|&(low, high)| (low..=high).contains(&b))
            || self.high && b >= 0x80)
            && !self.except.contains(&b)
    }
}

/// The masks of the 64-byte block `index` of `text`, one per kind. Inlined, so that the
/// loops over the kinds, which are constants, unroll into straight compares.
#[inline(always)]
pub(super) fn block<const N: usize>(text: &[u8], index: usize, kinds: &[Kind; N]) -> [u64; N] {
    let start = index * BLOCK;
    let mut padded = [0u8; BLOCK];
    let bytes = match text.get(start..start + BLOCK) {
        Some(bytes) => bytes,
        None => {
            let tail = text.get(start..).unwrap_or_default();
            padded[..tail.len()].copy_from_slice(tail);
            &padded
        }
    };
    let mut masks = [0; N];
    for (n, chunk) in bytes.chunks_exact(LANES).enumerate() {
        let lanes = lanes(chunk.try_into().expect("a chunk of lanes"), kinds);
        for (mask, lane) in masks.iter_mut().zip(lanes) {
            *mask |= lane << (n * LANES);
        }
    }
    masks
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
const LANES: usize = 16;

/// Sixteen bytes at once with SSE2, which every x86-64 has: one compare per byte of a
/// kind, two per range.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn lanes<const N: usize>(chunk: &[u8; LANES], kinds: &[Kind; N]) -> [u64; N] {
    use std::arch::x86_64::*;
    let word = |at: usize| {
        let half: [u8; 8] = chunk[at..at + 8].try_into().expect("eight bytes");
        i64::from_le_bytes(half)
    };
    // SAFETY (each `unsafe` below): the intrinsics need SSE2, which this build targets (the
    // `cfg` above); they only compute on values.
    let v = unsafe { _mm_set_epi64x(word(8), word(0)) };
    let mut masks = [0; N];
    for (mask, kind) in masks.iter_mut().zip(kinds) {
        let mut hits = unsafe { _mm_setzero_si128() };
        for &b in kind.bytes {
            hits = unsafe { _mm_or_si128(hits, _mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8))) };
        }
        // Signed compares: bytes from 0x80 up are negative, below every range.
        for &(low, high) in kind.ranges {
            let above = unsafe { _mm_cmpgt_epi8(v, _mm_set1_epi8(low as i8 - 1)) };
            let below = unsafe { _mm_cmplt_epi8(v, _mm_set1_epi8(high as i8 + 1)) };
            hits = unsafe { _mm_or_si128(hits, _mm_and_si128(above, below)) };
        }
        if kind.high {
            hits = unsafe { _mm_or_si128(hits, v) };
        }
        for &b in kind.except {
            hits = unsafe { _mm_andnot_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8)), hits) };
        }
        *mask = u64::from(unsafe { _mm_movemask_epi8(hits) } as u16);
    }
    masks
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
const LANES: usize = 8;

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
fn lanes<const N: usize>(chunk: &[u8; LANES], kinds: &[Kind; N]) -> [u64; N] {
    kinds.each_ref().map(|kind| {
        (chunk.iter().enumerate())
            .filter(|&(_, &b)| kind.contains(b))
            .fold(0, |mask, (i, _)| mask | 1 << i)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_is_of_its_kinds_anywhere_in_a_block() {
        const KINDS: [Kind; 3] = [
            Kind {
                bytes: b" -.()/",
                ranges: &[],
                high: false,
                except: &[],
            },
            Kind {
                bytes: b"_",
                ranges: &[(b'0', b'9'), (b'A', b'Z'), (0x01, 0x7e)],
                high: false,
                except: b"\"7Q~",
            },
            Kind {
                bytes: b"\"",
                ranges: &[(b'a', b'z')],
                high: true,
                except: &[],
            },
        ];
        for byte in 0..=255u8 {
            for at in [0, 1, 7, 8, 15, 16, 31, 40, 63] {
                let mut text = [b'\0'; 2 * BLOCK];
                text[BLOCK + at] = byte;
                let masks = block(&text, 1, &KINDS);
                for (kind, mask) in KINDS.iter().zip(masks) {
                    let want = if kind.contains(byte) { 1 << at } else { 0 };
                    assert_eq!(mask, want, "byte {byte:#x} at {at}");
                }
            }
        }
        // Past the end: nothing.
        assert_eq!(block(b"09", 0, &KINDS)[1], 0b11);
        assert_eq!(block(b"09", 1, &KINDS), [0; 3]);
    }
}
