//! Video evaluation: does the pipeline say the right name, on the right frames, on real footage?
//!
//! In: a ground-truth file for a clip (who is on screen over which frames, optionally where their face is) and
//! what the pipeline said on every frame ([`SaidFrame`]: each face's track, box and name). Out: a
//! [`VideoReport`] per truth row and overall — the share of frames on which the person on screen is named (after
//! a grace period), **wrong-name frames** (a known name on someone else: the costliest error), the unknown share,
//! the time to the first correct name and identity changes per track — and [`diff`] between two reports, which
//! shows which segments a change of models or tracking made better or worse.
//!
//! Truth format (CSV, `#` comments, one header line):
//! ```text
//! first,last,name,x,y,w,h
//! 0,19,lin-manuel-miranda,,,,
//! 211,274,obama,402,60,70,90
//! 211,274,,,,,
//! ```
//! `first`/`last` are inclusive frame numbers; an empty name means only strangers (or nobody) are on screen; the
//! optional box (frame pixels) says where that person's face is, so the name must be on the face inside it.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::EvalError;
pub use crate::base::{SaidFace, SaidFrame};

/// One row of the truth: a person on screen over a frame range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthRow {
    /// First frame, inclusive.
    pub first: u64,
    /// Last frame, inclusive.
    pub last: u64,
    /// The person, as enrolled; `None`: only strangers.
    pub name: Option<String>,
    /// Where the face is, `[x, y, w, h]` in frame pixels, when annotated.
    pub bbox: Option<[f32; 4]>,
}

impl TruthRow {
    fn covers(&self, seq: u64) -> bool {
        (self.first..=self.last).contains(&seq)
    }

    /// Whether a face box lies in this row's box (its centre inside); true when the row has no box.
    fn holds(&self, face: &[f32; 4]) -> bool {
        self.bbox.is_none_or(|b| {
            let (cx, cy) = (face[0] + face[2] / 2.0, face[1] + face[3] / 2.0);
            cx >= b[0] && cx <= b[0] + b[2] && cy >= b[1] && cy <= b[1] + b[3]
        })
    }
}

/// Reads a truth CSV (see the module docs).
pub fn read_truth(path: &Path) -> Result<Vec<TruthRow>, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|source| EvalError::Io { path: path.into(), source })?;
    parse_truth(&text).map_err(|m| EvalError::BadLine { path: path.into(), line: m.0, message: m.1 })
}

/// Parses truth CSV text; errors carry the 1-based line number.
pub fn parse_truth(text: &str) -> Result<Vec<TruthRow>, (usize, String)> {
    let mut rows = Vec::new();
    let mut header = false;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !header {
            header = true;
            if line.replace(' ', "") != "first,last,name,x,y,w,h" && line.replace(' ', "") != "first,last,name" {
                return Err((i + 1, format!("expected the header `first,last,name,x,y,w,h`, found `{line}`")));
            }
            continue;
        }
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if f.len() != 3 && f.len() != 7 {
            return Err((i + 1, format!("expected 3 or 7 fields, found {}", f.len())));
        }
        let num = |s: &str, what: &str| s.parse::<u64>().map_err(|_| (i + 1, format!("{what} `{s}` is not a frame number")));
        let (first, last) = (num(f[0], "first")?, num(f[1], "last")?);
        if last < first {
            return Err((i + 1, format!("last frame {last} is before first frame {first}")));
        }
        let bbox = if f.len() == 7 && f[3..].iter().any(|s| !s.is_empty()) {
            let mut b = [0f32; 4];
            for (k, s) in f[3..].iter().enumerate() {
                b[k] = s
                    .parse::<f32>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .ok_or_else(|| (i + 1, format!("box value `{s}` is not a number")))?;
            }
            if b[2] <= 0.0 || b[3] <= 0.0 {
                return Err((i + 1, "box width and height must be positive".into()));
            }
            Some(b)
        } else {
            None
        };
        let name = (!f[2].is_empty()).then(|| f[2].to_string());
        rows.push(TruthRow { first, last, name, bbox });
    }
    if rows.is_empty() {
        return Err((text.lines().count().max(1), "no truth rows".into()));
    }
    Ok(rows)
}

/// The scores of one appearance: a truth row, or consecutive rows of one person (see `appearances`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentReport {
    /// First frame.
    pub first: u64,
    /// Last frame.
    pub last: u64,
    /// The person (empty: strangers only).
    pub name: String,
    /// Frames in the row.
    pub frames: u64,
    /// Frames that count for `named_share`: after the grace period and, with a box, with a face detected in it.
    pub scored_frames: u64,
    /// Scored frames on which the person was named (on the face in the box, when there is one).
    pub named_frames: u64,
    /// `named_frames / scored_frames`; `None` for stranger rows or when nothing was scored.
    pub named_share: Option<f64>,
    /// Frames of the row with a known name on someone else.
    pub wrong_name_frames: u64,
    /// Share of the faces considered (in the box, or all) that were called unknown.
    pub unknown_share: Option<f64>,
    /// Seconds from the row's first frame to the first correct name; `None`: never named.
    pub first_named_s: Option<f64>,
    /// Tracks seen in the row (in the box, when there is one).
    pub tracks: usize,
    /// Name changes of those tracks within the row.
    pub identity_changes: usize,
}

