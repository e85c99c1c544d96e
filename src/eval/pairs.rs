//! Pair lists: balanced same/different pairs drawn from a folder per person (seeded, reproducible), written and
//! read in LFW's `pairs.txt` format and as CSV.
//!
//! LFW format: an optional header (`10\t300`: sets and pairs per class per set), then `name\ti\tj` for a same
//! pair and `name1\ti\tname2\tj` for a different pair. Photo `i` (1-based) of a person is `name/name_%04d.jpg`
//! when that file exists (LFW's naming), else the i-th photo of the person's folder in name order.
//! CSV: `photo_a,photo_b,same` with paths relative to the folder (or bare file names, looked up anywhere in it)
//! and `same` one of yes/no, 1/0, true/false — deepface's `file_x,file_y,Decision` files read as they are.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::folders::{person_dirs, photos_in};

/// Errors reading or writing pair lists.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A folder of photos could not be listed.
    #[error(transparent)]
    Folder(#[from] crate::folders::FolderError),
    /// A file or folder could not be read or written.
    #[error("failed to access {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is not a pair.
    #[error("{path}:{line}: not a pair line: `{text}`")]
    Format {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
    /// A pair names a photo that is not there.
    #[error("{path}:{line}: photo `{name}` not found under {root}")]
    MissingPhoto {
        /// The pair file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The photo as written.
        name: String,
        /// Where it was looked for.
        root: PathBuf,
    },
    /// The folder cannot give the pairs asked for.
    #[error("{0}")]
    NotEnough(String),
    /// A line of a ground-truth file is malformed.
    #[error("{path}:{line}: {message}")]
    BadLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

impl crate::exit::Exit for EvalError {
    fn exit_code(&self) -> u8 {
        crate::exit::INPUT
    }
}

/// A labelled pair of photo paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledPair {
    /// First photo.
    pub a: PathBuf,
    /// Second photo.
    pub b: PathBuf,
    /// Same person?
    pub same: bool,
}

/// A pair by person name and 1-based photo index, as LFW writes them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct IndexedPair {
    a: (String, usize),
    b: (String, usize),
}

/// SplitMix64: a tiny, well-mixed, seedable generator, so a seed gives the same pairs on every machine.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0); the modulo bias is below 2⁻³² for any folder size.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Balanced pairs from `dir` (one sub-folder per person): `sets` blocks, each with `per_set` same and `per_set`
/// different pairs, drawn without repeats using `seed`. Returned in LFW order with photos as paths.
pub struct GeneratedPairs {
    /// Number of sets (folds).
    pub sets: usize,
    /// Same (and different) pairs per set.
    pub per_set: usize,
    /// The pairs, set by set: its same pairs, then its different pairs.
    pub pairs: Vec<LabelledPair>,
    indexed: Vec<(IndexedPair, bool)>,
}

/// Draws balanced pairs; an error when the folder has too few persons or photos for the count asked.
pub fn generate(dir: &Path, sets: usize, per_set: usize, seed: u64) -> Result<GeneratedPairs, EvalError> {
    let mut people: Vec<(String, Vec<PathBuf>)> = Vec::new();
    for d in person_dirs(dir)? {
        let photos = photos_in(&d)?;
        if !photos.is_empty() {
            people.push((crate::folders::person_name(&d), photos));
        }
    }
    let want = sets * per_set;
    let mut same: Vec<IndexedPair> = Vec::new();
    for (name, photos) in &people {
        for i in 1..=photos.len() {
            for j in i + 1..=photos.len() {
                same.push(IndexedPair { a: (name.clone(), i), b: (name.clone(), j) });
            }
        }
    }
    if same.len() < want {
        return Err(EvalError::NotEnough(format!("{} has {} possible same-person pairs, {want} asked", dir.display(), same.len())));
    }
    if people.len() < 2 {
        return Err(EvalError::NotEnough(format!("{} needs at least two persons for different pairs", dir.display())));
    }
    let mut rng = SplitMix64(seed);
    // Partial Fisher–Yates: the first `want` entries become a uniform sample.
    for i in 0..want {
        let j = i + rng.below(same.len() - i);
        same.swap(i, j);
    }
    same.truncate(want);
    let mut seen = HashSet::new();
    let mut different = Vec::with_capacity(want);
    let mut attempts = 0usize;
    while different.len() < want {
        attempts += 1;
        if attempts > want * 1000 + 10_000 {
            return Err(EvalError::NotEnough(format!("could not draw {want} distinct different-person pairs from {}", dir.display())));
        }
        let (pa, pb) = (rng.below(people.len()), rng.below(people.len()));
        if pa == pb {
            continue;
        }
        let a = (people[pa].0.clone(), rng.below(people[pa].1.len()) + 1);
        let b = (people[pb].0.clone(), rng.below(people[pb].1.len()) + 1);
        let key = if a <= b { (a.clone(), b.clone()) } else { (b.clone(), a.clone()) };
        if seen.insert(key) {
            different.push(IndexedPair { a, b });
        }
    }
    let photo = |(name, i): &(String, usize)| -> PathBuf {
        people.iter().find(|(n, _)| n == name).map(|(_, p)| p[i - 1].clone()).unwrap_or_default()
    };
    let mut indexed = Vec::with_capacity(2 * want);
    for s in 0..sets {
        indexed.extend(same[s * per_set..(s + 1) * per_set].iter().map(|p| (p.clone(), true)));
        indexed.extend(different[s * per_set..(s + 1) * per_set].iter().map(|p| (p.clone(), false)));
    }
    let pairs = indexed.iter().map(|(p, same)| LabelledPair { a: photo(&p.a), b: photo(&p.b), same: *same }).collect();
    Ok(GeneratedPairs { sets, per_set, pairs, indexed })
}

