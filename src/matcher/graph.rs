//! The gallery's own HNSW graph (Malkov & Yashunin, "Efficient and robust approximate nearest neighbor search using
//! Hierarchical Navigable Small World graphs", 2018): the vectors in one contiguous array, each layer's links in
//! flat arrays of fixed stride, a visited list reused between searches, the vectorised [`dot`] as similarity. It
//! replaces `hnsw_rs` for large galleries: at 100k 512-d embeddings `hnsw_rs` took 113 s to build, 7 KiB per
//! embedding and 2.4 ms (p99) per search at recall@1 0.99 on 2 cores (BENCHMARKS.md, "The gallery at scale").
//!
//! Built in parallel (per-node locks while building, hnswlib's scheme), then frozen into flat arrays; kept on disk
//! as one file ([`Graph::save`], [`Graph::load`]: read straight into its arrays); grown by thawing, inserting and
//! freezing again ([`Graph::grow`]).

use std::collections::BinaryHeap;
use std::io::{Read, Write};

use parking_lot::{Mutex, RwLock};

use crate::base::face::dot;

/// Links per node on the upper layers (layer 0 keeps twice as many).
pub const M: usize = 16;
/// Search breadth while building.
pub const EF_CONSTRUCTION: usize = 100;
const M0: usize = 2 * M;
const MAGIC: &[u8; 8] = b"FWGRAPH1";

/// A candidate: similarity and node, ordered by similarity.
#[derive(Clone, Copy, PartialEq)]
struct Near(f32, u32);

impl Eq for Near {}
impl PartialOrd for Near {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Near {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

/// Marks of the nodes one search visited: an epoch per node, so that clearing is a counter increment.
struct Visited {
    marks: Vec<u32>,
    epoch: u32,
}

impl Visited {
    fn new(n: usize) -> Self {
        Self { marks: vec![0; n], epoch: 0 }
    }

    fn next(&mut self, n: usize) {
        if self.marks.len() < n {
            self.marks.resize(n, 0);
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.marks.iter_mut().for_each(|m| *m = 0);
            self.epoch = 1;
        }
    }

    /// Marks `i`; whether it was not marked yet.
    fn first(&mut self, i: u32) -> bool {
        let m = &mut self.marks[i as usize];
        let fresh = *m != self.epoch;
        *m = self.epoch;
        fresh
    }
}

/// How a search reads a node's links (the frozen graph, or the graph being built).
trait Links {
    fn vector(&self, i: u32) -> &[f32];
    fn neighbours(&self, i: u32, layer: usize, out: &mut Vec<u32>);
}

/// Greedy descent on one layer: the node closest to `q` reachable from `ep`.
fn greedy<L: Links>(g: &L, q: &[f32], mut ep: Near, layer: usize, buf: &mut Vec<u32>) -> Near {
    loop {
        let mut moved = false;
        g.neighbours(ep.1, layer, buf);
        for &n in buf.iter() {
            let s = dot(q, g.vector(n));
            if s > ep.0 {
                ep = Near(s, n);
                moved = true;
            }
        }
        if !moved {
            return ep;
        }
    }
}

/// The `ef` nodes closest to `q` on `layer` found from `entry`, best first.
fn search_layer<L: Links>(g: &L, q: &[f32], entry: Near, ef: usize, layer: usize, visited: &mut Visited, buf: &mut Vec<u32>) -> Vec<Near> {
    // candidates: best first (max-heap on similarity); found: worst first (min-heap through Reverse).
    let mut candidates = BinaryHeap::with_capacity(ef * 2);
    let mut found: BinaryHeap<std::cmp::Reverse<Near>> = BinaryHeap::with_capacity(ef + 1);
    visited.first(entry.1);
    candidates.push(entry);
    found.push(std::cmp::Reverse(entry));
    while let Some(c) = candidates.pop() {
        let worst = found.peek().map_or(f32::MIN, |w| w.0 .0);
        if c.0 < worst && found.len() >= ef {
            break;
        }
        g.neighbours(c.1, layer, buf);
        for &n in buf.iter() {
            if !visited.first(n) {
                continue;
            }
            let s = dot(q, g.vector(n));
            let worst = found.peek().map_or(f32::MIN, |w| w.0 .0);
            if found.len() < ef || s > worst {
                candidates.push(Near(s, n));
                found.push(std::cmp::Reverse(Near(s, n)));
                if found.len() > ef {
                    found.pop();
                }
            }
        }
    }
    let mut out: Vec<Near> = found.into_iter().map(|r| r.0).collect();
    out.sort_by(|a, b| b.cmp(a));
    out
}

/// The paper's neighbour selection heuristic: from `candidates` (best first), each kept only when it is closer to
/// the query than to every one kept before it; at most `m`.
fn select<L: Links>(g: &L, candidates: &[Near], m: usize, fill: bool) -> Vec<u32> {
    let mut kept: Vec<u32> = Vec::with_capacity(m);
    let mut pruned: Vec<u32> = Vec::new();
    for c in candidates {
        if kept.len() >= m {
            break;
        }
        let v = g.vector(c.1);
        if kept.iter().all(|&k| dot(v, g.vector(k)) < c.0) {
            kept.push(c.1);
        } else {
            pruned.push(c.1);
        }
    }
    // The places left go to the closest of those pruned (the paper's keepPrunedConnections): a full list keeps
    // nodes in dense regions reachable.
    let room = if fill { m.saturating_sub(kept.len()) } else { 0 };
    kept.extend(pruned.into_iter().take(room));
    kept
}

/// An HNSW graph over unit vectors, searched by cosine similarity.
pub struct Graph {
    dim: usize,
    vectors: Vec<f32>,
    levels: Vec<u8>,
    /// Layer 0: per node, a count then [`M0`] slots.
    layer0: Vec<u32>,
    /// Layers 1..: per node of level ≥ 1, for each of its layers a count then [`M`] slots.
    upper: Vec<Vec<u32>>,
    entry: u32,
    top: u8,
    visited: Mutex<Vec<Visited>>,
}

impl Links for Graph {
    fn vector(&self, i: u32) -> &[f32] {
        let at = i as usize * self.dim;
        &self.vectors[at..at + self.dim]
    }