/// Totals over the whole clip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overall {
    /// Named frames over scored frames, pooled over the rows of known people.
    pub named_share: Option<f64>,
    /// Frames with a known name on someone else.
    pub wrong_name_frames: u64,
    /// Faces called unknown over all faces with a name.
    pub unknown_share: Option<f64>,
    /// Tracks in the run.
    pub tracks: usize,
    /// Name changes over all tracks.
    pub identity_changes: usize,
    /// `identity_changes / tracks`.
    pub changes_per_track: f64,
}

/// The evaluation of one run over one clip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoReport {
    /// Schema version of this report.
    pub v: u32,
    /// The clip.
    pub video: String,
    /// The truth file.
    pub truth: String,
    /// Detector and recognizer (manifest names) and the threshold in force.
    pub models: String,
    /// Frames the pipeline reported.
    pub frames: u64,
    /// The clip's frame rate.
    pub fps: f64,
    /// Seconds after a row starts before its frames count.
    pub grace_s: f64,
    /// Per appearance (truth rows of one person that follow each other are one), in file order.
    pub segments: Vec<SegmentReport>,
    /// Totals.
    pub overall: Overall,
}

/// Faces with a name, how many were unknown, and the names each track went through.
#[derive(Default)]
struct Tally<'a> {
    faces: u64,
    unknown: u64,
    names: BTreeMap<u64, Vec<&'a str>>,
}

impl<'a> Tally<'a> {
    fn add(&mut self, s: &'a SaidFace) {
        let Some(n) = &s.name else { return };
        self.faces += 1;
        self.unknown += u64::from(!s.known);
        let v = self.names.entry(s.track).or_default();
        if v.last() != Some(&n.as_str()) {
            v.push(n);
        }
    }

    fn unknown_share(&self) -> Option<f64> {
        (self.faces > 0).then(|| self.unknown as f64 / self.faces as f64)
    }

    /// Name changes summed over tracks.
    fn changes(&self) -> usize {
        self.names.values().map(|v| v.len().saturating_sub(1)).sum()
    }
}

/// Whether `face` carries `person`'s name.
fn names(face: &SaidFace, person: &str) -> bool {
    face.known && face.name.as_deref() == Some(person)
}

/// Whether a known name is on someone else on this frame: a name no truth row of the frame gives, or a row's
/// name on a face outside that row's box.
pub fn wrong_name(truth: &[TruthRow], frame: &SaidFrame) -> bool {
    frame.faces.iter().filter(|s| s.known).any(|s| !truth.iter().any(|r| r.covers(frame.seq) && r.name == s.name && r.holds(&s.bbox)))
}

/// Whether `row`'s person is named on this frame, on the face in the row's box when it has one.
pub fn named(row: &TruthRow, frame: &SaidFrame) -> bool {
    row.name.as_deref().is_some_and(|p| frame.faces.iter().any(|s| row.holds(&s.bbox) && names(s, p)))
}

/// The truth's appearances: runs of rows of one name whose frame ranges follow each other and whose boxes overlap
/// (a person annotated with a box per stretch of one shot; across a cut the boxes jump), in file order. The grace
/// period and the time to the first name count from the start of an appearance, not of each of its rows.
fn appearances(truth: &[TruthRow]) -> Vec<Vec<&TruthRow>> {
    let bbox = |b: [f32; 4]| crate::base::BBox { x: b[0], y: b[1], w: b[2], h: b[3] };
    let overlap = |a: Option<[f32; 4]>, b: Option<[f32; 4]>| a.zip(b).is_some_and(|(a, b)| bbox(a).iou(&bbox(b)) > 0.0);
    let mut out: Vec<Vec<&TruthRow>> = Vec::new();
    for row in truth {
        let follows = |l: &&TruthRow| l.name == row.name && l.last + 1 == row.first && overlap(l.bbox, row.bbox);
        match out.iter_mut().find(|a| a.last().is_some_and(follows)) {
            Some(a) => a.push(row),
            None => out.push(vec![row]),
        }
    }
    out
}

