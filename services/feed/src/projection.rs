//! The read model, built only from the stream: `event.*` upserts an
//! event's card (newer versions only), `join.*` moves its counts (newer
//! messages only) and records registrations (the first sight of one adds
//! to the event's heat). Every apply is idempotent, so the stream can be
//! replayed from its start any number of times ([`crate::rebuild`]).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use prost::Message;
use sqlx::PgConnection;
use uuid::Uuid;

use cityevents_messaging::Envelope;
use cityevents_messaging::consumer::Handler;
use cityevents_proto::cityevents::event::v1::{self as ev, event_draft::Location};
use cityevents_proto::cityevents::join::v1 as jn;

use crate::cache::Cache;

/// Heat is kept relative to this instant (2026-01-01T00:00:00Z)...
const HEAT_EPOCH: i64 = 1_767_225_600;
/// ...decaying by e every this many seconds (a half-life of about 25 h).
pub const HEAT_TAU_SECS: f64 = 36.0 * 3600.0;

/// The log-space heat one join at `at` adds.
fn heat_of(at: DateTime<Utc>) -> f64 {
    (at.timestamp() - HEAT_EPOCH) as f64 / HEAT_TAU_SECS
}

fn time(t: Option<&prost_types::Timestamp>) -> DateTime<Utc> {
    cityevents_runtime::parse::time("", t).unwrap_or_default()
}

/// What applying one message changed.
#[derive(Debug, Default, PartialEq, Eq, Clone, Copy)]
pub enum Change {
    /// Nothing (an older or repeated message).
    #[default]
    None,
    /// Counts or heat only.
    Counts,
    /// What a listing shows or whether it shows at all.
    Listing,
}

