//! Sign codes: each vector as one bit per dimension after a fixed random rotation (a randomised Hadamard
//! transform), compared by Hamming distance, which estimates the angle between the vectors (Charikar's SimHash:
//! a bit differs with probability θ/π). A 512-d embedding is 64 bytes; a million of them are scanned in a few
//! milliseconds and 200,000 in well under one, with no index to build or keep: the first, coarse pass of a large
//! gallery's search ([`super::SearchView`]), whose candidates are then scored exactly.

/// Makes sign codes: the rotation's signs, for vectors of one dimension. Codes are at least 64 bits; below 64
/// dimensions a vector is padded with zeros, and the Hadamard rows then repeat every `dim` bits (an 8-d code is 8
/// bits, each 8 times): distances come in steps and ties are many, which costs exact rescoring, never a wrong
/// answer. Recognizers give 128 or 512 dimensions.
#[derive(Clone)]
pub struct Coder {
    words: usize,
    /// The rotation's length: the vectors' dimension rounded up to a power of two.
    len: usize,
    signs: Vec<f32>,
}

impl Coder {
    /// A coder for `dim`-d vectors; the rotation is fixed, so the same vector always gets the same code.
    pub fn new(dim: usize) -> Self {
        let len = dim.max(1).next_power_of_two().max(64);
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        let signs = (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                if s >> 63 == 0 {
                    1.0
                } else {
                    -1.0
                }
            })
            .collect();
        Self { words: len / 64, len, signs }
    }

    /// A workspace for [`Coder::push`].
    pub fn buffer(&self) -> Vec<f32> {
        vec![0f32; self.len]
    }

    /// Appends the code of `v` to `out`, `buf` its workspace ([`Coder::buffer`]).
    pub fn push(&self, v: &[f32], buf: &mut [f32], out: &mut Vec<u64>) {
        buf.iter_mut().for_each(|b| *b = 0.0);
        for ((b, x), s) in buf.iter_mut().zip(v).zip(&self.signs) {
            *b = x * s;
        }
        hadamard(buf);
        let at = out.len();
        out.resize(at + self.words, 0);
        for (i, x) in buf.iter().enumerate() {
            if *x > 0.0 {
                out[at + i / 64] |= 1 << (i % 64);
            }
        }
    }
}

/// Words of the head of a code: the first pass of a large scan compares only these (a quarter of the memory
/// read at 512-d), the whole codes of the nearest heads are compared after.
const HEAD: usize = 2;

/// A set of sign codes, in one array, and their heads in another.
pub struct Codes {
    coder: Coder,
    bits: Vec<u64>,
    head: Vec<u64>,
}

impl Codes {
    /// The codes of `vectors` (equal dimension).
    pub fn new(vectors: &[&[f32]]) -> Self {
        let coder = Coder::new(vectors.first().map_or(1, |v| v.len()));
        let (mut buf, mut bits) = (coder.buffer(), Vec::with_capacity(vectors.len() * coder.words));
        for v in vectors {
            coder.push(v, &mut buf, &mut bits);
        }
        Self::from_bits(coder, bits)
    }

    /// Codes `coder` made, one after another in `bits`.
    pub fn from_bits(coder: Coder, bits: Vec<u64>) -> Self {
        let head = match coder.words > HEAD {
            true => bits.chunks_exact(coder.words).flat_map(|c| c[..HEAD].iter().copied()).collect(),
            false => Vec::new(),
        };
        Self { coder, bits, head }
    }

    /// Codes held.
    pub fn len(&self) -> usize {
        self.bits.len() / self.coder.words
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.bits.is_empty()
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bits.len() * 8
    }

    /// The positions of the `k` codes nearest to `query`'s (more when there are ties at the cut of a small set),
    /// nearest first.
    pub fn nearest(&self, query: &[f32], k: usize) -> Vec<usize> {
        let (mut buf, mut q) = (self.coder.buffer(), Vec::with_capacity(self.coder.words));
        self.coder.push(query, &mut buf, &mut q);
        // Many codes: the heads first, and the whole codes of the nearest heads (at least 32 per code wanted, and
        // 1024). A head of 128 bits keeps a new photo of someone among the nearest few of 200,000 people: in the
        // benchmark's clusters it differs from its person's code in 28 ± 5 bits, from another's in 64 ± 6.
        let wanted = (k * 32).max(1024);
        if self.head.is_empty() || self.len() <= wanted * 4 {
            return nearest_of(&distances(&self.bits, &q), k, self.coder.len).into_iter().map(|(_, i)| i).collect();
        }
        let at = nearest_heads(&self.head, [q[0], q[1]], wanted);
        let mut near: Vec<(u16, usize)> = distances_at(&self.bits, &q, &at).into_iter().zip(at).collect();
        near.sort_unstable();
        near.truncate(k);
        near.into_iter().map(|(_, i)| i).collect()
    }
}

