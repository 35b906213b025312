//! iCalendar documents (RFC 5545) of events: the feed's calendars (a user's
//! joined events, a search) and the mail's invitations. Start and end
//! times carry their event's `TZID`, with a `VTIMEZONE` per zone holding its
//! real offset changes over the document's span; `UID`s are stable
//! (`<event id>@cityevents`), updates bump `SEQUENCE` (the event's version),
//! and cancelled events stay with `STATUS:CANCELLED` so calendars drop them.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// One event as a calendar shows it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub event_id: uuid::Uuid,
    pub version: i64,
    pub title: String,
    pub description: String,
    pub location: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub time_zone: String,
    pub cancelled: bool,
}

/// The whole document, CRLF line ends, long lines folded.
pub fn render(name: &str, entries: &[Entry], now: DateTime<Utc>) -> String {
    let mut lines: Vec<String> = vec![
        "BEGIN:VCALENDAR".into(),
        "VERSION:2.0".into(),
        "PRODID:-//CityEvents//Feed//EN".into(),
        "CALSCALE:GREGORIAN".into(),
        "METHOD:PUBLISH".into(),
        format!("X-WR-CALNAME:{}", escape(name)),
    ];
    let mut zones: BTreeMap<String, (Tz, i32, i32)> = BTreeMap::new();
    for e in entries {
        if let Ok(tz) = e.time_zone.parse::<Tz>() {
            let span = zones
                .entry(e.time_zone.clone())
                .or_insert((tz, i32::MAX, i32::MIN));
            span.1 = span.1.min(e.starts_at.year());
            span.2 = span.2.max(e.ends_at.year());
        }
    }
    // Offset changes over at most ten years from the first event (the
    // last observance listed holds after it): an event set far in the
    // future must not make a feed costly.
    for span in zones.values_mut() {
        span.2 = span.2.min(span.1.saturating_add(10));
    }
    for (name, (tz, from, to)) in &zones {
        lines.extend(vtimezone(name, *tz, *from, *to));
    }
    let stamp = utc(now);
    for e in entries {
        lines.push("BEGIN:VEVENT".into());
        lines.push(format!("UID:{}@cityevents", e.event_id));
        lines.push(format!("DTSTAMP:{stamp}"));
        lines.push(format!("SEQUENCE:{}", e.version.max(0)));
        match e.time_zone.parse::<Tz>() {
            Ok(tz) => {
                lines.push(format!(
                    "DTSTART;TZID={}:{}",
                    e.time_zone,
                    local(e.starts_at, tz)
                ));
                lines.push(format!(
                    "DTEND;TZID={}:{}",
                    e.time_zone,
                    local(e.ends_at, tz)
                ));
            }
            Err(_) => {
                lines.push(format!("DTSTART:{}", utc(e.starts_at)));
                lines.push(format!("DTEND:{}", utc(e.ends_at)));
            }
        }
        lines.push(format!("SUMMARY:{}", escape(&e.title)));
        if !e.location.is_empty() {
            lines.push(format!("LOCATION:{}", escape(&e.location)));
        }
        if !e.description.is_empty() {
            lines.push(format!("DESCRIPTION:{}", escape(&e.description)));
        }
        lines.push(format!(
            "STATUS:{}",
            if e.cancelled {
                "CANCELLED"
            } else {
                "CONFIRMED"
            }
        ));
        lines.push("END:VEVENT".into());
    }
    lines.push("END:VCALENDAR".into());
    let mut out = String::new();
    for l in lines {
        fold(&mut out, &l);
    }
    out
}

fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

fn local(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%Y%m%dT%H%M%S").to_string()
}

/// TEXT escaping (RFC 5545 3.3.11).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Appends `line` folded at 75 octets (never inside a character) + CRLF.
fn fold(out: &mut String, line: &str) {
    let mut width = 0;
    for c in line.chars() {
        if width + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += c.len_utf8();
    }
    out.push_str("\r\n");
}

