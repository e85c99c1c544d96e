//! The event schema: what the daemon says, one JSON line per event.
//!
//! An [`Event`] is the envelope every line shares (schema version, camera, the frame it is about, when it was
//! published) around an [`EventBody`]: a tagged enum with one variant per event type, so each type carries exactly
//! its own fields. On the wire the body's fields sit beside the envelope's, and `"type"` names the variant:
//!
//! ```json
//! {"v":1,"type":"track_started","track_id":3,"name":"ann","known":true,...,"camera":"door","frame_seq":41,"frame_ts":...,"emit_ts":...}
//! ```
//!
//! Schema version [`SCHEMA_VERSION`]; the README ("Events") documents every field.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::face::{margin, Candidate, TrackId};

/// Version of the event schema; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Seconds since the Unix epoch.
pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// The type of an event, without its fields (what `"type"` says).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// First line to a new subscriber.
    Hello,
    /// A face was seen and identified (or found unknown) for the first time.
    TrackStarted,
    /// The track's voted identity changed.
    IdentityChanged,
    /// Periodic position and score of a live track (`publish.update_interval_ms`).
    TrackUpdated,
    /// The face has not been seen for `track.max_absence_s` (up to five times that while other faces wait for their
    /// first embedding), or the input ended.
    TrackEnded,
    /// The camera or stream stopped delivering frames; capture is retrying.
    SourceLost,
    /// Frames flow again.
    SourceRestored,
    /// A file or image sequence ended early or lost frames (truncated file, unreadable images skipped).
    InputTruncated,
    /// This subscriber fell behind and lost this many of its oldest events.
    EventsDropped,
}

/// Seconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC`, for people.
pub fn utc_text(secs: i64) -> String {
    let (days, t) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", t / 3600, t / 60 % 60, t % 60)
}

/// Days since 1970-01-01 as (year, month, day), proleptic Gregorian (H. Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Where the HTTP API serves snapshots: an event's `snapshot.url` is this, `/`, and the file's path below the
/// snapshot folder (the API's route is made from it too).
pub const SNAPSHOT_ROUTE: &str = "/api/snapshots";

/// Numbers read from an event line must be ones an event line can hold: a value beyond `f32` would read as
/// infinity and write back as `null` (found by the event_line fuzz target).
pub mod finite {
    use serde::{Deserialize, Deserializer};

    fn checked<E: serde::de::Error>(v: f64) -> Result<f32, E> {
        let f = v as f32;
        match f.is_finite() {
            true => Ok(f),
            false => Err(E::custom(format!("{v} is not a finite 32-bit number"))),
        }
    }

    /// One finite `f32`.
    pub fn f32<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
        checked(f64::deserialize(d)?)
    }

    /// An optional finite `f32`.
    pub fn option_f32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f32>, D::Error> {
        Option::<f64>::deserialize(d)?.map(checked).transpose()
    }

    /// Four finite `f32` (a box).
    pub fn f32x4<'de, D: Deserializer<'de>>(d: D) -> Result<[f32; 4], D::Error> {
        let v = <[f64; 4]>::deserialize(d)?;
        Ok([checked(v[0])?, checked(v[1])?, checked(v[2])?, checked(v[3])?])
    }
}

/// One face track's identity as the track stage sees it: the fields of every track event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackFace {
    /// Track id, unique within one daemon run.
    pub track_id: TrackId,
    /// Person name, or `unknown`.
    pub name: String,
    /// Whether `name` is an enrolled person.
    pub known: bool,
    /// Mean cosine of the window's votes for the name (for `unknown`: of those votes' best candidates, below the
    /// threshold).
    #[serde(deserialize_with = "finite::f32")]
    pub score: f32,
    /// Threshold in force.
    #[serde(deserialize_with = "finite::f32")]
    pub threshold: f32,
    /// Face box `[x, y, w, h]` in source pixels.
    #[serde(deserialize_with = "finite::f32x4")]
    pub bbox: [f32; 4],
    /// Face quality 0..1 (detector score × size × frontality).
    #[serde(deserialize_with = "finite::f32")]
    pub quality: f32,
    /// Top-k gallery candidates of the latest embedded face, best first.
    pub candidates: Vec<Candidate>,
    /// Best candidate's score minus the second's (how clear-cut the match is); absent with fewer than two.
    #[serde(skip_serializing_if = "Option::is_none", default, deserialize_with = "finite::option_f32")]
    pub margin: Option<f32>,
    /// Identity votes in the track's window for `name`, and in all.
    pub votes: [usize; 2],
    /// The picture of this decision (`track_started`, `identity_changed`), when `[snapshots]` is on.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub snapshot: Option<SnapshotRef>,
    /// For a face no enrolled person matches: the stranger it was recognised as (`stranger-…`, the same across
    /// tracks, cameras and restarts), once one is known (`[strangers]`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub stranger: Option<String>,
}