impl GeneratedPairs {
    /// The pairs in LFW `pairs.txt` format.
    pub fn to_lfw(&self) -> String {
        let mut out = format!("{}\t{}\n", self.sets, self.per_set);
        for (p, same) in &self.indexed {
            let _ = if *same {
                writeln!(out, "{}\t{}\t{}", p.a.0, p.a.1, p.b.1)
            } else {
                writeln!(out, "{}\t{}\t{}\t{}", p.a.0, p.a.1, p.b.0, p.b.1)
            };
        }
        out
    }

    /// The pairs as CSV, photo paths relative to `dir`.
    pub fn to_csv(&self, dir: &Path) -> String {
        let rel = |p: &Path| p.strip_prefix(dir).unwrap_or(p).display().to_string();
        let mut out = String::from("photo_a,photo_b,same\n");
        for p in &self.pairs {
            let _ = writeln!(out, "{},{},{}", rel(&p.a), rel(&p.b), if p.same { "yes" } else { "no" });
        }
        out
    }
}

fn parse_same(field: &str) -> Option<bool> {
    match field.trim().to_ascii_lowercase().as_str() {
        "yes" | "1" | "true" => Some(true),
        "no" | "0" | "false" => Some(false),
        _ => None,
    }
}

/// Reads a pair list in LFW or CSV format (told apart by commas) with photos under `dir`.
pub fn read_pairs(path: &Path, dir: &Path) -> Result<Vec<LabelledPair>, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|source| EvalError::Io { path: path.into(), source })?;
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or_default();
    if first.contains(',') {
        read_csv(&text, path, dir)
    } else {
        read_lfw(&text, path, dir)
    }
}

fn read_csv(text: &str, path: &Path, dir: &Path) -> Result<Vec<LabelledPair>, EvalError> {
    // Bare names are looked up in every person folder; paths are taken relative to `dir`.
    let mut by_name: HashMap<String, PathBuf> = HashMap::new();
    for d in person_dirs(dir)? {
        for f in photos_in(&d)? {
            if let Some(name) = f.file_name().and_then(|n| n.to_str()) {
                by_name.insert(name.to_string(), f.clone());
            }
        }
    }
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let same = match fields.as_slice() {
            [_, _, d] => parse_same(d),
            _ => None,
        };
        let Some(same) = same else {
            if i == 0 {
                continue; // header
            }
            return Err(EvalError::Format { path: path.into(), line: i + 1, text: line.into() });
        };
        let find = |name: &str| -> Result<PathBuf, EvalError> {
            let direct = dir.join(name);
            if name.contains('/') && direct.is_file() {
                return Ok(direct);
            }
            by_name.get(name).cloned().ok_or_else(|| EvalError::MissingPhoto {
                path: path.into(),
                line: i + 1,
                name: name.into(),
                root: dir.into(),
            })
        };
        out.push(LabelledPair { a: find(fields[0])?, b: find(fields[1])?, same });
    }
    Ok(out)
}

