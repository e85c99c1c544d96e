//! Gallery search for one face over 1k and 100k enrolled 512-d embeddings (one person each, the hardest case for
//! the codes: no grouping): exact scan vs sign codes then exact rescoring (`matcher`).

use std::time::Duration;

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use facewatch::embed::Embedding;
use facewatch::matcher::SearchView;

/// Deterministic unit vectors (xorshift): stand-ins for embeddings, which are unit vectors spread over the sphere.
fn vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut s = seed.max(1);
    (0..n)
        .map(|_| {
            let v: Vec<f32> = (0..dim)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    (s as f64 / u64::MAX as f64) as f32 - 0.5
                })
                .collect();
            Embedding::from_raw(v).expect("non-zero").as_slice().to_vec()
        })
        .collect()
}

fn search(c: &mut Criterion) {
    let mut group = c.benchmark_group("gallery_search");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(4));
    let queries: Vec<Embedding> = vectors(64, 512, 99).into_iter().map(|v| Embedding::from_raw(v).expect("non-zero")).collect();
    for n in [1_000usize, 100_000] {
        let data = vectors(n, 512, 7);
        let refs: Vec<&[f32]> = data.iter().map(Vec::as_slice).collect();
        let persons: Vec<String> = (0..n).map(|p| format!("p{p}")).collect();
        let exact = SearchView::new(persons.clone(), (0..n).collect(), &refs, usize::MAX);
        let started = std::time::Instant::now();
        let coded = SearchView::new(persons, (0..n).collect(), &refs, 0);
        eprintln!("codes over {n} x 512: {:.2} s", started.elapsed().as_secs_f64());
        let mut i = 0;
        group.bench_function(BenchmarkId::new("exact_top10", n), |b| {
            b.iter(|| {
                i = (i + 1) % queries.len();
                exact.search(&queries[i], 10)
            })
        });
        group.bench_function(BenchmarkId::new("codes_top10", n), |b| {
            b.iter(|| {
                i = (i + 1) % queries.len();
                coded.search(&queries[i], 10)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, search);
