//! `evaluate --people DIR [--strangers DIR]`: the flags and the report of [`crate::jobs::identification`].

use std::path::Path;

use super::photos::engine;
use super::{emit, progress, shown, GlobalArgs, InputError, Outcome, EXIT_OK};
use crate::config::Config;
use crate::jobs::identification::{self, OpenSet};

fn print_open_set(s: &OpenSet, against: &str) {
    println!(
        "open set: {} stranger faces against {against}, {} accepted as someone ({:.2} %)",
        s.faces,
        s.false_accepts,
        100.0 * s.false_accept_rate
    );
    for a in &s.accepted {
        println!("  {} → {} ({:.3})", shown(&a.photo), a.matched, a.score);
    }
}

/// Runs identification (and the open set when `strangers` is given).
pub(super) fn evaluate(
    g: &GlobalArgs,
    cfg: &Config,
    people: &Path,
    holdout: usize,
    strangers: Option<&Path>,
    plots: Option<&Path>,
) -> Outcome<u8> {
    let mut engine = engine(cfg)?;
    let bar = progress(g, "embedding", 0);
    let mut on_progress = super::bar_progress(&bar);
    let out =
        identification::identification(&mut engine, cfg.matcher.exact_search_max, people, holdout, strangers, plots, &mut on_progress)?;
    bar.finish_and_clear();
    emit(g, &out, |o| {
        println!("{} held-out photos of {} persons ({} photos without exactly one face skipped)", o.probes, o.persons, o.skipped_photos);
        println!(
            "top-1 {:.1} %, top-5 {:.1} %, identified at threshold {:.3}: {:.1} %",
            100.0 * o.top1,
            100.0 * o.top5,
            o.threshold,
            100.0 * o.identified_at_threshold
        );
        for m in &o.misses {
            println!("  {} ({}) → {} ({:.3})", shown(&m.photo), m.person, m.predicted, m.score);
        }
        if let Some(s) = &o.open_set {
            print_open_set(s, "a gallery of the people above");
        }
    })?;
    Ok(EXIT_OK)
}

/// `evaluate --strangers DIR` alone: the open-set false-accept rate against the configured gallery.
pub(super) fn strangers_vs_gallery(g: &GlobalArgs, cfg: &Config, strangers: &Path) -> Outcome<u8> {
    let mut engine = engine(cfg)?;
    let gallery = super::photos::open_existing_gallery(cfg, engine.info().dim)?;
    if gallery.is_empty() {
        return Err(InputError(format!("the gallery {} is empty: enroll people first", gallery.path().display())).into());
    }
    let threshold = engine.info().threshold;
    let out = identification::open_set(&mut engine, &gallery, strangers, threshold)?;
    emit(g, &out, |s| print_open_set(s, &shown(gallery.path())))?;
    Ok(EXIT_OK)
}
