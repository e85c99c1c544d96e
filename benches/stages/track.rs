//! Tracking per frame: association and the embedding plan (embed stage), then identity votes and events (track
//! stage), for 1 and 8 faces moving across the frame. These run on every frame, beside 12 ms of detection.

use std::time::{Duration, SystemTime};

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use facewatch::base::Candidate;
use facewatch::detect::{BBox, Detection};
use facewatch::embed::Embedding;
use facewatch::track::identity::FrameInfo;
use facewatch::track::{Associator, Identities};

fn faces(n: usize, t: usize) -> Vec<Detection> {
    (0..n)
        .map(|i| {
            let (x, y) = (20.0 + i as f32 * 75.0 + t as f32 % 20.0, 40.0 + (t % 7) as f32);
            Detection {
                bbox: BBox { x, y, w: 60.0, h: 72.0 },
                landmarks: [[x + 18.0, y + 28.0], [x + 42.0, y + 28.0], [x + 30.0, y + 42.0], [x + 20.0, y + 56.0], [x + 40.0, y + 56.0]],
                score: 0.9,
            }
        })
        .collect()
}

fn embedding(i: usize) -> Embedding {
    let mut v = vec![0.01f32; 512];
    v[i % 512] = 1.0;
    Embedding::from_raw(v).expect("non-zero")
}

fn per_frame(c: &mut Criterion) {
    let cfg = facewatch::Config::default_embedded().expect("defaults");
    let mut group = c.benchmark_group("track_frame");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(3));
    for n in [1usize, 8] {
        let mut assoc = Associator::new(&cfg.track, facewatch::track::FaceThresholds { same_face_min: 0.25, reid_min: 0.5 });
        let mut ids = Identities::new("bench", 0.4, &cfg.track, Some(Duration::from_secs(1)));
        let mut t = 0usize;
        group.bench_function(BenchmarkId::new("associate_and_vote", n), |b| {
            b.iter(|| {
                t += 1;
                let now = SystemTime::UNIX_EPOCH + Duration::from_millis(33 * t as u64);
                let dets = faces(n, t);
                let plans = assoc.plan(&dets);
                let embs = plans.iter().enumerate().map(|(i, p)| p.embed.then(|| embedding(i))).collect();
                let (mut obs, ended) = assoc.commit(dets, &plans, embs, now);
                for o in &mut obs {
                    if o.embedding.is_some() {
                        o.candidates =
                            Some(vec![Candidate { name: "ann".into(), score: 0.6 }, Candidate { name: "bob".into(), score: 0.2 }]);
                    }
                }
                ids.update(FrameInfo { seq: t as u64, captured_at: now, scale: 1.0 }, &obs, &ended)
            });
        });
    }
    group.finish();
}

criterion_group!(benches, per_frame);
