//! One parser per concept, shared by every service and the BFF, so limits
//! and messages agree: ids, page sizes, timestamps.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Error, Result};

/// Items in a page when the caller asks for none.
pub const DEFAULT_PAGE_SIZE: i64 = 50;
/// Items in a page at most, whatever the caller asks.
pub const MAX_PAGE_SIZE: i64 = 100;

/// A required id argument: `<field>: is required` / `is not a valid id`.
pub fn id(field: &str, raw: &str) -> Result<Uuid> {
    if raw.is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    raw.parse()
        .map_err(|_| Error::invalid(field, "is not a valid id"))
}

/// A page size: [`DEFAULT_PAGE_SIZE`] for 0 or less, at most [`MAX_PAGE_SIZE`].
pub fn page_size(size: i32) -> i64 {
    if size <= 0 {
        DEFAULT_PAGE_SIZE
    } else {
        i64::from(size).min(MAX_PAGE_SIZE)
    }
}

/// A time as a protobuf `Timestamp`.
pub fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// The protobuf range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
const MIN_SECONDS: i64 = -62_135_596_800;
const MAX_SECONDS: i64 = 253_402_300_799;

/// A required `Timestamp` argument, refused outside the protobuf range or
/// with nanos outside 0..1e9.
pub fn time(field: &str, t: Option<&prost_types::Timestamp>) -> Result<DateTime<Utc>> {
    let t = t.ok_or_else(|| Error::invalid(field, "is required"))?;
    let nanos = u32::try_from(t.nanos)
        .ok()
        .filter(|n| *n < 1_000_000_000)
        .ok_or_else(|| Error::invalid(field, "nanos must be 0 to 999999999"))?;
    if !(MIN_SECONDS..=MAX_SECONDS).contains(&t.seconds) {
        return Err(Error::invalid(field, "is outside years 1 to 9999"));
    }
    DateTime::from_timestamp(t.seconds, nanos)
        .ok_or_else(|| Error::invalid(field, "is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(seconds: i64, nanos: i32) -> prost_types::Timestamp {
        prost_types::Timestamp { seconds, nanos }
    }

    #[test]
    fn timestamps_outside_the_protobuf_range_or_with_bad_nanos_are_refused_naming_the_field() {
        assert!(time("starts_at", Some(&ts(1_700_000_000, 5))).is_ok());
        for bad in [
            ts(1, -1),
            ts(1, 1_000_000_000),
            ts(MAX_SECONDS + 1, 0),
            ts(i64::MIN, 0),
        ] {
            let e = time("starts_at", Some(&bad)).unwrap_err();
            assert!(e.message().starts_with("starts_at: "), "{}", e.message());
        }
        assert!(
            time("starts_at", None)
                .unwrap_err()
                .message()
                .contains("required")
        );
    }

    #[test]
    fn a_time_survives_the_round_trip() {
        let now = Utc::now();
        assert_eq!(time("t", Some(&timestamp(now))).unwrap(), now);
    }

    #[test]
    fn page_sizes_default_and_cap_the_same_everywhere() {
        assert_eq!(
            (
                page_size(0),
                page_size(-5),
                page_size(7),
                page_size(i32::MAX)
            ),
            (50, 50, 7, 100)
        );
    }

    #[test]
    fn ids_say_what_is_wrong() {
        assert!(
            id("event_id", "")
                .unwrap_err()
                .message()
                .ends_with("is required")
        );
        assert!(
            id("event_id", "x")
                .unwrap_err()
                .message()
                .ends_with("is not a valid id")
        );
    }
}