    fn neighbours(&self, i: u32, layer: usize, out: &mut Vec<u32>) {
        out.clear();
        let slots = if layer == 0 {
            let at = i as usize * (M0 + 1);
            &self.layer0[at..at + M0 + 1]
        } else {
            let at = (layer - 1) * (M + 1);
            match self.upper[i as usize].get(at..at + M + 1) {
                Some(s) => s,
                None => return,
            }
        };
        out.extend_from_slice(&slots[1..1 + slots[0] as usize]);
    }
}

/// The graph while it is built: each node's links behind their own lock.
struct Building {
    dim: usize,
    vectors: Vec<f32>,
    levels: Vec<u8>,
    links: Vec<Vec<Mutex<Vec<u32>>>>,
    /// Entry point and top level.
    entry: RwLock<Option<(u32, u8)>>,
}

impl Links for Building {
    fn vector(&self, i: u32) -> &[f32] {
        let at = i as usize * self.dim;
        &self.vectors[at..at + self.dim]
    }

    fn neighbours(&self, i: u32, layer: usize, out: &mut Vec<u32>) {
        out.clear();
        if let Some(l) = self.links[i as usize].get(layer) {
            out.extend_from_slice(&l.lock());
        }
    }
}

impl Building {
    /// Links node `i` (its vector and level already in place) into the graph.
    fn insert(&self, i: u32, visited: &mut Visited, buf: &mut Vec<u32>) {
        let q = self.vector(i).to_vec();
        let level = self.levels[i as usize];
        let Some((entry, top)) = *self.entry.read() else {
            let mut e = self.entry.write();
            if e.is_none() {
                *e = Some((i, level));
                return;
            }
            drop(e);
            return self.insert(i, visited, buf);
        };
        let mut ep = Near(dot(&q, self.vector(entry)), entry);
        for layer in (level as usize + 1..=top as usize).rev() {
            ep = greedy(self, &q, ep, layer, buf);
        }
        for layer in (0..=(level.min(top) as usize)).rev() {
            visited.next(self.levels.len());
            let mut found = search_layer(self, &q, ep, EF_CONSTRUCTION, layer, visited, buf);
            // Another thread may already lead here (it met this node on its way): never a link to itself.
            found.retain(|f| f.1 != i);
            let m = if layer == 0 { M0 } else { M };
            let chosen = {
                let mut mine = self.links[i as usize][layer].lock();
                // Links other threads gave this node meanwhile are kept among the candidates.
                let mut all = found.clone();
                for &x in mine.iter().filter(|&&x| x != i && !found.iter().any(|f| f.1 == x)) {
                    all.push(Near(dot(&q, self.vector(x)), x));
                }
                all.sort_by(|a, b| b.cmp(a));
                let chosen = select(self, &all, m, true);
                mine.clone_from(&chosen);
                chosen
            };
            let mut linked = false;
            for &n in &chosen {
                let mut theirs = self.links[n as usize][layer].lock();
                if theirs.contains(&i) {
                    linked = true;
                    continue;
                }
                theirs.push(i);
                if theirs.len() > m {
                    // Too many: keep the best by the same heuristic, seen from that node.
                    let v = self.vector(n);
                    let mut near: Vec<Near> = theirs.iter().map(|&x| Near(dot(v, self.vector(x)), x)).collect();
                    near.sort_by(|a, b| b.cmp(a));
                    *theirs = select(self, &near, m, false);
                }
                linked |= theirs.contains(&i);
            }
            // Every neighbour pruned the new node away: the closest one keeps it in place of its farthest link, or
            // nothing would lead to it.
            if let (false, Some(&n)) = (linked, chosen.first()) {
                self.link_in_place_of_farthest(n, layer, i, m);
            }
            if let Some(best) = found.first() {
                ep = *best;
            }
        }
        if level > top {
            let mut e = self.entry.write();
            if e.is_some_and(|(_, t)| level > t) {
                *e = Some((i, level));
            }
        }
    }

