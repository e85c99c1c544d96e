//! The gallery at scale: `cargo bench --bench gallery_scale -- [--sizes 10000,100000,1000000] [--hnsw-max 100000]
//! [--queries 200] [--start 100000] [--json FILE]` (`--sizes none`: only the start measurement).
//!
//! Synthetic but clustered like a real gallery: `n / 5` people, each a random unit direction in 512-d, and five
//! photos per person spread around it (per-dimension Gaussian noise, σ = 0.0325, so two photos of one person have
//! a cosine of about 0.65, as w600k_mbf gives for genuine pairs, and two people about 0). Queries are new photos of
//! enrolled people. For every size: the exact scan's and HNSW's (`matcher::index`, the daemon's own index) build
//! time, which is the daemon's start time today (the index is rebuilt at every start), the memory they add,
//! search p50 / p99 for the top 10, and HNSW's recall@1 against the exact scan (same photo; same person). The
//! generator's statistics are checked before anything is timed, so a broken generator fails the run.

use std::time::Instant;

use facewatch::base::face::dot;
use facewatch::matcher::index::Index;

const DIM: usize = 512;
const PHOTOS: usize = 5;
const SIGMA: f32 = 0.0325;

/// splitmix64: small, fast, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f32 {
        ((self.next() >> 40) as f32 + 0.5) / (1u64 << 24) as f32
    }
    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f32 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    }
}

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

fn centre(rng: &mut Rng) -> Vec<f32> {
    unit((0..DIM).map(|_| rng.normal()).collect())
}

fn photo(rng: &mut Rng, centre: &[f32]) -> Vec<f32> {
    unit(centre.iter().map(|c| c + SIGMA * rng.normal()).collect())
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()))
        .map_or(0.0, |kib| kib / 1024.0)
}

