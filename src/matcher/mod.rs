//! Match: an embedding in, the enrolled people's top-k candidates out, from a [`SearchView`] of the gallery: an
//! exact scan up to `[matcher] exact_search_max` embeddings, beyond it a scan of sign codes ([`codes`]) over
//! groups of each person's photos. Each person scores their best photo; the caller decides `unknown` below the
//! threshold ([`crate::base::face::decide`]). A step of the track stage (and of the still-image jobs), not a
//! thread of its own; the daemon follows the gallery's changes with [`crate::gallery::LiveGallery`], which builds
//! each new view off the cameras' threads.
//!
//! A large gallery is searched in two passes. Each person's photos make groups of up to [`GROUP`] (a person with
//! up to 8 photos is one group), each group one 64-byte sign code of its photos' normalised mean: a new photo of
//! someone lies nearer that mean than any one of their photos (cosine 0.77 against 0.65 in the benchmark's
//! clusters), and a million embeddings of 200,000 people are 200,000 codes, 12.8 MB, scanned in well under a
//! millisecond. The persons of the nearest codes are then scored exactly, every photo of theirs, so a person's
//! score is what the exact scan gives. Nothing is built or kept between runs: the codes are made at start
//! (about 2 s per million embeddings). An HNSW graph did this before; on the same million it found the person for
//! 63 % of queries at p99 1.8 ms, after 173 s of building (BENCHMARKS.md, "The gallery at scale").

pub mod codes;
mod config;
pub mod strangers;

use crate::base::face::dot;
use crate::base::{Candidate, Embedding};
pub use config::MatcherConfig;

/// At most this many of a person's photos make one code of a large gallery.
pub const GROUP: usize = 8;

/// A group's photos are the most alike of this many of the person's photos not yet grouped.
const WINDOW: usize = 64;

/// Groups whose persons a large gallery's search scores exactly: at least this many, or twice the persons asked
/// for (recall@1 1.000 at a million embeddings with 16 or more: BENCHMARKS.md "The gallery at scale").
pub const RESCORED: usize = 32;

/// How `n` embeddings are searched: "exact" up to `exact_max`, "codes" beyond ([`SearchView::new`]'s rule).
pub fn kind_for(n: usize, exact_max: usize) -> &'static str {
    if n <= exact_max {
        "exact"
    } else {
        "codes"
    }
}

/// A read-only view of a gallery for searching: the names, whose each embedding is, and how they are searched
/// (exactly, or by sign codes of groups of photos beyond `matcher.exact_search_max`). Built once per change of the
/// gallery, off the cameras' threads, and shared by them.
pub struct SearchView {
    persons: Vec<String>,
    embeddings: usize,
    search: Search,
}

enum Search {
    /// Every embedding scanned: `data` row-major, `owners[i]` the person of row `i`.
    Exact { data: Vec<f32>, dim: usize, owners: Vec<usize> },
    /// The groups' sign codes scanned, then the found persons' photos scored exactly.
    Coded { codes: codes::Codes, groups: Groups },
}

/// A large gallery's photos by person, and the groups the codes stand for.
struct Groups {
    dim: usize,
    /// Every photo's vector, person by person: person `p`'s are rows `starts[p]..starts[p + 1]`.
    rows: Vec<f32>,
    starts: Vec<usize>,
    /// The person of each group (each code).
    group_person: Vec<usize>,
}

impl Groups {
    /// Adds person `p`, scored exactly on every photo of theirs, to `best` unless there already.
    fn score(&self, p: usize, query: &[f32], best: &mut Vec<(usize, f32)>) {
        if best.iter().all(|c| c.0 != p) {
            let rows = &self.rows[self.starts[p] * self.dim..self.starts[p + 1] * self.dim];
            best.push((p, rows.chunks_exact(self.dim).map(|v| dot(v, query)).fold(f32::MIN, f32::max)));
        }
    }
}