fn read_lfw(text: &str, path: &Path, dir: &Path) -> Result<Vec<LabelledPair>, EvalError> {
    let mut listed: HashMap<String, Vec<PathBuf>> = HashMap::new();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.is_empty() || (i == 0 && f.iter().all(|x| x.parse::<usize>().is_ok())) {
            continue;
        }
        let bad = || EvalError::Format { path: path.into(), line: i + 1, text: line.into() };
        let idx = |s: &str| s.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(bad);
        let (a, b, same) = match f.as_slice() {
            [n, x, y] => ((n.to_string(), idx(x)?), (n.to_string(), idx(y)?), true),
            [n1, x, n2, y] => ((n1.to_string(), idx(x)?), (n2.to_string(), idx(y)?), false),
            _ => return Err(bad()),
        };
        let mut resolve = |(name, n): (String, usize)| -> Result<PathBuf, EvalError> {
            let lfw = dir.join(&name).join(format!("{name}_{n:04}.jpg"));
            if lfw.is_file() {
                return Ok(lfw);
            }
            if !listed.contains_key(&name) {
                let photos = photos_in(&dir.join(&name)).unwrap_or_default();
                listed.insert(name.clone(), photos);
            }
            listed.get(&name).and_then(|p| p.get(n - 1)).cloned().ok_or_else(|| EvalError::MissingPhoto {
                path: path.into(),
                line: i + 1,
                name: format!("{name} #{n}"),
                root: dir.into(),
            })
        };
        out.push(LabelledPair { a: resolve(a)?, b: resolve(b)?, same });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (person, n) in [("ann", 4), ("bob", 3), ("cyd", 2)] {
            std::fs::create_dir_all(dir.path().join(person)).expect("dir");
            for i in 0..n {
                std::fs::write(dir.path().join(person).join(format!("p{i}.jpg")), b"x").expect("write");
            }
        }
        dir
    }

    #[test]
    fn generation_is_balanced_reproducible_and_round_trips_both_formats() {
        let dir = folder();
        let g = generate(dir.path(), 2, 3, 42).expect("pairs");
        assert_eq!(g.pairs.len(), 12);
        assert_eq!(g.pairs.iter().filter(|p| p.same).count(), 6);
        assert!(g.pairs.iter().all(|p| p.a != p.b));
        assert!(g.pairs.iter().all(|p| (p.a.parent() == p.b.parent()) == p.same));
        let again = generate(dir.path(), 2, 3, 42).expect("pairs");
        assert_eq!(g.pairs, again.pairs, "same seed, same pairs");
        assert_ne!(g.pairs, generate(dir.path(), 2, 3, 7).expect("pairs").pairs, "another seed, other pairs");

        let lfw = dir.path().join("pairs.txt");
        std::fs::write(&lfw, g.to_lfw()).expect("write");
        assert!(g.to_lfw().starts_with("2\t3\n"));
        assert_eq!(read_pairs(&lfw, dir.path()).expect("lfw"), g.pairs);
        let csv = dir.path().join("pairs.csv");
        std::fs::write(&csv, g.to_csv(dir.path())).expect("write");
        assert_eq!(read_pairs(&csv, dir.path()).expect("csv"), g.pairs);
    }

    #[test]
    fn too_few_photos_is_an_error_not_a_short_list() {
        let dir = folder();
        // 6 + 3 + 1 = 10 possible same pairs.
        assert!(matches!(generate(dir.path(), 1, 11, 1), Err(EvalError::NotEnough(_))));
    }

    #[test]
    fn deepface_style_csv_and_bad_lines() {
        let dir = folder();
        let csv = dir.path().join("d.csv");
        std::fs::write(&csv, "file_x,file_y,Decision\np0.jpg,p1.jpg,Yes\r\nbob/p2.jpg,cyd/p0.jpg,No \n").expect("write");
        let pairs = read_pairs(&csv, dir.path()).expect("pairs");
        assert_eq!(pairs.len(), 2);
        assert!(pairs[0].same && !pairs[1].same);
        assert!(pairs[1].a.ends_with("bob/p2.jpg"));
        std::fs::write(&csv, "h,h,h\np0.jpg,zz.jpg,Yes\n").expect("write");
        assert!(matches!(read_pairs(&csv, dir.path()), Err(EvalError::MissingPhoto { line: 2, .. })));
        std::fs::write(&csv, "h,h,h\np0.jpg,p1.jpg,Maybe\n").expect("write");
        assert!(matches!(read_pairs(&csv, dir.path()), Err(EvalError::Format { line: 2, .. })));
        let lfw = dir.path().join("l.txt");
        std::fs::write(&lfw, "ann\t1\t9\n").expect("write");
        assert!(matches!(read_pairs(&lfw, dir.path()), Err(EvalError::MissingPhoto { .. })));
    }
}