fn dir_mib(dir: &std::path::Path) -> f64 {
    std::fs::read_dir(dir).map_or(0.0, |d| d.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len() as f64).sum::<f64>() / 1048576.0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

struct Timed {
    build_s: f64,
    added_mib: f64,
    p50_ms: f64,
    p99_ms: f64,
    top1: Vec<usize>,
}

fn measure(queries: &[Vec<f32>], build: impl FnOnce() -> Index) -> Timed {
    let before = rss_mib();
    let started = Instant::now();
    let index = build();
    let build_s = started.elapsed().as_secs_f64();
    let added_mib = rss_mib() - before;
    let mut times = Vec::with_capacity(queries.len());
    let mut top1 = Vec::with_capacity(queries.len());
    for q in queries {
        let t = Instant::now();
        let found = index.search(q, 10);
        times.push(t.elapsed().as_secs_f64() * 1e3);
        top1.push(found.first().map_or(usize::MAX, |n| n.id));
    }
    times.sort_by(f64::total_cmp);
    Timed { build_s, added_mib, p50_ms: percentile(&times, 0.5), p99_ms: percentile(&times, 0.99), top1 }
}

fn main() {
    let mut sizes = vec![10_000usize, 100_000, 1_000_000];
    let mut hnsw_max = 100_000usize;
    let mut queries_n = 200usize;
    let mut json: Option<String> = None;
    let mut start_sizes: Vec<usize> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--sizes" => {
                sizes = args.next().expect("--sizes N,N").split(',').filter(|s| *s != "none").map(|s| s.parse().expect("a size")).collect()
            }
            "--hnsw-max" => hnsw_max = args.next().expect("--hnsw-max N").parse().expect("a number"),
            "--queries" => queries_n = args.next().expect("--queries N").parse().expect("a number"),
            "--json" => json = args.next(),
            "--start" => start_sizes = args.next().expect("--start N,N").split(',').map(|s| s.parse().expect("a size")).collect(),
            _ => {} // `cargo bench` passes --bench
        }
    }
    let mut rows = Vec::new();
    println!(
        "| embeddings | index | build (= start today) | memory added | search p50 / p99 (top 10) | recall@1 vs exact (photo / person) |"
    );
    println!("|---|---|---|---|---|---|");
    for &n in &sizes {
        let mut rng = Rng(0x5eed ^ n as u64);
        let people = n.div_ceil(PHOTOS);
        let centres: Vec<Vec<f32>> = (0..people).map(|_| centre(&mut rng)).collect();
        let data: Vec<Vec<f32>> = (0..n).map(|i| photo(&mut rng, &centres[i / PHOTOS])).collect();
        let queries: Vec<Vec<f32>> = (0..queries_n)
            .map(|_| {
                let who = rng.next() as usize % people;
                photo(&mut rng, &centres[who])
            })
            .collect();
        // The generator must look like a gallery: genuine pairs about 0.65, impostors about 0.
        let genuine: f32 = (0..100).map(|p| dot(&data[p * PHOTOS], &data[p * PHOTOS + 1])).sum::<f32>() / 100.0;
        let impostor: f32 = (0..100).map(|p| dot(&data[p * PHOTOS], &data[(p + 1) * PHOTOS])).sum::<f32>() / 100.0;
        assert!((0.55..0.75).contains(&genuine) && impostor.abs() < 0.05, "generator off: genuine {genuine}, impostor {impostor}");
        let refs: Vec<&[f32]> = data.iter().map(Vec::as_slice).collect();
        let exact = measure(&queries, || Index::build(&refs, usize::MAX));
        let person = |id: usize| id / PHOTOS;
        let answered = exact.top1.iter().filter(|id| **id != usize::MAX).count();
        assert_eq!(answered, queries_n, "the exact scan answered every query");
        println!(
            "| {n} | exact | {:.2} s | {:.0} MiB | {:.2} / {:.2} ms | 1 (is the reference) |",
            exact.build_s, exact.added_mib, exact.p50_ms, exact.p99_ms
        );
        let mut row = serde_json::json!({"n": n, "genuine_mean": genuine, "impostor_mean": impostor,
            "exact": {"build_s": exact.build_s, "added_mib": exact.added_mib, "p50_ms": exact.p50_ms, "p99_ms": exact.p99_ms}});
        if n <= hnsw_max {
            // The daemon's way: built and kept at the first start, loaded at every later one.
            let kept = tempfile::tempdir().expect("tempdir");
            let ids: Vec<i64> = (0..n as i64).collect();
            let first = measure(&queries, || Index::cached(&ids, &refs, kept.path()).0);
            let kept_mib = dir_mib(kept.path());
            let later = measure(&queries, || {
                let (index, used) = Index::cached(&ids, &refs, kept.path());
                assert_eq!(used, facewatch::matcher::index::CacheUse::Loaded { added: 0, removed: 0 }, "the kept index was not loaded");
                index
            });
            for (what, hnsw) in [("built and kept (first start)", &first), ("loaded (every later start)", &later)] {
                let same_photo = hnsw.top1.iter().zip(&exact.top1).filter(|(a, b)| a == b).count() as f64 / queries_n as f64;
                let same_person = hnsw.top1.iter().zip(&exact.top1).filter(|(a, b)| **a != usize::MAX && person(**a) == person(**b)).count()
                    as f64
                    / queries_n as f64;
                println!(
                    "| {n} | HNSW (M 16, ef_c 100, ef 96), {what} | {:.1} s | {:.0} MiB | {:.2} / {:.2} ms | {same_photo:.3} / {same_person:.3} |",
                    hnsw.build_s, hnsw.added_mib, hnsw.p50_ms, hnsw.p99_ms
                );
                let key = if std::ptr::eq(hnsw, &first) { "hnsw_first_start" } else { "hnsw_later_start" };
                row[key] = serde_json::json!({"start_s": hnsw.build_s, "added_mib": hnsw.added_mib, "p50_ms": hnsw.p50_ms,
                    "p99_ms": hnsw.p99_ms, "recall1_photo": same_photo, "recall1_person": same_person});
            }
            println!("|  | (the kept index on disk: {kept_mib:.0} MiB) | | | | |");
            // The search breadth: what each ef costs and finds, on the loaded index.
            let (index, _) = Index::cached(&ids, &refs, kept.path());
            for ef in [16usize, 24, 32, 48, 64, 96] {
                let mut times = Vec::with_capacity(queries.len());
                let mut top1 = Vec::with_capacity(queries.len());
                for q in &queries {
                    let t = Instant::now();
                    let found = index.search_ef(q, 10, ef);
                    times.push(t.elapsed().as_secs_f64() * 1e3);
                    top1.push(found.first().map_or(usize::MAX, |nb| nb.id));
                }
                times.sort_by(f64::total_cmp);
                let same_photo = top1.iter().zip(&exact.top1).filter(|(a, b)| a == b).count() as f64 / queries_n as f64;
                let same_person = top1.iter().zip(&exact.top1).filter(|(a, b)| **a != usize::MAX && person(**a) == person(**b)).count()
                    as f64
                    / queries_n as f64;
                println!(
                    "| {n} | HNSW loaded, ef {ef} | | | {:.2} / {:.2} ms | {same_photo:.3} / {same_person:.3} |",
                    percentile(&times, 0.5),
                    percentile(&times, 0.99)
                );
                row[format!("ef_{ef}")] = serde_json::json!({"p50_ms": percentile(&times, 0.5), "p99_ms": percentile(&times, 0.99),
                    "recall1_photo": same_photo, "recall1_person": same_person});
            }
            row["kept_mib"] = serde_json::json!(kept_mib);
        } else {
            println!("| {n} | HNSW | not built (over --hnsw-max {hnsw_max}) | | | |");
        }
        rows.push(row);
    }
    if !start_sizes.is_empty() {
        println!();
        println!("| embeddings | daemon start: gallery read + index | first start (built, kept) | later start (loaded) | gallery file | RSS after |");
        println!("|---|---|---|---|---|---|");
    }
    for &n in &start_sizes {
        rows.push(start(n));
    }
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_string_pretty(&rows).expect("JSON")).expect("write --json");
    }
}