/// Scores what was said against the truth. `fps` converts frames to seconds; the first `grace_s` seconds of each
/// row do not count for the named share (a recogniser needs a face or two to decide).
pub fn score(truth: &[TruthRow], said: &[SaidFrame], fps: f64, grace_s: f64) -> (Vec<SegmentReport>, Overall) {
    let fps = if fps > 0.0 { fps } else { 25.0 };
    let grace = (grace_s * fps).ceil() as u64;
    let by_seq: HashMap<u64, &SaidFrame> = said.iter().map(|f| (f.seq, f)).collect();
    let frame_wrong = |seq: u64| by_seq.get(&seq).is_some_and(|f| wrong_name(truth, f));
    let segments = appearances(truth)
        .into_iter()
        .map(|rows| {
            let (first, last) = (rows[0].first, rows[rows.len() - 1].last);
            let person = &rows[0].name;
            let row_at = |seq: u64| rows.iter().find(|r| r.covers(seq));
            let (mut scored, mut named, mut wrong) = (0u64, 0u64, 0u64);
            let mut first_named = None;
            let mut tally = Tally::default();
            for seq in first..=last {
                let Some(row) = row_at(seq) else { continue };
                wrong += u64::from(frame_wrong(seq));
                let here: Vec<&SaidFace> =
                    by_seq.get(&seq).map(|f| f.faces.iter().filter(|s| row.holds(&s.bbox)).collect()).unwrap_or_default();
                here.iter().for_each(|s| tally.add(s));
                let Some(person) = person else { continue };
                let is_named = here.iter().any(|s| names(s, person));
                if is_named && first_named.is_none() {
                    first_named = Some((seq - first) as f64 / fps);
                }
                // With a box, only frames where the face was detected count; without, every frame does.
                if seq >= first + grace && (row.bbox.is_none() || !here.is_empty()) {
                    scored += 1;
                    named += u64::from(is_named);
                }
            }
            SegmentReport {
                first,
                last,
                name: person.clone().unwrap_or_default(),
                frames: rows.iter().map(|r| r.last - r.first + 1).sum(),
                scored_frames: scored,
                named_frames: named,
                named_share: (person.is_some() && scored > 0).then(|| named as f64 / scored as f64),
                wrong_name_frames: wrong,
                unknown_share: tally.unknown_share(),
                first_named_s: first_named,
                tracks: tally.names.len(),
                identity_changes: tally.changes(),
            }
        })
        .collect::<Vec<_>>();
    // Overall figures count each frame and each track once, whatever rows overlap.
    let mut tally = Tally::default();
    let mut wrong = 0;
    for f in said {
        wrong += u64::from(frame_wrong(f.seq));
        f.faces.iter().for_each(|s| tally.add(s));
    }
    let known: Vec<&SegmentReport> = segments.iter().filter(|s| !s.name.is_empty()).collect();
    let (scored, named): (u64, u64) = known.iter().fold((0, 0), |(a, b), s| (a + s.scored_frames, b + s.named_frames));
    let changes = tally.changes();
    let overall = Overall {
        named_share: (scored > 0).then(|| named as f64 / scored as f64),
        wrong_name_frames: wrong,
        unknown_share: tally.unknown_share(),
        tracks: tally.names.len(),
        identity_changes: changes,
        changes_per_track: changes as f64 / tally.names.len().max(1) as f64,
    };
    (segments, overall)
}

/// How one segment moved between a baseline report and a new one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentDiff {
    /// `first-last name` of the segment.
    pub segment: String,
    /// Named share before and after.
    pub named_share: (Option<f64>, Option<f64>),
    /// Wrong-name frames before and after.
    pub wrong_name_frames: (u64, u64),
    /// Seconds to the first correct name before and after.
    pub first_named_s: (Option<f64>, Option<f64>),
    /// `better`, `worse`, `same` or `changed` (better in one figure, worse in another).
    pub verdict: &'static str,
}