    /// Links `n` to `to` on `layer`, in place of `n`'s farthest link when it already has `m`.
    fn link_in_place_of_farthest(&self, n: u32, layer: usize, to: u32, m: usize) {
        let mut theirs = self.links[n as usize][layer].lock();
        if theirs.contains(&to) {
            return;
        }
        if theirs.len() >= m {
            let v = self.vector(n);
            if let Some((worst, _)) =
                theirs.iter().enumerate().min_by(|a, b| dot(v, self.vector(*a.1)).total_cmp(&dot(v, self.vector(*b.1))))
            {
                theirs.swap_remove(worst);
            }
        }
        theirs.push(to);
    }

    /// Makes every node reachable on layer 0 from the entry point: a node (or a small group linking only each
    /// other) that every neighbour pruned away is linked from the closest reachable node, in place of that one's
    /// farthest link; passes again while a replaced link left another node alone.
    fn repair(&self) {
        let n = self.levels.len();
        let Some((entry, top)) = *self.entry.read() else { return };
        let (mut buf, mut visited) = (Vec::with_capacity(M0), Visited::new(n));
        for _ in 0..4 {
            let mut reached = vec![false; n];
            self.mark(entry, &mut reached, &mut buf);
            if reached.iter().all(|r| *r) {
                return;
            }
            for u in 0..n as u32 {
                if reached[u as usize] {
                    continue;
                }
                let q = self.vector(u);
                let mut ep = Near(dot(q, self.vector(entry)), entry);
                for layer in (1..=top as usize).rev() {
                    ep = greedy(self, q, ep, layer, &mut buf);
                }
                visited.next(n);
                let found = search_layer(self, q, ep, M0, 0, &mut visited, &mut buf);
                let Some(r) = found.iter().map(|f| f.1).find(|&f| f != u && reached[f as usize]) else { continue };
                self.link_in_place_of_farthest(r, 0, u, M0);
                self.mark(u, &mut reached, &mut buf);
            }
        }
    }

    /// Marks what layer 0 reaches from `from`.
    fn mark(&self, from: u32, reached: &mut [bool], buf: &mut Vec<u32>) {
        if reached[from as usize] {
            return;
        }
        reached[from as usize] = true;
        let mut stack = vec![from];
        while let Some(x) = stack.pop() {
            self.neighbours(x, 0, buf);
            for &y in buf.iter() {
                if !reached[y as usize] {
                    reached[y as usize] = true;
                    stack.push(y);
                }
            }
        }
    }