/// Applies one envelope of either stream.
pub async fn apply(conn: &mut PgConnection, env: &Envelope) -> anyhow::Result<Change> {
    let payload = env.payload.as_slice();
    let Some((producer, kind)) = env.r#type.split_once('.') else {
        anyhow::bail!("type {:?} has no producer", env.r#type);
    };
    match producer {
        "event" => {
            let event = match kind {
                "cancelled" => ev::EventCancelled::decode(payload)?.event,
                "hidden" | "unhidden" => ev::EventModerated::decode(payload)?.event,
                _ => ev::EventChanged::decode(payload)?.event,
            };
            let event = event.ok_or_else(|| anyhow::anyhow!("{} without an event", env.r#type))?;
            Ok(if upsert_event(conn, &event).await? {
                Change::Listing
            } else {
                Change::None
            })
        }
        "join" => {
            let seq: Uuid = env.id.parse()?;
            let (registration, counts) = if kind == "counts_changed" {
                (None, jn::CountsChanged::decode(payload)?.counts)
            } else {
                let m = jn::RegistrationChanged::decode(payload)?;
                (m.registration, m.counts)
            };
            let mut changed = Change::None;
            if let Some(r) = registration
                && record_registration(conn, &r, seq).await?
            {
                changed = Change::Counts;
            }
            if let Some(c) = counts
                && apply_counts(conn, &c, seq).await?
            {
                changed = Change::Counts;
            }
            Ok(changed)
        }
        _ => Ok(Change::None),
    }
}

/// Upserts the event's card if `event.version` is newer than the stored one.
pub async fn upsert_event(conn: &mut PgConnection, event: &ev::Event) -> anyhow::Result<bool> {
    let id: Uuid = event.id.parse()?;
    let organizer: Uuid = event.organizer_id.parse().unwrap_or_default();
    let draft = event.draft.clone().unwrap_or_default();
    let status = ev::EventStatus::try_from(event.status).unwrap_or_default();
    let listed = status == ev::EventStatus::Published
        && !event.hidden
        && draft.visibility() != ev::Visibility::Unlisted;
    let (venue, online) = match &draft.location {
        Some(Location::Venue(v)) => (v.clone(), false),
        Some(Location::OnlineUrl(_)) => (ev::Venue::default(), true),
        None => (ev::Venue::default(), false),
    };
    let tags: Vec<String> = draft.tags.iter().map(|t| t.to_lowercase()).collect();
    let capacity = if draft.tiers.is_empty() || draft.tiers.iter().any(|t| t.capacity == 0) {
        if draft.tiers.is_empty() {
            draft.capacity
        } else {
            0
        }
    } else {
        draft.tiers.iter().map(|t| t.capacity).sum()
    };
    let starts_at = time(draft.starts_at.as_ref());
    let applied = sqlx::query!(
        r#"INSERT INTO events (event_id, version, listed, status, organizer_id, title, description, category, tags,
             venue_name, city, starts_at, ends_at, time_zone, online, location, latitude, longitude, capacity, cover_image_id,
             local_date)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
             CASE WHEN $15 THEN NULL ELSE ST_SetSRID(ST_MakePoint($17, $16), 4326)::geography END,
             $16, $17, $18, $19, $20)
           ON CONFLICT (event_id) DO UPDATE SET
             version = EXCLUDED.version, listed = EXCLUDED.listed, status = EXCLUDED.status,
             organizer_id = EXCLUDED.organizer_id, title = EXCLUDED.title, description = EXCLUDED.description,
             category = EXCLUDED.category, tags = EXCLUDED.tags, venue_name = EXCLUDED.venue_name,
             city = EXCLUDED.city, starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at,
             time_zone = EXCLUDED.time_zone, local_date = EXCLUDED.local_date, online = EXCLUDED.online, location = EXCLUDED.location,
             latitude = EXCLUDED.latitude, longitude = EXCLUDED.longitude, capacity = EXCLUDED.capacity,
             cover_image_id = EXCLUDED.cover_image_id, updated_at = now()
           WHERE events.version < EXCLUDED.version
           RETURNING (xmax = 0) AS "inserted!""#,
        id,
        event.version,
        listed,
        status.as_str_name(),
        organizer,
        draft.title,
        draft.description,
        draft.category.to_lowercase(),
        &tags,
        venue.name,
        venue.city,
        starts_at,
        time(draft.ends_at.as_ref()),
        draft.time_zone,
        online,
        venue.latitude,
        venue.longitude,
        capacity,
        draft.cover_image_ids.first().cloned().unwrap_or_default(),
        local_date(starts_at, &draft.time_zone),
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(applied) = applied else {
        return Ok(false);
    };
    if applied.inserted {
        // The join stream may have run ahead of the event stream: start
        // from the registrations already seen.
        sqlx::query!(
            "UPDATE events e SET
               confirmed = r.confirmed, waitlisted = r.waitlisted, heat = r.heat
             FROM (SELECT count(*) FILTER (WHERE status IN ('confirmed', 'checked_in'))::int AS confirmed,
                          count(*) FILTER (WHERE status = 'waitlisted')::int AS waitlisted,
                          max(mh) + ln(sum(exp(h - mh))) AS heat
                   FROM (SELECT status, extract(epoch FROM joined_at - to_timestamp($2::float8))::float8 / $3::float8 AS h,
                                max(extract(epoch FROM joined_at - to_timestamp($2::float8))::float8 / $3::float8) OVER () AS mh
                         FROM registrations WHERE event_id = $1) j) r
             WHERE e.event_id = $1 AND r.heat IS NOT NULL",
            id,
            HEAT_EPOCH as f64,
            HEAT_TAU_SECS
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(true)
}

/// The date `at` falls on in `zone` (UTC for a zone chrono-tz does not know,
/// which the event service never lets through).
fn local_date(at: DateTime<Utc>, zone: &str) -> chrono::NaiveDate {
    match zone.parse::<chrono_tz::Tz>() {
        Ok(tz) => at.with_timezone(&tz).date_naive(),
        Err(_) => at.date_naive(),
    }
}

/// Takes `counts` if they are newer than the stored ones.
async fn apply_counts(
    conn: &mut PgConnection,
    counts: &jn::GetCountsResponse,
    seq: Uuid,
) -> anyhow::Result<bool> {
    let Ok(id) = counts.event_id.parse::<Uuid>() else {
        return Ok(false);
    };
    let n = sqlx::query!(
        "UPDATE events SET confirmed = $2, waitlisted = $3, counts_seq = $4
         WHERE event_id = $1 AND (counts_seq IS NULL OR counts_seq < $4)",
        id,
        counts.confirmed,
        counts.waitlisted,
        seq
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Records a registration's latest status; its first sight as a join adds
/// heat to its event. Returns whether anything changed.
async fn record_registration(
    conn: &mut PgConnection,
    r: &jn::Registration,
    seq: Uuid,
) -> anyhow::Result<bool> {
    let (Ok(id), Ok(event), Ok(user)) = (
        r.id.parse::<Uuid>(),
        r.event_id.parse::<Uuid>(),
        r.user_id.parse::<Uuid>(),
    ) else {
        return Ok(false);
    };
    let status = match jn::RegistrationStatus::try_from(r.status).unwrap_or_default() {
        jn::RegistrationStatus::Confirmed => "confirmed",
        jn::RegistrationStatus::Waitlisted => "waitlisted",
        jn::RegistrationStatus::CheckedIn => "checked_in",
        _ => "cancelled",
    };
    let joined_at = time(r.created_at.as_ref());
    let row = sqlx::query!(
        r#"INSERT INTO registrations (registration_id, event_id, user_id, status, joined_at, seq)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (registration_id) DO UPDATE SET status = EXCLUDED.status, seq = EXCLUDED.seq
           WHERE registrations.seq < EXCLUDED.seq
           RETURNING (xmax = 0) AS "inserted!""#,
        id,
        event,
        user,
        status,
        joined_at,
        seq
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(false);
    };
    if row.inserted && status != "cancelled" {
        // ln(e^heat + e^h), computed without overflow.
        sqlx::query!(
            "UPDATE events SET heat = CASE WHEN heat IS NULL THEN $2
               ELSE greatest(heat, $2) + ln(1 + exp(-abs(heat - $2))) END
             WHERE event_id = $1",
            event,
            heat_of(joined_at)
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(true)
}

/// The stream consumer's handler: applies, and after the commit tells the
/// cache that listings changed.
pub struct Projection {
    pub cache: Arc<Cache>,
}

impl Handler for Projection {
    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        env: &'a Envelope,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            apply(conn, env).await?;
            Ok(())
        })
    }

    fn committed<'a>(&'a self, env: &'a Envelope) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if env.producer == "event" || env.r#type.starts_with("event.") {
                self.cache.invalidate().await;
            }
        })
    }
}
