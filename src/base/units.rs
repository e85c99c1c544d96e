//! The typed values of the configuration: numbers with a range, and durations written as milliseconds or
//! seconds under their keys' names (`reconnect_initial_ms = 500`, `max_absence_s = 1.5`).

use serde::{Deserialize, Serialize};

/// A number outside the range its setting allows.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("{value} is outside {range}")]
pub struct OutOfRange {
    /// The number given.
    pub value: f64,
    /// The range allowed.
    pub range: &'static str,
}

/// A number in `0..=1` (scores, IoU, probabilities).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct UnitInterval(f32);

impl UnitInterval {
    /// The value as `f32`.
    pub fn get(self) -> f32 {
        self.0
    }
}

impl TryFrom<f64> for UnitInterval {
    type Error = OutOfRange;
    fn try_from(v: f64) -> Result<Self, OutOfRange> {
        if (0.0..=1.0).contains(&v) {
            Ok(Self(v as f32))
        } else {
            Err(OutOfRange { value: v, range: "0..=1" })
        }
    }
}

impl From<UnitInterval> for f64 {
    fn from(v: UnitInterval) -> f64 {
        widen(v.0)
    }
}

/// `v` as `f64` without the noise of its binary expansion: `0.3f32` is 0.3, not 0.30000001192092896 (six
/// decimals are more than any setting means).
fn widen(v: f32) -> f64 {
    (f64::from(v) * 1e6).round() / 1e6
}

/// A cosine-similarity threshold in `-1..=1`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Threshold(f32);

impl Threshold {
    /// Checks that `v` is a cosine similarity.
    pub fn new(v: f32) -> Result<Self, OutOfRange> {
        if (-1.0..=1.0).contains(&v) {
            Ok(Self(v))
        } else {
            Err(OutOfRange { value: f64::from(v), range: "-1..=1 (cosine similarity)" })
        }
    }
    /// The value as `f32`.
    pub fn get(self) -> f32 {
        self.0
    }
}

impl TryFrom<f64> for Threshold {
    type Error = OutOfRange;
    fn try_from(v: f64) -> Result<Self, OutOfRange> {
        Self::new(v as f32)
    }
}

impl From<Threshold> for f64 {
    fn from(v: Threshold) -> f64 {
        widen(v.0)
    }
}

/// A duration written as whole milliseconds (`*_ms` keys): `#[serde(with = "millis")]`.
pub mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// As milliseconds.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis().min(u128::from(u64::MAX)) as u64)
    }

    /// From milliseconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// A duration written as seconds, fractions allowed (`*_s` keys): `#[serde(with = "seconds")]`.
pub mod seconds {
    use std::time::Duration;

    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    /// As seconds.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    /// From seconds: finite and not negative.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = f64::deserialize(d)?;
        Duration::try_from_secs_f64(v).map_err(|_| D::Error::custom(format!("{v} is not a duration in seconds")))
    }
}

/// Reports `key` when `value` is above `max` (numbers that type-check but would exhaust the machine).
pub fn within(out: &mut Vec<String>, key: &str, value: u64, max: u64, why: &str) {
    if value > max {
        out.push(format!("{key}: {value} is above the limit {max} ({why})"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_read_back_without_binary_noise() {
        let t = UnitInterval::try_from(0.3).expect("in range");
        assert_eq!(serde_json::to_string(&t).expect("json"), "0.3");
        let c = Threshold::new(0.363).expect("in range");
        assert_eq!(serde_json::to_string(&c).expect("json"), "0.363");
        assert!(UnitInterval::try_from(1.5).is_err() && Threshold::new(-1.5).is_err());
    }
}