    fn freeze(self) -> Graph {
        self.repair();
        let n = self.levels.len();
        let mut layer0 = vec![0u32; n * (M0 + 1)];
        let mut upper = vec![Vec::new(); n];
        for (i, layers) in self.links.into_iter().enumerate() {
            for (layer, l) in layers.into_iter().enumerate() {
                let l = l.into_inner();
                if layer == 0 {
                    let at = i * (M0 + 1);
                    layer0[at] = l.len() as u32;
                    layer0[at + 1..at + 1 + l.len()].copy_from_slice(&l);
                } else {
                    let mut slots = vec![0u32; M + 1];
                    slots[0] = l.len() as u32;
                    slots[1..1 + l.len()].copy_from_slice(&l);
                    upper[i].extend_from_slice(&slots);
                }
            }
        }
        let (entry, top) = self.entry.into_inner().unwrap_or((0, 0));
        Graph { dim: self.dim, vectors: self.vectors, levels: self.levels, layer0, upper, entry, top, visited: Mutex::new(Vec::new()) }
    }
}

/// A node's level: ⌊−ln(U)·mL⌋ with mL = 1/ln(M), from a hash of its position (deterministic builds).
fn level_of(i: usize) -> u8 {
    let mut z = (i as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    let u = ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    ((-u.ln()) / (M as f64).ln()).floor().min(15.0) as u8
}

/// Inserts nodes `from..` of `b` on every core.
fn insert_all(b: &Building, from: usize) {
    let n = b.levels.len();
    let threads = std::thread::available_parallelism().map_or(1, |p| p.get()).min(n.saturating_sub(from).max(1));
    let next = std::sync::atomic::AtomicUsize::new(from);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let (mut visited, mut buf) = (Visited::new(n), Vec::with_capacity(M0));
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    b.insert(i as u32, &mut visited, &mut buf);
                }
            });
        }
    });
}

impl Graph {
    /// The graph of `vectors` (unit length, equal dimension), built on every core.
    pub fn build(vectors: &[&[f32]]) -> Self {
        let dim = vectors.first().map_or(0, |v| v.len());
        let levels: Vec<u8> = (0..vectors.len()).map(level_of).collect();
        let links = levels.iter().map(|&l| (0..=l).map(|_| Mutex::new(Vec::new())).collect()).collect();
        let b = Building { dim, vectors: vectors.concat(), levels, links, entry: RwLock::new(None) };
        insert_all(&b, 0);
        b.freeze()
    }

    /// This graph with `more` vectors added after its own (their positions follow).
    pub fn grow(self, more: &[&[f32]]) -> Self {
        let n = self.levels.len();
        let mut levels = self.levels;
        levels.extend((n..n + more.len()).map(level_of));
        let mut vectors = self.vectors;
        for v in more {
            vectors.extend_from_slice(v);
        }
        let mut links: Vec<Vec<Mutex<Vec<u32>>>> = Vec::with_capacity(levels.len());
        for (i, &l) in levels.iter().enumerate() {
            let mut layers = Vec::with_capacity(l as usize + 1);
            for layer in 0..=l as usize {
                let mut out = Vec::new();
                if i < n {
                    if layer == 0 {
                        let at = i * (M0 + 1);
                        out.extend_from_slice(&self.layer0[at + 1..at + 1 + self.layer0[at] as usize]);
                    } else {
                        let at = (layer - 1) * (M + 1);
                        let s = &self.upper[i][at..at + M + 1];
                        out.extend_from_slice(&s[1..1 + s[0] as usize]);
                    }
                }
                layers.push(Mutex::new(out));
            }
            links.push(layers);
        }
        let entry = (n > 0).then_some((self.entry, self.top));
        let b = Building { dim: self.dim, vectors, levels, links, entry: RwLock::new(entry) };
        insert_all(&b, n);
        b.freeze()
    }

    /// The vector of node `i`.
    pub fn vector_of(&self, i: u32) -> &[f32] {
        self.vector(i)
    }

