//! Each recognizer's declared input layout (channel order, normalisation) is the one that separates people best:
//! measured on the sample photos against the same model fed the swapped channel order. Also prints each
//! recognizer's impostor statistics, which the manifest's thresholds and tracking levels come from.

use std::path::{Path, PathBuf};

use facewatch::embed::Embedding;
use facewatch::eval::{equal_error, kfold_accuracy, read_pairs, threshold_at_far, ScoredPair};

use crate::common::{config_with, engine_for, face, faces, root};

/// The recognizers whose layout is checked: every one the set-up installs. `sface` (fp32, internet only) is the
/// same network as `sface_int8` with the same declared layout, which `sface_shares_its_layout` checks.
const RECOGNIZERS: [&str; 3] = ["faceplugin", "w600k_mbf", "sface_int8"];

/// Photos of the sample people, each with its person, and faces of strangers from CompreFace's group photos
/// (`compreface_*`; the others show people of the sample set: Obama and Biden in `two_people_2.jpg`, `id00` in
/// `couple_2.jpg` and in the Oscars selfie `selfie-many-people.jpg`).
fn photos() -> (Vec<(PathBuf, String)>, Vec<PathBuf>) {
    let mut people = Vec::new();
    let mut dirs: Vec<PathBuf> =
        std::fs::read_dir(faces().join("people")).expect("people").filter_map(Result::ok).map(|e| e.path()).collect();
    dirs.sort();
    for d in dirs.into_iter().filter(|d| d.is_dir()) {
        let name = d.file_name().expect("name").to_string_lossy().to_string();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&d).expect("person").filter_map(Result::ok).map(|e| e.path()).collect();
        files.sort();
        people.extend(files.into_iter().map(|f| (f, name.clone())));
    }
    let mut groups: Vec<PathBuf> =
        std::fs::read_dir(faces().join("groups")).expect("groups").filter_map(Result::ok).map(|e| e.path()).collect();
    groups.retain(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("compreface_")));
    groups.sort();
    (people, groups)
}

/// The manifest with one recognizer's channel order swapped, written to `dir`.
fn swapped_manifest(dir: &Path, recognizer: &str) -> PathBuf {
    let text = std::fs::read_to_string(root().join("models/manifest.toml")).expect("manifest");
    let mut m: toml::Table = toml::from_str(&text).expect("manifest parses");
    let input = m["recognizer"][recognizer]["input"].as_table().expect("input table").clone();
    let color = input["color"].as_str().expect("color");
    let swapped = if color == "rgb" { "bgr" } else { "rgb" };
    let mut input = input;
    input.insert("color".into(), swapped.into());
    m.get_mut("recognizer")
        .and_then(|r| r.get_mut(recognizer))
        .and_then(|r| r.as_table_mut())
        .expect("entry")
        .insert("input".into(), input.into());
    let path = dir.join(format!("manifest-{recognizer}-{swapped}.toml"));
    std::fs::write(&path, toml::to_string(&m).expect("toml")).expect("write manifest");
    path
}

/// Genuine and impostor scores of `recognizer` under `manifest` on the sample photos, plus the deepface pairs.
struct Scores {
    pairs: Vec<ScoredPair>,
    deepface: Vec<ScoredPair>,
}