/// The positions of the (at least) `k` heads nearest to `q`, in no order: one pass counts each distance (four
/// counts, summed after, so that an increment never waits on the last) and keeps it in a byte, a second takes the
/// positions at or under the distance where `k` are reached.
fn nearest_heads(head: &[u64], q: [u64; HEAD], k: usize) -> Vec<usize> {
    fn scan(head: &[u64], q: [u64; HEAD], d: &mut Vec<u8>, counts: &mut [[u32; 4]; HEAD * 64 + 1]) {
        for (j, c) in head.chunks_exact(HEAD).enumerate() {
            let x = ((c[0] ^ q[0]).count_ones() + (c[1] ^ q[1]).count_ones()) as usize;
            counts[x][j & 3] += 1;
            d.push(x as u8);
        }
    }
    let mut d = Vec::with_capacity(head.len() / HEAD);
    let mut counts = [[0u32; 4]; HEAD * 64 + 1];
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("popcnt") {
        #[target_feature(enable = "popcnt")]
        unsafe fn scan_popcnt(head: &[u64], q: [u64; HEAD], d: &mut Vec<u8>, counts: &mut [[u32; 4]; HEAD * 64 + 1]) {
            scan(head, q, d, counts)
        }
        // SAFETY: the CPU has POPCNT, checked just above.
        unsafe { scan_popcnt(head, q, &mut d, &mut counts) };
    }
    if d.is_empty() {
        scan(head, q, &mut d, &mut counts);
    }
    let cut = cut_at(&counts, k) as u8;
    d.iter().enumerate().filter(|(_, &x)| x <= cut).map(|(i, _)| i).collect()
}

/// The smallest distance at or under which at least `k` of the counted ones lie (`counts[d]`: four counts of
/// distance `d`); the largest distance when fewer than `k` were counted.
fn cut_at(counts: &[[u32; 4]], k: usize) -> usize {
    let mut seen = 0usize;
    for (d, c) in counts.iter().enumerate() {
        seen += c.iter().map(|&n| n as usize).sum::<usize>();
        if seen >= k {
            return d;
        }
    }
    counts.len().saturating_sub(1)
}

/// The (at least) `k` smallest of `distances` (each at most `len`) and their positions, nearest first; ties at the
/// cut all come. A counting pass finds the distance at which `k` are reached.
fn nearest_of(distances: &[u16], k: usize, len: usize) -> Vec<(u16, usize)> {
    // Four counts, summed after: most distances fall in a few values, and one count would wait on its own last
    // increment at every step.
    let mut counts = vec![[0u32; 4]; len + 1];
    let mut quads = distances.chunks_exact(4);
    for q in &mut quads {
        for (lane, &d) in q.iter().enumerate() {
            counts[d as usize][lane] += 1;
        }
    }
    for &d in quads.remainder() {
        counts[d as usize][0] += 1;
    }
    let cut = cut_at(&counts, k);
    let mut near: Vec<(u16, usize)> = distances.iter().enumerate().filter(|(_, &d)| d as usize <= cut).map(|(i, &d)| (d, i)).collect();
    near.sort_unstable();
    near
}

/// In-place fast Walsh-Hadamard transform (unnormalised; the signs are what counts).
fn hadamard(x: &mut [f32]) {
    let mut h = 1;
    while h < x.len() {
        for i in (0..x.len()).step_by(h * 2) {
            for j in i..i + h {
                let (a, b) = (x[j], x[j + h]);
                x[j] = a + b;
                x[j + h] = a - b;
            }
        }
        h *= 2;
    }
}

/// The Hamming distance of every code in `bits` to `q`.
fn distances(bits: &[u64], q: &[u64]) -> Vec<u16> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("popcnt") {
        // SAFETY: the CPU has POPCNT, checked just above.
        return unsafe { distances_popcnt(bits, q) };
    }
    distances_portable(bits, q)
}