/// Where a snapshot is: its file, and its address on the HTTP API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotRef {
    /// The JPEG file.
    pub path: String,
    /// `/api/snapshots/<camera>/<day>/<file>.jpg`, relative to the API's address.
    pub url: String,
}

impl TrackFace {
    /// Sets the candidates and the margin they give.
    pub fn with_candidates(mut self, candidates: Vec<Candidate>) -> Self {
        self.margin = margin(&candidates);
        self.candidates = candidates;
        self
    }
}

/// What happened: one variant per event type, each with its own fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventBody {
    /// First line to a new subscriber.
    Hello {
        /// facewatch version.
        version: String,
    },
    /// A face was seen and identified (or found unknown) for the first time.
    TrackStarted(TrackFace),
    /// The track's voted identity changed.
    IdentityChanged {
        /// The track.
        #[serde(flatten)]
        face: TrackFace,
        /// The name before.
        previous: String,
    },
    /// Periodic position and score of a live track.
    TrackUpdated(TrackFace),
    /// The face was not seen for `track.max_absence_s` (up to five times that while other faces wait for their
    /// first embedding), or the input ended.
    TrackEnded {
        /// The track.
        #[serde(flatten)]
        face: TrackFace,
        /// Seconds from first to last sighting.
        duration_s: f64,
        /// Frames the face was seen in.
        frames: u64,
        /// `absent` or `input_ended`.
        reason: String,
    },
    /// The camera or stream stopped delivering frames; capture is retrying.
    SourceLost {
        /// Why.
        reason: String,
        /// Seconds until the first retry.
        retry_in_s: f64,
    },
    /// Frames flow again.
    SourceRestored {
        /// Seconds without frames.
        down_s: f64,
        /// Retries it took.
        attempts: u32,
    },
    /// A finite input ended early or lost frames.
    InputTruncated {
        /// Why.
        reason: String,
        /// Frames read.
        frames: u64,
    },
    /// This subscriber fell behind and lost this many of its oldest events.
    EventsDropped {
        /// How many.
        dropped: u64,
    },
}

impl EventBody {
    /// The type.
    pub fn kind(&self) -> EventKind {
        match self {
            Self::Hello { .. } => EventKind::Hello,
            Self::TrackStarted(_) => EventKind::TrackStarted,
            Self::IdentityChanged { .. } => EventKind::IdentityChanged,
            Self::TrackUpdated(_) => EventKind::TrackUpdated,
            Self::TrackEnded { .. } => EventKind::TrackEnded,
            Self::SourceLost { .. } => EventKind::SourceLost,
            Self::SourceRestored { .. } => EventKind::SourceRestored,
            Self::InputTruncated { .. } => EventKind::InputTruncated,
            Self::EventsDropped { .. } => EventKind::EventsDropped,
        }
    }

    /// The track it is about, for track events.
    pub fn track(&self) -> Option<&TrackFace> {
        match self {
            Self::TrackStarted(f) | Self::TrackUpdated(f) => Some(f),
            Self::IdentityChanged { face, .. } | Self::TrackEnded { face, .. } => Some(face),
            _ => None,
        }
    }
}

/// One event: the envelope every line shares around its [`EventBody`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Schema version.
    pub v: u32,
    /// The type and its fields.
    #[serde(flatten)]
    pub body: EventBody,
    /// Camera name (`capture.camera`).
    pub camera: String,
    /// Sequence number of the frame the event is about.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub frame_seq: Option<u64>,
    /// When that frame was captured (for status events: when it happened), seconds since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub frame_ts: Option<f64>,
    /// When the event was published, seconds since the Unix epoch (`emit_ts − frame_ts` is the latency); set by
    /// the publish stage.
    pub emit_ts: f64,
    /// The face of a decision (`track_started`, `identity_changed`) as a small JPEG, for the outputs that show
    /// it (Home Assistant's image entity, the web page's timeline); never part of the line.
    #[serde(skip)]
    pub picture: Option<std::sync::Arc<[u8]>>,
}