fn scores(recognizer: &str, manifest: &Path) -> Scores {
    let cfg = config_with(&[("models.recognizer", recognizer), ("models.manifest", manifest.to_str().expect("utf-8"))]);
    let mut engine = engine_for(&cfg);
    let (people, groups) = photos();
    let mut known: Vec<(Embedding, &str, &Path)> = Vec::new();
    for (p, name) in &people {
        let (f, _) = engine.largest_face(p).unwrap_or_else(|e| panic!("{e}"));
        known.push((f.embedding, name, p));
    }
    let mut strangers = Vec::new();
    for g in &groups {
        let frame = engine.load(g).unwrap_or_else(|e| panic!("{e}"));
        strangers.extend(engine.faces(&frame).unwrap_or_else(|e| panic!("{e}")).into_iter().map(|f| f.embedding));
    }
    let mut pairs = Vec::new();
    for (i, a) in known.iter().enumerate() {
        for b in &known[i + 1..] {
            pairs.push(ScoredPair { score: a.0.cosine(&b.0), same: a.1 == b.1 });
        }
        pairs.extend(strangers.iter().map(|s| ScoredPair { score: a.0.cosine(s), same: false }));
    }
    let list = read_pairs(&face("people/deepface_master.csv"), &faces().join("people")).expect("pairs");
    let of = |p: &Path| &known.iter().find(|k| k.2 == p).unwrap_or_else(|| panic!("{} not embedded", p.display())).0;
    let deepface = list.iter().map(|p| ScoredPair { score: of(&p.a).cosine(of(&p.b)), same: p.same }).collect();
    Scores { pairs, deepface }
}

/// Separation of genuine from impostor scores: d' = (mean genuine − mean impostor) / pooled standard deviation.
fn d_prime(pairs: &[ScoredPair]) -> f64 {
    let stats = |same: bool| {
        let v: Vec<f64> = pairs.iter().filter(|p| p.same == same).map(|p| f64::from(p.score)).collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        (mean, v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64)
    };
    let ((mg, vg), (mi, vi)) = (stats(true), stats(false));
    (mg - mi) / ((vg + vi) / 2.0).sqrt()
}

/// The impostor score at quantile `q` (0..1).
fn impostor_quantile(pairs: &[ScoredPair], q: f64) -> f32 {
    let mut v: Vec<f32> = pairs.iter().filter(|p| !p.same).map(|p| p.score).collect();
    v.sort_by(f32::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

#[test]
fn each_recognizer_separates_people_best_in_its_declared_channel_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let declared = root().join("models/manifest.toml");
    let mut worse = Vec::new();
    for r in RECOGNIZERS {
        let ok = scores(r, &declared);
        let sw = scores(r, &swapped_manifest(dir.path(), r));
        let (d_ok, d_sw) = (d_prime(&ok.pairs), d_prime(&sw.pairs));
        let (_, eer_ok) = equal_error(&ok.pairs);
        let (_, eer_sw) = equal_error(&sw.pairs);
        let genuine = ok.pairs.iter().filter(|p| p.same).count();
        eprintln!(
            "{r}: {} pairs ({genuine} genuine): declared d' {d_ok:.3} EER {:.4}; swapped d' {d_sw:.3} EER {:.4}",
            ok.pairs.len(),
            eer_ok,
            eer_sw
        );
        let (t3, tar3) = threshold_at_far(&ok.pairs, 1e-3).expect("impostors");
        let (kf, kf_sd, _) = kfold_accuracy(&ok.deepface, 10);
        eprintln!(
            "{r}: threshold at FAR 1e-3 {t3:.3} (TAR {tar3:.3}); impostor p99 {:.3}, p99.9 {:.3}, max {:.3}; deepface 10-fold {:.4} ± {:.4}",
            impostor_quantile(&ok.pairs, 0.99),
            impostor_quantile(&ok.pairs, 0.999),
            impostor_quantile(&ok.pairs, 1.0),
            kf,
            kf_sd
        );
        if d_ok <= d_sw {
            worse.push(format!("{r}: declared order d' {d_ok:.3} is not above the swapped order's {d_sw:.3}"));
        }
    }
    assert!(worse.is_empty(), "{worse:#?}");
}

#[test]
fn sface_shares_its_layout_with_its_int8_weights() {
    let text = std::fs::read_to_string(root().join("models/manifest.toml")).expect("manifest");
    let m: facewatch::model::Manifest = toml::from_str(&text).expect("manifest parses");
    let (a, b) = (&m.recognizer["sface"].input, &m.recognizer["sface_int8"].input);
    assert_eq!((a.color, a.mean, a.std, &a.name), (b.color, b.mean, b.std, &b.name));
}