    /// Nodes layer 0 does not reach from the entry point (none, once built).
    #[cfg(test)]
    fn unreachable(&self) -> usize {
        let mut reached = vec![false; self.len()];
        let (mut stack, mut buf) = (vec![self.entry], Vec::new());
        reached[self.entry as usize] = true;
        while let Some(x) = stack.pop() {
            self.neighbours(x, 0, &mut buf);
            for &y in &buf {
                if !std::mem::replace(&mut reached[y as usize], true) {
                    stack.push(y);
                }
            }
        }
        reached.iter().filter(|r| !**r).count()
    }

    /// Vector length.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Nodes.
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// Up to `k` nodes closest to `q` (similarity, node), best first; `ef` is the search breadth (at least `k`).
    pub fn search(&self, q: &[f32], k: usize, ef: usize) -> Vec<(f32, u32)> {
        if self.is_empty() || k == 0 {
            return Vec::new();
        }
        let mut visited = self.visited.lock().pop().unwrap_or_else(|| Visited::new(self.len()));
        visited.next(self.len());
        let mut buf = Vec::with_capacity(M0);
        let mut ep = Near(dot(q, self.vector(self.entry)), self.entry);
        for layer in (1..=self.top as usize).rev() {
            ep = greedy(self, q, ep, layer, &mut buf);
        }
        let found = search_layer(self, q, ep, ef.max(k), 0, &mut visited, &mut buf);
        self.visited.lock().push(visited);
        found.into_iter().take(k).map(|n| (n.0, n.1)).collect()
    }

    /// Writes the graph to `out`: a header, then the vectors, levels and links as they lie in memory
    /// (little-endian).
    pub fn save(&self, out: &mut impl Write) -> std::io::Result<()> {
        out.write_all(MAGIC)?;
        for v in [self.dim as u64, self.len() as u64, M as u64, self.entry as u64, self.top as u64] {
            out.write_all(&v.to_le_bytes())?;
        }
        out.write_all(as_bytes(&self.vectors))?;
        out.write_all(&self.levels)?;
        out.write_all(as_bytes(&self.layer0))?;
        for u in &self.upper {
            out.write_all(as_bytes(u))?;
        }
        Ok(())
    }

    /// Reads a graph [`Graph::save`] wrote of `n` vectors of `dim` values; `None` when it is not that (another
    /// format, other parameters, other sizes, links that do not hold together). Sizes are checked before anything
    /// is allocated: a damaged header never asks for more memory than the graph expected.
    pub fn load(input: &mut impl Read, n: usize, dim: usize) -> std::io::Result<Option<Self>> {
        let mut magic = [0u8; 8];
        input.read_exact(&mut magic)?;
        if &magic != MAGIC {
            return Ok(None);
        }
        let mut header = [0u64; 5];
        for h in &mut header {
            let mut b = [0u8; 8];
            input.read_exact(&mut b)?;
            *h = u64::from_le_bytes(b);
        }
        let [file_dim, file_n, m, entry, top] = header.map(|v| v as usize);
        if m != M || file_dim != dim || file_n != n || n > u32::MAX as usize || (n > 0 && entry >= n) || top > 15 {
            return Ok(None);
        }
        let mut vectors = vec![0f32; n * dim];
        input.read_exact(as_bytes_mut(&mut vectors))?;
        let mut levels = vec![0u8; n];
        input.read_exact(&mut levels)?;
        let mut layer0 = vec![0u32; n * (M0 + 1)];
        input.read_exact(as_bytes_mut(&mut layer0))?;
        let mut upper = vec![Vec::new(); n];
        for (u, &l) in upper.iter_mut().zip(&levels) {
            if l > 15 {
                return Ok(None);
            }
            *u = vec![0u32; l as usize * (M + 1)];
            input.read_exact(as_bytes_mut(u))?;
        }
        // A damaged file must not send a search or a later insertion out of bounds: every link to a node that
        // exists on that layer, the entry on the top layer.
        let ok0 = layer0.chunks_exact(M0 + 1).all(|s| s[0] as usize <= M0 && s[1..1 + s[0] as usize].iter().all(|&x| (x as usize) < n));
        let ok = upper.iter().all(|u| {
            u.chunks_exact(M + 1).enumerate().all(|(l, s)| {
                s[0] as usize <= M && s[1..1 + s[0] as usize].iter().all(|&x| (x as usize) < n && levels[x as usize] as usize > l)
            })
        });
        let entry_ok = n == 0 || levels[entry] as usize == top;
        if !ok0 || !ok || !entry_ok || cfg!(target_endian = "big") {
            return Ok(None);
        }
        Ok(Some(Self { dim, vectors, levels, layer0, upper, entry: entry as u32, top: top as u8, visited: Mutex::new(Vec::new()) }))
    }
}