/// The Hamming distance to `q` of the codes at positions `at` in `bits`.
fn distances_at(bits: &[u64], q: &[u64], at: &[usize]) -> Vec<u16> {
    let one = |i: usize| bits[i * q.len()..(i + 1) * q.len()].iter().zip(q).map(|(a, b)| (a ^ b).count_ones()).sum::<u32>() as u16;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("popcnt") {
        #[target_feature(enable = "popcnt")]
        unsafe fn with_popcnt(at: &[usize], one: impl Fn(usize) -> u16) -> Vec<u16> {
            at.iter().map(|&i| one(i)).collect()
        }
        // SAFETY: the CPU has POPCNT, checked just above.
        return unsafe { with_popcnt(at, one) };
    }
    at.iter().map(|&i| one(i)).collect()
}

fn distances_portable(bits: &[u64], q: &[u64]) -> Vec<u16> {
    bits.chunks_exact(q.len()).map(|c| c.iter().zip(q).map(|(a, b)| (a ^ b).count_ones()).sum::<u32>() as u16).collect()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn distances_popcnt(bits: &[u64], q: &[u64]) -> Vec<u16> {
    if let [q0, q1, q2, q3, q4, q5, q6, q7] = *q {
        // 512-bit codes, the usual embedding: unrolled.
        return bits
            .chunks_exact(8)
            .map(|c| {
                ((c[0] ^ q0).count_ones()
                    + (c[1] ^ q1).count_ones()
                    + (c[2] ^ q2).count_ones()
                    + (c[3] ^ q3).count_ones()
                    + (c[4] ^ q4).count_ones()
                    + (c[5] ^ q5).count_ones()
                    + (c[6] ^ q6).count_ones()
                    + (c[7] ^ q7).count_ones()) as u16
            })
            .collect();
    }
    distances_portable(bits, q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hamming_distance_follows_the_angle_and_the_nearest_come_first() {
        let v = crate::matcher::tests::vectors(2000, 512, 11);
        let refs: Vec<&[f32]> = v.iter().map(Vec::as_slice).collect();
        let codes = Codes::new(&refs);
        assert_eq!((codes.len(), codes.bytes()), (2000, 2000 * 64));
        // A vector is its own nearest code; a slightly moved copy finds it too.
        for i in [0, 7, 1999] {
            assert_eq!(codes.nearest(refs[i], 1)[0], i);
            let moved: Vec<f32> = refs[i].iter().zip(refs[(i + 1) % 2000]).map(|(a, b)| a + 0.3 * b).collect();
            assert_eq!(codes.nearest(&moved, 3)[0], i);
        }
        // Unrelated (about orthogonal) vectors differ in about half the bits; the portable count agrees.
        let (mut buf, mut a, mut b) = (codes.coder.buffer(), Vec::new(), Vec::new());
        codes.coder.push(refs[1], &mut buf, &mut a);
        codes.coder.push(refs[2], &mut buf, &mut b);
        let d = distances_portable(&a, &b)[0];
        assert!((200..312).contains(&d), "{d} bits differ");
        assert_eq!(distances(&codes.bits, &a), distances_portable(&codes.bits, &a));
        // At least k come back, all ties at the cut included.
        assert!(codes.nearest(refs[3], 10).len() >= 10);
        // Many codes: heads first, then whole codes; the same nearest as a whole scan.
        let many = crate::matcher::tests::vectors(12_000, 512, 12);
        let many_refs: Vec<&[f32]> = many.iter().map(Vec::as_slice).collect();
        let big = Codes::new(&many_refs);
        for i in [1usize, 5000, 11_999] {
            let moved: Vec<f32> = many_refs[i].iter().zip(many_refs[i - 1]).map(|(a, b)| a + 0.5 * b).collect();
            let got = big.nearest(&moved, 4);
            assert_eq!(got.len(), 4);
            assert_eq!(got[0], i);
            let mut buf = big.coder.buffer();
            let mut q = Vec::new();
            big.coder.push(&moved, &mut buf, &mut q);
            let whole: Vec<usize> = nearest_of(&distances(&big.bits, &q), 1, 512).into_iter().map(|(_, i)| i).collect();
            assert_eq!(whole[0], i);
        }
        // Dimensions that are not a power of two are padded.
        let odd: Vec<Vec<f32>> = v.iter().take(50).map(|x| x[..100].to_vec()).collect();
        let odd_refs: Vec<&[f32]> = odd.iter().map(Vec::as_slice).collect();
        let odd_codes = Codes::new(&odd_refs);
        assert_eq!(odd_codes.bytes(), 50 * 16);
        assert_eq!(odd_codes.nearest(odd_refs[9], 1)[0], 9);
    }
}