impl Event {
    /// An event for `camera`, about no frame, not yet published.
    pub fn new(camera: &str, body: EventBody) -> Self {
        Self { v: SCHEMA_VERSION, body, camera: camera.to_string(), frame_seq: None, frame_ts: None, emit_ts: 0.0, picture: None }
    }

    /// A status event (no frame): stamped with now as its `frame_ts`.
    fn status(camera: &str, body: EventBody) -> Self {
        Self { frame_ts: Some(unix_seconds(SystemTime::now())), ..Self::new(camera, body) }
    }

    /// A track event about frame `seq` captured at `captured_at`.
    pub fn about_frame(camera: &str, body: EventBody, seq: u64, captured_at: SystemTime) -> Self {
        Self { frame_seq: Some(seq), frame_ts: Some(unix_seconds(captured_at)), ..Self::new(camera, body) }
    }

    /// The type.
    pub fn kind(&self) -> EventKind {
        self.body.kind()
    }

    /// The track it is about, for track events.
    pub fn track_id(&self) -> Option<TrackId> {
        self.body.track().map(|f| f.track_id)
    }

    /// The name said, for track events.
    pub fn name(&self) -> Option<&str> {
        self.body.track().map(|f| f.name.as_str())
    }

    /// The margin of the best candidate, for track events with two or more.
    pub fn margin(&self) -> Option<f32> {
        self.body.track().and_then(|f| f.margin)
    }

    /// `identity_changed`: the name before.
    pub fn previous(&self) -> Option<&str> {
        match &self.body {
            EventBody::IdentityChanged { previous, .. } => Some(previous),
            _ => None,
        }
    }

    /// `track_ended`: frames the face was seen in; `input_truncated`: frames read.
    pub fn frames(&self) -> Option<u64> {
        match &self.body {
            EventBody::TrackEnded { frames, .. } | EventBody::InputTruncated { frames, .. } => Some(*frames),
            _ => None,
        }
    }

    /// `events_dropped`: how many.
    pub fn dropped(&self) -> Option<u64> {
        match &self.body {
            EventBody::EventsDropped { dropped } => Some(*dropped),
            _ => None,
        }
    }

    /// `hello`, stamped now.
    pub fn hello(camera: &str) -> Self {
        let version = env!("CARGO_PKG_VERSION").to_string();
        Self { emit_ts: unix_seconds(SystemTime::now()), ..Self::new(camera, EventBody::Hello { version }) }
    }

    /// `events_dropped`, stamped now.
    pub fn events_dropped(camera: &str, dropped: u64) -> Self {
        Self { emit_ts: unix_seconds(SystemTime::now()), ..Self::new(camera, EventBody::EventsDropped { dropped }) }
    }

    /// `source_lost`.
    pub fn source_lost(camera: &str, reason: &str, retry_in: Duration) -> Self {
        Self::status(camera, EventBody::SourceLost { reason: reason.to_string(), retry_in_s: retry_in.as_secs_f64() })
    }

    /// `input_truncated`: why, and the frames read.
    pub fn input_truncated(camera: &str, reason: &str, frames: u64) -> Self {
        Self::status(camera, EventBody::InputTruncated { reason: reason.to_string(), frames })
    }

    /// `source_restored`.
    pub fn source_restored(camera: &str, down: Duration, attempts: u32) -> Self {
        Self::status(camera, EventBody::SourceRestored { down_s: down.as_secs_f64(), attempts })
    }

    /// The event as one JSON line (no trailing newline).
    pub fn to_line(&self) -> String {
        // Serialising plain data to a String cannot fail; keep the daemon up if it ever did.
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"v\":{SCHEMA_VERSION},\"type\":\"error\",\"message\":\"{e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face() -> TrackFace {
        TrackFace {
            track_id: 7,
            name: "ann".into(),
            known: true,
            score: 0.5,
            threshold: 0.25,
            bbox: [1.0, 2.0, 3.0, 4.0],
            quality: 0.75,
            candidates: Vec::new(),
            margin: None,
            votes: [2, 3],
            snapshot: None,
            stranger: None,
        }
        .with_candidates(vec![Candidate { name: "ann".into(), score: 0.5 }, Candidate { name: "bob".into(), score: 0.25 }])
    }

