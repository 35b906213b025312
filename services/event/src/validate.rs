//! Checks and normalises an organizer's draft. Each error names its field.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use cityevents_proto::cityevents::event::v1::{self as pb, event_draft::Location};
use cityevents_runtime::{Error, Result};

/// A draft that passed validation, with its times as chrono values.
pub struct ValidDraft {
    pub draft: pb::EventDraft,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

use cityevents_runtime::parse::time;

fn text(field: &str, value: &mut String, min: usize, max: usize) -> Result<()> {
    *value = value.trim().to_owned();
    let n = value.chars().count();
    if n < min {
        return Err(Error::invalid(field, "is required"));
    }
    if n > max {
        return Err(Error::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// Choices of one question at most. With the other limits here, an encoded
/// event stays far below NATS's 1 MiB message limit (about 300 kB at worst),
/// so no draft can stop the event outbox.
const MAX_CHOICES: usize = 20;

/// A client-chosen id (tier, question, image): 1 to 64 visible ASCII characters.
fn client_id(field: &str, id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(
            field,
            "must be 1 to 64 visible ASCII characters",
        ));
    }
    Ok(())
}

/// Validates `d`, filling in defaults (tier and question ids, visibility).
pub fn draft(mut d: pb::EventDraft) -> Result<ValidDraft> {
    text("draft.title", &mut d.title, 1, 200)?;
    text("draft.description", &mut d.description, 0, 10_000)?;
    text("draft.category", &mut d.category, 0, 50)?;
    if d.tags.len() > 20 {
        return Err(Error::invalid("draft.tags", "at most 20 tags"));
    }
    for tag in &mut d.tags {
        text("draft.tags", tag, 1, 40)?;
        *tag = tag.to_lowercase();
    }
    let starts_at = time("draft.starts_at", d.starts_at.as_ref())?;
    let ends_at = time("draft.ends_at", d.ends_at.as_ref())?;
    if ends_at <= starts_at {
        return Err(Error::invalid("draft.ends_at", "must be after starts_at"));
    }
    if chrono_tz::Tz::from_str(&d.time_zone).is_err() {
        return Err(Error::invalid(
            "draft.time_zone",
            "must be an IANA time zone such as Europe/Berlin",
        ));
    }
    location(&mut d.location)?;
    if d.capacity < 0 {
        return Err(Error::invalid(
            "draft.capacity",
            "must not be negative (0 means unlimited)",
        ));
    }
    if d.waitlist_cap < 0 {
        return Err(Error::invalid(
            "draft.waitlist_cap",
            "must not be negative (0 means unlimited)",
        ));
    }
    tiers(&mut d)?;
    questions(&mut d.questions)?;
    if d.cover_image_ids.len() > 10 {
        return Err(Error::invalid("draft.cover_image_ids", "at most 10 images"));
    }
    for image in &d.cover_image_ids {
        client_id("draft.cover_image_ids", image)?;
    }
    if d.visibility == pb::Visibility::Unspecified as i32 {
        d.visibility = pb::Visibility::Public.into();
    }
    pb::Visibility::try_from(d.visibility)
        .map_err(|_| Error::invalid("draft.visibility", "is not a known value"))?;
    Ok(ValidDraft {
        draft: d,
        starts_at,
        ends_at,
    })
}

fn location(loc: &mut Option<Location>) -> Result<()> {
    match loc {
        None => Err(Error::invalid(
            "draft.location",
            "a venue or an online_url is required",
        )),
        Some(Location::OnlineUrl(url)) => {
            let ok =
                (url.starts_with("https://") || url.starts_with("http://")) && url.len() <= 2_000;
            if ok {
                Ok(())
            } else {
                Err(Error::invalid("draft.online_url", "must be an http(s) URL"))
            }
        }
        Some(Location::Venue(v)) => {
            text("draft.venue.name", &mut v.name, 1, 200)?;
            text("draft.venue.address", &mut v.address, 0, 300)?;
            text("draft.venue.city", &mut v.city, 1, 100)?;
            if !(-90.0..=90.0).contains(&v.latitude) || !(-180.0..=180.0).contains(&v.longitude) {
                return Err(Error::invalid(
                    "draft.venue",
                    "latitude must be within ±90 and longitude within ±180",
                ));
            }
            Ok(())
        }
    }
}

/// With tiers, the event's capacity is their sum (0 if any is unlimited).
fn tiers(d: &mut pb::EventDraft) -> Result<()> {
    if d.tiers.len() > 20 {
        return Err(Error::invalid("draft.tiers", "at most 20 tiers"));
    }
    let mut seen = std::collections::HashSet::new();
    for t in &mut d.tiers {
        text("draft.tiers.name", &mut t.name, 1, 100)?;
        if t.id.is_empty() {
            t.id = Uuid::now_v7().to_string();
        }
        client_id("draft.tiers.id", &t.id)?;
        if t.capacity < 0 || t.price_cents < 0 {
            return Err(Error::invalid(
                "draft.tiers",
                "capacity and price must not be negative",
            ));
        }
        if !seen.insert(t.id.clone()) {
            return Err(Error::invalid("draft.tiers.id", "must be unique"));
        }
    }
    if !d.tiers.is_empty() {
        let unlimited = d.tiers.iter().any(|t| t.capacity == 0);
        d.capacity = if unlimited {
            0
        } else {
            d.tiers
                .iter()
                .try_fold(0i32, |sum, t| sum.checked_add(t.capacity))
                .ok_or_else(|| {
                    Error::invalid(
                        "draft.tiers",
                        "capacities must add up to at most 2147483647",
                    )
                })?
        };
    }
    Ok(())
}

fn questions(qs: &mut [pb::Question]) -> Result<()> {
    if qs.len() > 30 {
        return Err(Error::invalid("draft.questions", "at most 30 questions"));
    }
    for q in qs {
        text("draft.questions.label", &mut q.label, 1, 300)?;
        if q.id.is_empty() {
            q.id = Uuid::now_v7().to_string();
        }
        client_id("draft.questions.id", &q.id)?;
        if q.choices.len() > MAX_CHOICES {
            return Err(Error::invalid(
                "draft.questions.choices",
                format!("at most {MAX_CHOICES} choices"),
            ));
        }
        for choice in &mut q.choices {
            text("draft.questions.choices", choice, 1, 100)?;
        }
        match pb::QuestionKind::try_from(q.kind) {
            Ok(pb::QuestionKind::Choice) if q.choices.is_empty() => {
                return Err(Error::invalid(
                    "draft.questions.choices",
                    "a choice question needs choices",
                ));
            }
            Ok(pb::QuestionKind::Unspecified) | Err(_) => {
                return Err(Error::invalid(
                    "draft.questions.kind",
                    "must be TEXT, CHOICE, NUMBER or CHECKBOX",
                ));
            }
            Ok(_) => {}
        }
    }
    Ok(())
}

pub use cityevents_runtime::parse::id;

/// A reason for moderation or cancellation: required, at most 500 characters.
pub fn reason(raw: &str) -> Result<String> {
    let mut r = raw.to_owned();
    text("reason", &mut r, 1, 500)?;
    Ok(r)
}

/// Page size (the shared default and cap) and the id to continue after.
pub fn page(size: i32, token: &str) -> Result<(i64, Option<Uuid>)> {
    let size = cityevents_runtime::parse::page_size(size);
    let after = if token.is_empty() {
        None
    } else {
        Some(id("page_token", token)?)
    };
    Ok((size, after))
}