/// Groups `vectors` (owned by `owners`) by person, each person's photos into groups of up to [`GROUP`] (the first
/// photo left and the ones most like it among the next [`WINDOW`]), and codes each group's mean; on every core,
/// persons split between threads.
fn grouping(persons: usize, owners: &[usize], vectors: &[&[f32]]) -> (Groups, codes::Codes) {
    let dim = vectors.first().map_or(0, |v| v.len());
    // The photos person by person (a counting sort: no list per person, a million people cost no allocation each).
    let mut starts = vec![0usize; persons + 1];
    for &p in owners {
        starts[p + 1] += 1;
    }
    for p in 0..persons {
        starts[p + 1] += starts[p];
    }
    let at = starts[persons];
    let mut order = vec![0usize; at];
    let mut next = starts.clone();
    for (i, &p) in owners.iter().enumerate() {
        order[next[p]] = i;
        next[p] += 1;
    }
    let coder = codes::Coder::new(dim);
    let mut rows = vec![0f32; at * dim];
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(persons.max(1));
    // Persons split into runs of about equal photos; each thread fills its run's rows and codes its groups.
    let mut runs: Vec<(usize, usize)> = Vec::with_capacity(threads);
    let mut first = 0;
    for t in 1..=threads {
        let end = if t == threads { persons } else { starts.partition_point(|&s| s < at * t / threads).min(persons).max(first) };
        runs.push((first, end));
        first = end;
    }
    let mut parts: Vec<(Vec<usize>, Vec<u64>)> = Vec::with_capacity(threads);
    std::thread::scope(|scope| {
        let mut rest: &mut [f32] = &mut rows;
        let mut handles = Vec::with_capacity(threads);
        for &(from, to) in &runs {
            let (mine, after) = std::mem::take(&mut rest).split_at_mut((starts[to] - starts[from]) * dim);
            rest = after;
            let (order, starts, coder) = (&order, &starts, &coder);
            handles.push(scope.spawn(move || {
                let (mut group_person, mut bits, mut buf) = (Vec::new(), Vec::new(), coder.buffer());
                let mut centre = vec![0f32; dim];
                let mut row = 0;
                for p in from..to {
                    let photos = &order[starts[p]..starts[p + 1]];
                    for &i in photos {
                        mine[row * dim..(row + 1) * dim].copy_from_slice(vectors[i]);
                        row += 1;
                    }
                    // A group's code: the signs of its photos' sum.
                    let mut code = |members: &[usize]| {
                        centre.iter_mut().for_each(|c| *c = 0.0);
                        for &m in members {
                            centre.iter_mut().zip(vectors[m]).for_each(|(c, x)| *c += x);
                        }
                        group_person.push(p);
                        coder.push(&centre, &mut buf, &mut bits);
                    };
                    if photos.len() <= GROUP {
                        // One group: all of them.
                        if !photos.is_empty() {
                            code(photos);
                        }
                        continue;
                    }
                    let mut left = photos.to_vec();
                    while !left.is_empty() {
                        // Among the next photos only: a person with thousands (a merged stranger) costs linear time.
                        let seed = vectors[left[0]];
                        let mut by_likeness: Vec<(f32, usize)> = left.iter().take(WINDOW).map(|&i| (dot(seed, vectors[i]), i)).collect();
                        // The seed (dot 1 with itself) first, then the most alike.
                        by_likeness.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                        let members: Vec<usize> = by_likeness.iter().take(GROUP).map(|m| m.1).collect();
                        left.retain(|i| !members.contains(i));
                        code(&members);
                    }
                }
                (group_person, bits)
            }));
        }
        parts.extend(handles.into_iter().map(|h| h.join().expect("a grouping thread panicked")));
    });
    let group_person = parts.iter().flat_map(|p| p.0.iter().copied()).collect();
    let bits = parts.into_iter().flat_map(|p| p.1).collect();
    (Groups { dim, rows, starts, group_person }, codes::Codes::from_bits(coder, bits))
}

impl SearchView {
    /// A view of `persons` and their embeddings (`owners[i]`: the person of `vectors[i]`): scanned exactly up to
    /// `exact_search_max` embeddings, by sign codes of groups of photos beyond.
    pub fn new(persons: Vec<String>, owners: Vec<usize>, vectors: &[&[f32]], exact_search_max: usize) -> Self {
        let embeddings = vectors.len();
        if kind_for(embeddings, exact_search_max) == "exact" {
            let dim = vectors.first().map_or(0, |v| v.len());
            return Self { persons, embeddings, search: Search::Exact { data: vectors.concat(), dim, owners } };
        }
        let started = std::time::Instant::now();
        let (groups, codes) = grouping(persons.len(), &owners, vectors);
        tracing::info!(embeddings, groups = codes.len(), ms = started.elapsed().as_millis() as u64, "Gallery codes made.");
        Self { persons, embeddings, search: Search::Coded { codes, groups } }
    }

    /// The best `k` persons for `query`, best first; each person scores their best embedding.
    pub fn search(&self, query: &Embedding, k: usize) -> Vec<Candidate> {
        self.search_with(query.as_slice(), k, RESCORED)
    }

