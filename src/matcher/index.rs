//! The search index over gallery embeddings: an exact scan for small galleries, an HNSW graph ([`Graph`], cosine
//! similarity on unit vectors) for large ones.
//!
//! A scan of a few thousand 512-d vectors takes well under a millisecond and is always right, so the graph is
//! only built past `exact_search_max` embeddings. Building it takes a while at a million embeddings, so it is
//! kept between runs ([`Index::cached`]): written into a private directory with the store ids of its points,
//! loaded at the next start, the embeddings enrolled since added to it (in parallel), the ones removed since
//! skipped in answers; built anew when more than a tenth of its points were removed or it would grow by half.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::graph::Graph;
use crate::base::face::dot;

/// A neighbour of a query: entry position and cosine similarity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbour {
    /// Position in the vectors the index was built from.
    pub id: usize,
    /// Cosine similarity.
    pub score: f32,
}

/// Search breadth: at least this, or the number of neighbours asked for (person recall@1 0.997 at 100k clustered
/// embeddings, p99 under 1 ms on 2 cores: BENCHMARKS.md "The gallery at scale").
pub const EF_SEARCH: usize = 96;

/// How `n` vectors are searched: "exact" up to `exact_max`, "hnsw" beyond ([`Index::build`]'s rule).
pub fn kind_for(n: usize, exact_max: usize) -> &'static str {
    if n <= exact_max {
        "exact"
    } else {
        "hnsw"
    }
}

/// Exact or approximate nearest-neighbour search.
#[derive(Default)]
pub enum Index {
    /// Nothing to search.
    #[default]
    Empty,
    /// Brute force over a copy of the vectors, row-major.
    Exact {
        /// Flattened vectors.
        data: Vec<f32>,
        /// Vector length.
        dim: usize,
    },
    /// Hierarchical navigable small world graph; its point `i` is the vector at `remap[i]` (`None`: removed
    /// since the graph was built).
    Hnsw {
        /// The graph.
        graph: Box<Graph>,
        /// Graph point → vector position.
        remap: Vec<Option<u32>>,
    },
}

/// How an index kept between runs was used ([`Index::cached`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    /// Loaded, with `added` new points and `removed` points skipped.
    Loaded {
        /// Embeddings enrolled since it was saved, added now.
        added: usize,
        /// Embeddings removed since, skipped.
        removed: usize,
    },
    /// Built now (none kept, or too much changed), and saved.
    Built,
    /// Built now; saving it failed (logged).
    Unsaved,
}

/// What points at the kept graph: its file (the graph, then the store ids of its points).
#[derive(Serialize, Deserialize)]
struct Kept {
    format: u32,
    file: String,
    dim: usize,
    points: usize,
}

const KEPT_FORMAT: u32 = 2;
const KEPT_FILE: &str = "index.json";

impl Index {
    /// Indexes `vectors` (unit length, equal dimension); HNSW when there are more than `exact_max`.
    pub fn build(vectors: &[&[f32]], exact_max: usize) -> Self {
        let Some(first) = vectors.first() else { return Self::Empty };
        if kind_for(vectors.len(), exact_max) == "exact" {
            return Self::Exact { data: vectors.concat(), dim: first.len() };
        }
        Self::hnsw(vectors)
    }

    fn hnsw(vectors: &[&[f32]]) -> Self {
        Self::Hnsw { graph: Box::new(Graph::build(vectors)), remap: (0..vectors.len() as u32).map(Some).collect() }
    }