    fn keys(e: &Event) -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(&e.to_line()).expect("json");
        let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
        k.sort();
        k
    }

    /// The wire format of schema 1, type by type: these key sets are what the README documents and what
    /// subscribers parse. A change here is a schema change.
    #[test]
    fn every_event_type_has_exactly_its_documented_fields() {
        let at = SystemTime::now();
        let track = ["bbox", "camera", "candidates", "emit_ts", "frame_seq", "frame_ts", "known", "margin", "name"];
        let track: Vec<&str> = track.into_iter().chain(["quality", "score", "threshold", "track_id", "type", "v", "votes"]).collect();
        let with = |extra: &[&str]| {
            let mut k: Vec<String> = track.iter().chain(extra).map(|s| s.to_string()).collect();
            k.sort();
            k
        };
        let started = Event::about_frame("door", EventBody::TrackStarted(face()), 4, at);
        assert_eq!(keys(&started), with(&[]));
        let changed = Event::about_frame("door", EventBody::IdentityChanged { face: face(), previous: "unknown".into() }, 4, at);
        assert_eq!(keys(&changed), with(&["previous"]));
        let ended = EventBody::TrackEnded { face: face(), duration_s: 1.5, frames: 9, reason: "absent".into() };
        assert_eq!(keys(&Event::about_frame("door", ended, 4, at)), with(&["duration_s", "frames", "reason"]));
        let status = |e: &Event, own: &[&str]| {
            let mut k: Vec<String> = ["camera", "emit_ts", "type", "v"].iter().chain(own).map(|s| s.to_string()).collect();
            k.sort();
            assert_eq!(keys(e), k, "{}", e.to_line());
        };
        status(&Event::hello("door"), &["version"]);
        status(&Event::events_dropped("door", 3), &["dropped"]);
        status(&Event::source_lost("door", "gone", Duration::from_millis(500)), &["frame_ts", "reason", "retry_in_s"]);
        status(&Event::source_restored("door", Duration::from_secs(2), 3), &["attempts", "down_s", "frame_ts"]);
        status(&Event::input_truncated("door", "short", 9), &["frame_ts", "frames", "reason"]);
    }

    #[test]
    fn an_event_read_back_writes_the_same_numbers() {
        // Found by the event_line fuzz target: serde_json's default float parser can land one ULP off, so a
        // timestamp drifted each time a line was read and written again (float_roundtrip is on).
        let line = r#"{"v":1,"type":"hello","version":"0.1.0","camera":"c","emit_ts":1796587917.3237818}"#;
        let once: Event = serde_json::from_str(line).expect("parse");
        let twice: Event = serde_json::from_str(&once.to_line()).expect("parse");
        assert_eq!(once.emit_ts, 1_796_587_917.323_781_8);
        assert_eq!(once.to_line(), twice.to_line());
        // A score no event can hold is refused, not read as infinity (which would write back as `null`).
        let face = serde_json::to_value(face()).expect("face");
        let mut bad = face.clone();
        bad["score"] = serde_json::json!(1e300);
        assert!(serde_json::from_value::<TrackFace>(bad).is_err());
        let mut bad = face;
        bad["candidates"] = serde_json::json!([{"name": "x", "score": 1e45}]);
        assert!(serde_json::from_value::<TrackFace>(bad).is_err());
    }

    #[test]
    fn events_serialise_with_only_their_fields_and_read_back() {
        let e = Event::source_lost("door", "lost /dev/video0: unplugged", Duration::from_millis(500));
        let v: serde_json::Value = serde_json::from_str(&e.to_line()).expect("json");
        assert_eq!(v["v"], 1);
        assert_eq!(v["type"], "source_lost");
        assert_eq!(v["camera"], "door");
        assert_eq!(v["retry_in_s"], 0.5);
        assert!(v.get("track_id").is_none() && v.get("name").is_none());
        let back: Event = serde_json::from_value(v).expect("round trip");
        assert_eq!(back.kind(), EventKind::SourceLost);
        // A capture time whose seconds are exact in binary, so the comparison is about fields, not float parsing.
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_500);
        let changed = Event::about_frame("door", EventBody::IdentityChanged { face: face(), previous: "bob".into() }, 4, at);
        let back: Event = serde_json::from_str(&changed.to_line()).expect("round trip");
        assert_eq!(back, changed);
        assert_eq!(back.body.track().map(|f| f.margin), Some(Some(0.25)));
    }
}