    /// [`SearchView::search`] with the persons of at least `rescored` groups scored exactly (a code scan; an
    /// exact scan ignores it).
    pub fn search_with(&self, query: &[f32], k: usize, rescored: usize) -> Vec<Candidate> {
        if k == 0 || self.embeddings == 0 {
            return Vec::new();
        }
        let mut best: Vec<(usize, f32)> = Vec::with_capacity(k * 2);
        match &self.search {
            Search::Exact { data, dim, owners } => {
                for (row, v) in data.chunks_exact(*dim).enumerate() {
                    let (p, score) = (owners[row], dot(v, query));
                    if let Some(c) = best.iter_mut().find(|c| c.0 == p) {
                        c.1 = c.1.max(score);
                    } else if best.len() < k {
                        best.push((p, score));
                    } else if let Some(worst) = best.iter_mut().min_by(|a, b| a.1.total_cmp(&b.1)).filter(|w| w.1 < score) {
                        // Full: a better person replaces the worst (who cannot come back above it: the worst only
                        // rises).
                        *worst = (p, score);
                    }
                }
            }
            Search::Coded { codes, groups } => {
                // Groups until twice the persons wanted are found (a person with many photos has many groups), or
                // every group was looked at.
                let mut wanted = (k * 2).max(rescored);
                loop {
                    best.clear();
                    for g in codes.nearest(query, wanted) {
                        groups.score(groups.group_person[g], query, &mut best);
                    }
                    if best.len() >= k * 2 || wanted >= codes.len() {
                        break;
                    }
                    wanted *= 4;
                }
            }
        }
        best.sort_by(|a, b| b.1.total_cmp(&a.1));
        best.truncate(k);
        best.into_iter().map(|(p, score)| Candidate { name: self.persons[p].clone(), score }).collect()
    }

    /// Embeddings searched.
    pub fn len(&self) -> usize {
        self.embeddings
    }

    /// Whether there is nothing to search.
    pub fn is_empty(&self) -> bool {
        self.embeddings == 0
    }

    /// Persons enrolled.
    pub fn persons(&self) -> usize {
        self.persons.len()
    }

    /// Groups of photos with a code each; `None` for an exact scan.
    pub fn groups(&self) -> Option<usize> {
        match &self.search {
            Search::Exact { .. } => None,
            Search::Coded { groups, .. } => Some(groups.group_person.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` pseudo-random unit vectors of `dim` values (xorshift), the same for a seed.
    pub(super) fn vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
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

    /// `people` persons of `photos` each, clustered like a gallery (cosine within a person about 0.65), in 64-d.
    fn gallery(people: usize, photos: usize, seed: u64) -> (Vec<String>, Vec<usize>, Vec<Vec<f32>>) {
        let centres = vectors(people, 64, seed);
        let noise = vectors(people * photos, 64, seed ^ 0xabc);
        let clustered = (0..people * photos)
            .map(|i| {
                let v: Vec<f32> = centres[i / photos].iter().zip(&noise[i]).map(|(c, n)| c + 0.7 * n).collect();
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.iter().map(|x| x / norm).collect()
            })
            .collect();
        ((0..people).map(|p| format!("p{p}")).collect(), (0..people * photos).map(|i| i / photos).collect(), clustered)
    }

    #[test]
    fn the_code_scan_names_whom_the_exact_scan_names_with_the_same_scores() {
        let (persons, owners, all) = gallery(600, 11, 3);
        let refs: Vec<&[f32]> = all.iter().map(Vec::as_slice).collect();
        let exact = SearchView::new(persons.clone(), owners.clone(), &refs, usize::MAX);
        let coded = SearchView::new(persons, owners, &refs, 100);
        // 11 photos a person: a group of 8 and one of 3.
        assert_eq!(coded.groups(), Some(1200));
        assert_eq!(exact.groups(), None);
        assert_eq!((coded.len(), coded.persons()), (6600, 600));
        // New photos of each person (other noise than their enrolled ones).
        let centres = vectors(600, 64, 3);
        let noise = vectors(600, 64, 77);
        for (c, n) in centres.iter().zip(&noise).step_by(5) {
            let q: Vec<f32> = c.iter().zip(n).map(|(c, n)| c + 0.7 * n).collect();
            let want = exact.search_with(&q, 3, 0);
            let got = coded.search_with(&q, 3, RESCORED);
            assert_eq!(got.len(), 3);
            assert_eq!(got[0].name, want[0].name);
            assert_eq!(got[0].score, want[0].score, "the found person is scored on every photo of theirs");
            assert!(got.windows(2).all(|w| w[0].score >= w[1].score), "best first");
        }
        assert!(coded.search_with(&centres[0], 0, RESCORED).is_empty());
        assert!(SearchView::new(Vec::new(), Vec::new(), &[], 0).search_with(&centres[0], 3, RESCORED).is_empty());
    }

    #[test]
    fn the_exact_scan_keeps_each_persons_best_photo_and_the_best_persons() {
        let v = vectors(6, 16, 5);
        let refs: Vec<&[f32]> = v.iter().map(Vec::as_slice).collect();
        let persons: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        // a: rows 0, 3; b: rows 1, 4; c: rows 2, 5.
        let view = SearchView::new(persons, vec![0, 1, 2, 0, 1, 2], &refs, 100);
        for (row, who) in [(0, "a"), (4, "b"), (5, "c")] {
            let got = view.search_with(refs[row], 2, 0);
            assert_eq!(got[0].name, who);
            assert!((got[0].score - 1.0).abs() < 1e-5);
            assert_eq!(got.len(), 2);
            assert_ne!(got[1].name, who);
        }
    }
}