    /// An HNSW index of `vectors` (store ids `ids`), kept in `dir` between runs: the one kept there is loaded
    /// and brought up to date when it still fits, otherwise one is built and kept.
    pub fn cached(ids: &[i64], vectors: &[&[f32]], dir: &Path) -> (Self, CacheUse) {
        let dim = vectors.first().map_or(0, |v| v.len());
        if let Some((graph, kept_ids)) = load(dir, dim) {
            // A kept point is the embedding with its id only when the vectors are the same too: a store may give a
            // removed embedding's id to a new one (SQLite does), and a gallery made anew starts its ids again.
            let position: HashMap<i64, u32> = ids.iter().enumerate().map(|(i, id)| (*id, i as u32)).collect();
            let mut remap: Vec<Option<u32>> = kept_ids
                .iter()
                .enumerate()
                .map(|(point, id)| position.get(id).copied().filter(|&p| graph.vector_of(point as u32) == vectors[p as usize]))
                .collect();
            let removed = remap.iter().filter(|p| p.is_none()).count();
            let known: HashSet<u32> = remap.iter().flatten().copied().collect();
            let new: Vec<usize> = (0..ids.len()).filter(|&i| !known.contains(&(i as u32))).collect();
            if removed * 10 <= kept_ids.len() && new.len() * 2 <= ids.len() {
                let graph = match new.is_empty() {
                    true => graph,
                    false => graph.grow(&new.iter().map(|&i| vectors[i]).collect::<Vec<_>>()),
                };
                remap.extend(new.iter().map(|&i| Some(i as u32)));
                let index = Self::Hnsw { graph: Box::new(graph), remap };
                // Saved again once it grew by a twentieth: a restart then adds little.
                if new.len() * 20 > ids.len() {
                    let all: Vec<i64> = kept_ids.iter().copied().chain(new.iter().map(|&i| ids[i])).collect();
                    if let Err(e) = index.save(dir, &all) {
                        tracing::warn!(dir = %dir.display(), error = %e, "Could not keep the gallery index.");
                    }
                }
                return (index, CacheUse::Loaded { added: new.len(), removed });
            }
        }
        let index = Self::hnsw(vectors);
        match index.save(dir, ids) {
            Ok(()) => (index, CacheUse::Built),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "Could not keep the gallery index; it is built again at the next start.");
                (index, CacheUse::Unsaved)
            }
        }
    }

    /// Writes the graph and `ids` into a new file in `dir` (0700, the file 0600), then points `index.json` at it
    /// (written aside and renamed: a reader sees the old index or the new one), then removes the old file.
    fn save(&self, dir: &Path, ids: &[i64]) -> std::io::Result<()> {
        let Self::Hnsw { graph, .. } = self else { return Ok(()) };
        let dir = crate::private::PrivateDir::create(dir)?;
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let file = format!("graph-{}-{stamp:x}.fwg", std::process::id());
        let path = dir.path().join(&file);
        let written = (|| {
            use std::os::unix::fs::OpenOptionsExt;
            let f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(&path)?;
            let mut out = std::io::BufWriter::with_capacity(1 << 20, f);
            graph.save(&mut out)?;
            for id in ids {
                out.write_all(&id.to_le_bytes())?;
            }
            out.into_inner().map_err(|e| e.into_error())?.sync_all()
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        let kept = Kept { format: KEPT_FORMAT, file, dim: graph.dim(), points: ids.len() };
        dir.write(KEPT_FILE, &serde_json::to_vec(&kept).map_err(std::io::Error::other)?)?;
        // The graph files index.json does not name are gone: the previous one, and any a crash or a concurrent
        // save left behind.
        for old in std::fs::read_dir(dir.path())?.flatten() {
            let name = old.file_name().to_string_lossy().into_owned();
            if name.starts_with("graph-") && name.ends_with(".fwg") && name != kept.file {
                let _ = std::fs::remove_file(old.path());
            }
        }
        Ok(())
    }

    /// Up to `k` nearest vectors to `query`, most similar first.
    pub fn search(&self, query: &[f32], k: usize) -> Vec<Neighbour> {
        self.search_ef(query, k, EF_SEARCH)
    }

    /// [`Index::search`] with HNSW's search breadth `ef` (at least `k`; an exact scan ignores it).
    pub fn search_ef(&self, query: &[f32], k: usize, ef: usize) -> Vec<Neighbour> {
        match self {
            Self::Empty => Vec::new(),
            Self::Exact { data, dim } => {
                let mut all: Vec<Neighbour> =
                    data.chunks_exact(*dim).enumerate().map(|(id, v)| Neighbour { id, score: dot(v, query) }).collect();
                let k = k.min(all.len());
                if k == 0 {
                    return Vec::new();
                }
                all.select_nth_unstable_by(k - 1, |a, b| b.score.total_cmp(&a.score));
                all.truncate(k);
                all.sort_by(|a, b| b.score.total_cmp(&a.score));
                all
            }
            Self::Hnsw { graph, remap } => graph
                .search(query, k, ef.max(k))
                .into_iter()
                .filter_map(|(score, point)| Some(Neighbour { id: (*remap.get(point as usize)?)? as usize, score }))
                .collect(),
        }
    }
}

/// The graph kept in `dir` and the store ids of its points, when there is one of `dim`-d vectors that loads.
fn load(dir: &Path, dim: usize) -> Option<(Graph, Vec<i64>)> {
    let kept: Kept = serde_json::from_slice(&std::fs::read(dir.join(KEPT_FILE)).ok()?).ok()?;
    if kept.format != KEPT_FORMAT || kept.dim != dim || !crate::private::plain_name(&kept.file) {
        return None;
    }
    let read = || -> std::io::Result<Option<(Graph, Vec<i64>)>> {
        let f = crate::private::open_beneath(dir, Path::new(&kept.file))?;
        let mut input = std::io::BufReader::with_capacity(1 << 20, f);
        let Some(graph) = Graph::load(&mut input, kept.points, dim)? else { return Ok(None) };
        let mut bytes = vec![0u8; kept.points * 8];
        input.read_exact(&mut bytes)?;
        let ids = bytes.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes"))).collect();
        Ok(Some((graph, ids)))
    };
    match read() {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "The kept gallery index does not load; building it again.");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The graph tests' unit vectors, 32 values each.
    fn vectors(n: usize, seed: u64) -> Vec<Vec<f32>> {
        crate::matcher::graph::tests::vectors(n, 32, seed)
    }

    fn top(index: &Index, q: &[f32]) -> usize {
        index.search(q, 1)[0].id
    }

    #[test]
    fn a_kept_index_is_loaded_grown_and_rebuilt_when_much_was_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kept = dir.path().join("index");
        let all = vectors(400, 7);
        let refs: Vec<&[f32]> = all.iter().map(Vec::as_slice).collect();
        let ids: Vec<i64> = (1..=400).collect();

        let (first, used) = Index::cached(&ids[..300], &refs[..300], &kept);
        assert_eq!(used, CacheUse::Built);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&kept).expect("dir").permissions().mode() & 0o777, 0o700);
        let (again, used) = Index::cached(&ids[..300], &refs[..300], &kept);
        assert_eq!(used, CacheUse::Loaded { added: 0, removed: 0 });
        for q in [0, 17, 299] {
            assert_eq!(top(&again, refs[q]), q);
            assert_eq!(top(&first, refs[q]), q);
        }

        // 100 enrolled since: added to the loaded graph, found at their new positions.
        let (grown, used) = Index::cached(&ids, &refs, &kept);
        assert_eq!(used, CacheUse::Loaded { added: 100, removed: 0 });
        for q in [5, 333, 399] {
            assert_eq!(top(&grown, refs[q]), q);
        }
        // It grew by more than a twentieth: kept again, so the next start adds nothing.
        assert_eq!(Index::cached(&ids, &refs, &kept).1, CacheUse::Loaded { added: 0, removed: 0 });

        // A few removed (positions shift): skipped, never answered; many removed: built anew.
        let (few_ids, few): (Vec<i64>, Vec<&[f32]>) = ids.iter().zip(&refs).filter(|(id, _)| **id % 50 != 0).map(|(i, v)| (*i, *v)).unzip();
        let (fewer, used) = Index::cached(&few_ids, &few, &kept);
        assert_eq!(used, CacheUse::Loaded { added: 0, removed: 8 });
        for (pos, v) in few.iter().enumerate().step_by(37) {
            assert_eq!(top(&fewer, v), pos, "removed points shift the others");
        }
        assert!(fewer.search(refs[49], 3).iter().all(|n| few_ids[n.id] != 50), "a removed embedding is never answered");
        let (_, used) = Index::cached(&ids[200..], &refs[200..], &kept);
        assert_eq!(used, CacheUse::Built);
        // A gallery made anew gives the same ids to other faces: they are not taken for the kept ones.
        let other = vectors(200, 99);
        let other_refs: Vec<&[f32]> = other.iter().map(Vec::as_slice).collect();
        let (fresh, used) = Index::cached(&ids[200..], &other_refs, &kept);
        assert_eq!(used, CacheUse::Built);
        assert_eq!(top(&fresh, other_refs[7]), 7);
        let files = std::fs::read_dir(&kept).expect("dir").count();
        assert_eq!(files, 2, "one graph file and its index.json; older ones removed");
    }
}