/// The daemon's start with a SQLite gallery of `n` clustered embeddings: open the gallery (every embedding read)
/// and make its search view (the index built and kept the first time, loaded after).
fn start(n: usize) -> serde_json::Value {
    use facewatch::gallery::copy::{DumpPerson, DumpPhoto, GalleryDump};
    use facewatch::gallery::{Gallery, GalleryStore, SqliteStore};
    let mut rng = Rng(0x57a7 ^ n as u64);
    let people = n.div_ceil(PHOTOS);
    let mut dump = GalleryDump::default();
    for p in 0..people {
        let c = centre(&mut rng);
        let photos = (0..PHOTOS.min(n - p * PHOTOS))
            .map(|i| DumpPhoto {
                vector: photo(&mut rng, &c).iter().flat_map(|x| x.to_le_bytes()).collect(),
                source_path: format!("p{p}/{i}.jpg"),
                file_sha256: format!("{p}-{i}"),
                det_score: 0.9,
                created_at: 0,
                crop: None,
            })
            .collect();
        dump.persons.push(DumpPerson { name: format!("person {p:07}"), created_at: 0, photos });
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("gallery.db");
    SqliteStore::open(&db, "bench", DIM).expect("gallery").load(&dump).expect("load");
    drop(dump);
    let open = || {
        let t = Instant::now();
        let mut g = Gallery::open(&db, "bench", DIM, 50_000).expect("open");
        g.keep_index_in(dir.path().join("index"));
        let read_s = t.elapsed().as_secs_f64();
        let view = g.search_view();
        assert_eq!(view.len(), n);
        (read_s, t.elapsed().as_secs_f64(), g, view)
    };
    let (read1, first, g1, v1) = open();
    drop((g1, v1));
    let (read2, later, _g2, _v2) = open();
    let file_mib = std::fs::metadata(&db).map_or(0.0, |m| m.len() as f64 / 1048576.0);
    let rss = rss_mib();
    println!(
        "| {n} | read {read2:.2} s + index | {first:.1} s (read {read1:.2} s) | **{later:.2} s** | {file_mib:.0} MiB | {rss:.0} MiB |"
    );
    serde_json::json!({"start_n": n, "first_start_s": first, "later_start_s": later, "read_s": read2, "file_mib": file_mib, "rss_mib": rss})
}