/// Seconds east of UTC in `tz` at `t`.
fn offset(tz: Tz, t: DateTime<Utc>) -> i32 {
    tz.offset_from_utc_datetime(&t.naive_utc())
        .fix()
        .local_minus_utc()
}

fn hhmm(secs: i32) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let s = secs.abs();
    format!("{sign}{:02}{:02}", s / 3600, (s % 3600) / 60)
}

/// A VTIMEZONE with one component per offset change from the start of
/// `from` to the end of `to` (plus the offset in force at the start).
fn vtimezone(name: &str, tz: Tz, from: i32, to: i32) -> Vec<String> {
    let start = Utc
        .with_ymd_and_hms(from - 1, 12, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    let end = Utc
        .with_ymd_and_hms(to + 1, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    let mut changes: Vec<(DateTime<Utc>, i32, i32)> = Vec::new();
    let mut t = start;
    let mut before = offset(tz, t);
    while t < end {
        let next = t + Duration::days(1);
        let after = offset(tz, next);
        if after != before {
            // Narrow the change down to the minute.
            let (mut lo, mut hi) = (t, next);
            while hi - lo > Duration::minutes(1) {
                let mid = lo + (hi - lo) / 2;
                if offset(tz, mid) == before {
                    lo = mid
                } else {
                    hi = mid
                }
            }
            // hi is within a minute after the change: whole minutes.
            let secs = hi.timestamp();
            let hi = DateTime::from_timestamp(secs - secs.rem_euclid(60), 0).unwrap_or(hi);
            changes.push((hi, before, after));
            before = after;
        }
        t = next;
    }
    let mut lines = vec!["BEGIN:VTIMEZONE".to_owned(), format!("TZID:{name}")];
    let first = offset(tz, start);
    let mut component = |at: NaiveDateTime, from: i32, to: i32, dst: bool| {
        let kind = if dst { "DAYLIGHT" } else { "STANDARD" };
        lines.push(format!("BEGIN:{kind}"));
        lines.push(format!("DTSTART:{}", at.format("%Y%m%dT%H%M%S")));
        lines.push(format!("TZOFFSETFROM:{}", hhmm(from)));
        lines.push(format!("TZOFFSETTO:{}", hhmm(to)));
        lines.push(format!("END:{kind}"));
    };
    component(
        (start + Duration::seconds(i64::from(first))).naive_utc(),
        first,
        first,
        false,
    );
    for (at, from, to) in changes {
        // DTSTART is the local time before the change.
        let local = (at + Duration::seconds(i64::from(from))).naive_utc();
        component(local, from, to, to > from);
    }
    lines.push("END:VTIMEZONE".into());
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_keeps_its_zone_and_berlins_changes_are_listed() {
        let at = Utc.with_ymd_and_hms(2026, 12, 24, 18, 0, 0).unwrap();
        let e = Entry {
            event_id: uuid::Uuid::nil(),
            version: 3,
            title: "Carols, candles; and \\ more".into(),
            description: "x".repeat(200),
            location: String::new(),
            starts_at: at,
            ends_at: at + Duration::hours(2),
            time_zone: "Europe/Berlin".into(),
            cancelled: false,
        };
        let ics = render("mine", &[e], at);
        assert!(ics.contains("DTSTART;TZID=Europe/Berlin:20261224T190000\r\n"));
        assert!(ics.contains("SUMMARY:Carols\\, candles\\; and \\\\ more\r\n"));
        assert!(ics.contains("SEQUENCE:3\r\n"));
        // Berlin's 2026 changes: 29 March 02:00 CET -> CEST, 25 October 03:00 back.
        assert!(ics.contains("DTSTART:20260329T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200"));
        assert!(ics.contains("DTSTART:20261025T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100"));
        assert!(ics.lines().all(|l| l.len() <= 76));
    }
}