/// The bytes of a slice of plain numbers.
fn as_bytes<T: Copy>(v: &[T]) -> &[u8] {
    // SAFETY: f32 and u32 (the only uses) have no padding and any initialised value is valid bytes; the length is
    // the slice's size in bytes.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
}

/// The bytes of a slice of plain numbers, to read into.
fn as_bytes_mut<T: Copy>(v: &mut [T]) -> &mut [u8] {
    // SAFETY: f32 and u32 (the only uses) accept every bit pattern, so any bytes read into them make valid
    // values; the length is the slice's size in bytes.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// `n` pseudo-random unit vectors of `dim` values (xorshift), the same for a seed.
    pub(in crate::matcher) fn vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut s = seed.max(1);
        (0..n)
            .map(|_| {
                let v: Vec<f32> = (0..dim)
                    .map(|_| {
                        s ^= s << 13;
                        s ^= s >> 7;
                        s ^= s << 17;
                        (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                    })
                    .collect();
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.into_iter().map(|x| x / n).collect()
            })
            .collect()
    }

    fn exact(all: &[Vec<f32>], q: &[f32]) -> u32 {
        (0..all.len()).max_by(|&a, &b| dot(q, &all[a]).total_cmp(&dot(q, &all[b]))).expect("some") as u32
    }

    #[test]
    fn finds_the_nearest_neighbour_as_an_exact_scan_does_and_survives_a_round_trip_and_growth() {
        let all = vectors(3000, 24, 11);
        let refs: Vec<&[f32]> = all.iter().map(Vec::as_slice).collect();
        let g = Graph::build(&refs[..2000]);
        let queries = vectors(200, 24, 99);
        let agree = |g: &Graph, upto: usize| {
            queries.iter().filter(|q| g.search(q, 1, 64)[0].1 == exact(&all[..upto], q)).count() as f64 / queries.len() as f64
        };
        let recall = agree(&g, 2000);
        assert!(recall >= 0.95, "recall@1 {recall}");
        assert_eq!(g.unreachable(), 0, "every node is reachable from the entry point");
        let lost = (0..2000).filter(|&i| g.search(refs[i], 1, 64)[0].1 as usize != i).count();
        assert!(lost <= 4, "{lost} of 2000 vectors of the graph did not find themselves");
        // Saved and loaded: the same answers.
        let mut bytes = Vec::new();
        g.save(&mut bytes).expect("save");
        let loaded = Graph::load(&mut bytes.as_slice(), 2000, 24).expect("read").expect("a graph");
        assert!(Graph::load(&mut bytes.as_slice(), 2001, 24).expect("read").is_none(), "another size is not this graph");
        for q in &queries {
            assert_eq!(g.search(q, 5, 48), loaded.search(q, 5, 48));
        }
        // A cut file is an error, another file is not a graph.
        assert!(Graph::load(&mut &bytes[..bytes.len() / 2], 2000, 24).is_err());
        assert!(Graph::load(&mut &b"not a graph at all, really not"[..], 2000, 24).expect("read").is_none());
        // A header claiming a huge graph is refused before any allocation.
        let mut huge = bytes.clone();
        huge[16..24].copy_from_slice(&(u32::MAX as u64).to_le_bytes());
        assert!(Graph::load(&mut huge.as_slice(), 2000, 24).expect("read").is_none());
        // Grown by 1000: the new ones are found, the old ones still are.
        let grown = loaded.grow(&refs[2000..]);
        assert_eq!(grown.len(), 3000);
        let recall = agree(&grown, 3000);
        assert!(recall >= 0.95, "recall@1 after growing {recall}");
        assert_eq!(grown.unreachable(), 0, "after growing too");
        let lost = (0..3000).filter(|&i| grown.search(refs[i], 1, 64)[0].1 as usize != i).count();
        assert!(lost <= 6, "{lost} of 3000 vectors did not find themselves after growing");
    }
}