/// Compares two reports segment by segment (matched by frame range and name). A named share that moves by less
/// than `tolerance` counts as the same.
pub fn diff(base: &VideoReport, new: &VideoReport, tolerance: f64) -> Vec<SegmentDiff> {
    new.segments
        .iter()
        .filter_map(|n| {
            let b = base.segments.iter().find(|b| b.first == n.first && b.last == n.last && b.name == n.name)?;
            let share = match (b.named_share, n.named_share) {
                (Some(x), Some(y)) if y > x + tolerance => 1,
                (Some(x), Some(y)) if y < x - tolerance => -1,
                _ => 0,
            };
            let wrong = (b.wrong_name_frames as i64 - n.wrong_name_frames as i64).signum() as i32;
            let verdict = match (share, wrong) {
                (0, 0) => "same",
                (s, w) if s >= 0 && w >= 0 => "better",
                (s, w) if s <= 0 && w <= 0 => "worse",
                _ => "changed",
            };
            Some(SegmentDiff {
                segment: format!("{}-{} {}", n.first, n.last, if n.name.is_empty() { "(strangers)" } else { &n.name }),
                named_share: (b.named_share, n.named_share),
                wrong_name_frames: (b.wrong_name_frames, n.wrong_name_frames),
                first_named_s: (b.first_named_s, n.first_named_s),
                verdict,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(track: u64, x: f32, name: Option<&str>) -> SaidFace {
        SaidFace {
            track,
            bbox: [x, 10.0, 40.0, 40.0],
            name: name.map(String::from),
            known: name.is_some_and(|n| n != crate::base::UNKNOWN),
        }
    }

    #[test]
    fn truth_parses_with_and_without_boxes_and_bad_lines_name_their_line() {
        let rows = parse_truth("# c\nfirst,last,name,x,y,w,h\n0,9,ann,,,,\n5,12,,,,,\n10,20,bob,1,2,3,4\n").expect("parses");
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].name, None);
        assert_eq!(rows[2].bbox, Some([1.0, 2.0, 3.0, 4.0]));
        assert_eq!(parse_truth("first,last,name\n5,2,ann\n").expect_err("reversed").0, 2);
        assert!(parse_truth("a,b\n").is_err());
        assert!(parse_truth("first,last,name,x,y,w,h\n0,1,ann,1,2,x,4\n").is_err());
    }

    #[test]
    fn named_share_counts_after_the_grace_and_wrong_names_are_found() {
        // Ann on frames 0..=9 (left, box), a stranger on the right; 10 fps, grace 0.2 s = 2 frames.
        let truth = parse_truth("first,last,name,x,y,w,h\n0,9,ann,0,0,100,100\n").expect("truth");
        let said: Vec<SaidFrame> = (0..10)
            .map(|seq| SaidFrame {
                seq,
                faces: vec![
                    face(1, 20.0, Some(if seq < 3 { "unknown" } else { "ann" })),
                    // The stranger is called "bob" on frame 7: a wrong name.
                    face(2, 300.0, Some(if seq == 7 { "bob" } else { "unknown" })),
                ],
            })
            .collect();
        let (seg, all) = score(&truth, &said, 10.0, 0.2);
        let s = &seg[0];
        assert_eq!((s.scored_frames, s.named_frames), (8, 7), "frames 2..=9 scored, 3..=9 named");
        assert_eq!(s.first_named_s, Some(0.3));
        assert_eq!(s.wrong_name_frames, 1);
        assert_eq!(s.tracks, 1, "only the face in the box");
        assert_eq!(s.identity_changes, 1);
        assert_eq!(all.wrong_name_frames, 1);
        assert_eq!(all.tracks, 2);
        assert_eq!(all.identity_changes, 3, "track 1 once, track 2 to bob and back");
        // The right name on the wrong face is wrong too.
        let swapped = vec![SaidFrame { seq: 5, faces: vec![face(1, 20.0, Some("unknown")), face(2, 300.0, Some("ann"))] }];
        assert_eq!(score(&truth, &swapped, 10.0, 0.2).1.wrong_name_frames, 1);
    }

    #[test]
    fn rows_of_one_shot_make_one_appearance_and_a_jump_starts_another() {
        let truth = parse_truth(
            "first,last,name,x,y,w,h\n0,9,ann,0,0,50,50\n10,19,ann,20,0,50,50\n20,29,ann,300,0,50,50\n30,39,bob,,,,\n40,49,bob,,,,\n",
        )
        .expect("truth");
        let spans: Vec<(u64, u64)> = appearances(&truth).iter().map(|a| (a[0].first, a[a.len() - 1].last)).collect();
        assert_eq!(spans, vec![(0, 19), (20, 29), (30, 39), (40, 49)]);
    }

    #[test]
    fn diff_tells_better_from_worse() {
        let truth = parse_truth("first,last,name\n0,9,ann\n").expect("truth");
        let run = |named: u64| {
            let said: Vec<SaidFrame> = (0..10)
                .map(|seq| SaidFrame { seq, faces: vec![face(1, 0.0, Some(if seq < named { "ann" } else { "unknown" }))] })
                .collect();
            let (segments, overall) = score(&truth, &said, 10.0, 0.0);
            VideoReport {
                v: 1,
                video: "v".into(),
                truth: "t".into(),
                models: "m".into(),
                frames: 10,
                fps: 10.0,
                grace_s: 0.0,
                segments,
                overall,
            }
        };
        assert_eq!(diff(&run(5), &run(9), 0.01)[0].verdict, "better");
        assert_eq!(diff(&run(9), &run(5), 0.01)[0].verdict, "worse");
        assert_eq!(diff(&run(9), &run(9), 0.01)[0].verdict, "same");
    }
}
