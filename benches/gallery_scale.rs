//! The gallery at scale: `cargo bench --bench gallery_scale -- [--sizes 10000,100000,1000000] [--queries 200]
//! [--photos 5] [--start 100000] [--json FILE]` (`--sizes none`: only the start measurement).
//!
//! Synthetic but clustered like a real gallery: `n / 5` people, each a random unit direction in 512-d, and five
//! photos per person (`--photos`: another number; 1 is the codes' worst case, a group per photo) spread around
//! it (per-dimension Gaussian noise, σ = 0.0325, so two photos of one person have a cosine of about 0.65, as
//! w600k_mbf gives for genuine pairs, and two people about 0). Queries are new photos of enrolled people. For every size, through the daemon's own [`SearchView`]: the exact scan's and the sign codes'
//! (over groups of a person's photos, `matcher`) making time, which is what they add to the daemon's start, the
//! memory they add, search p50 / p99 for the top 10 persons, and the codes' recall@1 against the exact scan (the
//! same person first), at the default number of groups rescored and a sweep of it. `--start N`: the daemon's whole
//! start with a SQLite gallery of N embeddings (every embedding read, then the view made). The generator's statistics
//! are checked before anything is timed, so a broken generator fails the run.

use std::time::Instant;

use facewatch::base::face::dot;
use facewatch::matcher::SearchView;

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

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

struct Timed {
    build_s: f64,
    added_mib: f64,
    p50_ms: f64,
    p99_ms: f64,
    top1: Vec<String>,
}

/// Search times (top 10) and each query's first person, with the persons of `rescored` groups scored exactly.
fn searches(view: &SearchView, queries: &[Vec<f32>], rescored: usize) -> (f64, f64, Vec<String>) {
    let mut times = Vec::with_capacity(queries.len());
    let mut top1 = Vec::with_capacity(queries.len());
    for q in queries {
        let t = Instant::now();
        let found = view.search_with(q, 10, rescored);
        times.push(t.elapsed().as_secs_f64() * 1e3);
        top1.push(found.first().map_or(String::new(), |c| c.name.clone()));
    }
    times.sort_by(f64::total_cmp);
    (percentile(&times, 0.5), percentile(&times, 0.99), top1)
}

fn measure(queries: &[Vec<f32>], build: impl FnOnce() -> SearchView) -> (Timed, SearchView) {
    let before = rss_mib();
    let started = Instant::now();
    let view = build();
    let build_s = started.elapsed().as_secs_f64();
    let added_mib = rss_mib() - before;
    let (p50_ms, p99_ms, top1) = searches(&view, queries, facewatch::matcher::RESCORED);
    (Timed { build_s, added_mib, p50_ms, p99_ms, top1 }, view)
}

fn recall(found: &[String], exact: &[String]) -> f64 {
    found.iter().zip(exact).filter(|(a, b)| !a.is_empty() && a == b).count() as f64 / exact.len() as f64
}

