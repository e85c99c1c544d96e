//! Alignment and embedding of one face: the warp, facewatch's embedder vs the bare recognizer run.

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use facewatch::align::align_into;
use facewatch::detect::{Detector, OnnxDetector};
use facewatch::embed::{Embedder, OnnxEmbedder};
use opencv::core::Mat;

use crate::common::{bench_bare_model, config, frame_640x480, manifest, model_path, runtime};

fn align_and_embed(c: &mut Criterion) {
    let cfg = config();
    let manifest = manifest(&cfg);
    let rt = runtime(&cfg);
    let frame = frame_640x480();
    let dspec = manifest.detector("yunet").expect("yunet");
    let mut det = OnnxDetector::build(&rt, dspec, &model_path(&cfg, &dspec.file, &dspec.sha256), &cfg.detect).expect("detector");
    let face = det.detect(&frame.bgr).expect("detect").remove(0);

    let mut group = c.benchmark_group("align");
    group.throughput(Throughput::Elements(1));
    let mut crop = Mat::default();
    align_into(&frame.bgr, &face.landmarks, &mut crop).expect("align");
    group.bench_function("umeyama_warp_112", |b| b.iter(|| align_into(&frame.bgr, &face.landmarks, &mut crop).expect("align")));
    group.finish();

    let mut group = c.benchmark_group("embed");
    group.throughput(Throughput::Elements(1));
    {
        let name = "faceplugin";
        let spec = manifest.recognizer(name).expect("recognizer");
        let path = model_path(&cfg, &spec.file, &spec.sha256);
        let mut emb = OnnxEmbedder::build(&rt, spec, &path).expect("embedder");
        group.bench_function(BenchmarkId::new("facewatch_per_face", name), |b| b.iter(|| emb.embed(&crop).expect("embed")));
        // The same real face, laid out as the embedder lays it out: only the model runs in the loop.
        bench_bare_model(&mut group, &rt, &path, &spec.input, &crop, name);
    }
    group.finish();
}

criterion_group!(benches, align_and_embed);