fn main() {
    let mut sizes = vec![10_000usize, 100_000, 1_000_000];
    let mut queries_n = 200usize;
    let mut photos = PHOTOS;
    let mut json: Option<String> = None;
    let mut start_sizes: Vec<usize> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--sizes" => {
                sizes = args.next().expect("--sizes N,N").split(',').filter(|s| *s != "none").map(|s| s.parse().expect("a size")).collect()
            }
            "--photos" => photos = args.next().expect("--photos N").parse().expect("a number"),
            "--queries" => queries_n = args.next().expect("--queries N").parse().expect("a number"),
            "--json" => json = args.next(),
            "--start" => start_sizes = args.next().expect("--start N,N").split(',').map(|s| s.parse().expect("a size")).collect(),
            _ => {} // `cargo bench` passes --bench
        }
    }
    let mut rows = Vec::new();
    println!("| embeddings | search | made at start in | memory added | search p50 / p99 (top 10) | recall@1 vs exact (person) |");
    println!("|---|---|---|---|---|---|");
    for &n in &sizes {
        let mut rng = Rng(0x5eed ^ n as u64);
        let people = n.div_ceil(photos);
        let centres: Vec<Vec<f32>> = (0..people).map(|_| centre(&mut rng)).collect();
        let data: Vec<Vec<f32>> = (0..n).map(|i| photo(&mut rng, &centres[i / photos])).collect();
        let queries: Vec<Vec<f32>> = (0..queries_n)
            .map(|_| {
                let who = rng.next() as usize % people;
                photo(&mut rng, &centres[who])
            })
            .collect();
        // The generator must look like a gallery: genuine pairs about 0.65, impostors about 0.
        let sample = 100.min(people - 1);
        let genuine: f32 = (0..sample).map(|p| dot(&data[p * photos], &photo(&mut rng, &centres[p]))).sum::<f32>() / sample as f32;
        let impostor: f32 = (0..sample).map(|p| dot(&data[p * photos], &data[(p + 1) * photos])).sum::<f32>() / sample as f32;
        assert!((0.55..0.75).contains(&genuine) && impostor.abs() < 0.05, "generator off: genuine {genuine}, impostor {impostor}");
        let refs: Vec<&[f32]> = data.iter().map(Vec::as_slice).collect();
        let names: Vec<String> = (0..people).map(|p| format!("person {p:07}")).collect();
        let owners: Vec<usize> = (0..n).map(|i| i / photos).collect();
        let (exact, exact_view) = measure(&queries, || SearchView::new(names.clone(), owners.clone(), &refs, usize::MAX));
        drop(exact_view);
        let answered = exact.top1.iter().filter(|p| !p.is_empty()).count();
        assert_eq!(answered, queries_n, "the exact scan answered every query");
        println!(
            "| {n} | exact | {:.2} s | {:.0} MiB | {:.2} / {:.2} ms | 1 (is the reference) |",
            exact.build_s, exact.added_mib, exact.p50_ms, exact.p99_ms
        );
        let mut row = serde_json::json!({"n": n, "genuine_mean": genuine, "impostor_mean": impostor,
            "exact": {"build_s": exact.build_s, "added_mib": exact.added_mib, "p50_ms": exact.p50_ms, "p99_ms": exact.p99_ms}});
        // The daemon's way past exact_search_max: codes made at start (nothing kept), then rescored.
        let (coded, view) = measure(&queries, || SearchView::new(names.clone(), owners.clone(), &refs, 0));
        let groups = view.groups().unwrap_or(0);
        let person = recall(&coded.top1, &exact.top1);
        println!(
            "| {n} | codes of {groups} groups, {} rescored | {:.2} s | {:.0} MiB | {:.2} / {:.2} ms | {person:.3} |",
            facewatch::matcher::RESCORED,
            coded.build_s,
            coded.added_mib,
            coded.p50_ms,
            coded.p99_ms
        );
        row["codes"] = serde_json::json!({"start_s": coded.build_s, "added_mib": coded.added_mib, "p50_ms": coded.p50_ms,
            "p99_ms": coded.p99_ms, "recall1_person": person, "groups": groups});
        // How many groups are rescored: what each costs and finds.
        for rescored in [4usize, 8, 16, 64] {
            let (p50, p99, top1) = searches(&view, &queries, rescored);
            let person = recall(&top1, &exact.top1);
            println!("| {n} | codes, {rescored} groups rescored | | | {p50:.2} / {p99:.2} ms | {person:.3} |");
            row[format!("rescored_{rescored}")] = serde_json::json!({"p50_ms": p50, "p99_ms": p99, "recall1_person": person});
        }
        rows.push(row);
    }
    if !start_sizes.is_empty() {
        println!();
        println!("| embeddings | daemon start: gallery read + search view | first start | second start | gallery file | RSS after |");
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
/// and make its search view, twice (the second with the file in the page cache).
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
        let g = Gallery::open(&db, "bench", DIM, 50_000).expect("open");
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
    println!("| {n} | read {read2:.2} s + view | {first:.1} s (read {read1:.2} s) | **{later:.2} s** | {file_mib:.0} MiB | {rss:.0} MiB |");
    serde_json::json!({"start_n": n, "first_start_s": first, "later_start_s": later, "read_s": read2, "file_mib": file_mib, "rss_mib": rss})
}
