//! The read model, built only from the stream: `event.*` upserts an
//! event's card (newer versions only), `join.*` moves its counts (newer
//! messages only) and records registrations (the first sight of one adds
//! to the event's heat). Every apply is idempotent, so the stream can be
//! replayed from its start any number of times ([`crate::rebuild`]).
//!
//! Messages are applied in batches, a few set-based statements a batch
//! whatever its size: the live consumer applies batches of one, a rebuild
//! batches of hundreds.

use std::collections::HashMap;
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
/// Separates tags in one text cell on their way into the database (arrays
/// of arrays must be rectangular there).
const TAG_SEPARATOR: &str = "\u{1f}";

/// The log-space heat one join at `at` adds.
fn heat_of(at: DateTime<Utc>) -> f64 {
    (at.timestamp() - HEAT_EPOCH) as f64 / HEAT_TAU_SECS
}

/// ln(e^a + e^b) without overflow.
fn log_add(a: f64, b: f64) -> f64 {
    a.max(b) + (-(a - b).abs()).exp().ln_1p()
}

fn time(t: Option<&prost_types::Timestamp>) -> DateTime<Utc> {
    cityevents_runtime::parse::time("", t).unwrap_or_default()
}

/// What applying messages changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Changed {
    /// Cards written (what a listing shows, or whether it shows).
    pub listings: u64,
    /// Registrations and counts written.
    pub stats: u64,
}

impl Changed {
    pub fn any(self) -> bool {
        self.listings + self.stats > 0
    }
}

/// The messages of a batch, decoded and sorted by kind.
#[derive(Default)]
struct Batch {
    events: HashMap<Uuid, ev::Event>,
    registrations: HashMap<Uuid, (jn::Registration, Uuid)>,
    counts: HashMap<Uuid, (jn::GetCountsResponse, Uuid)>,
}

impl Batch {
    /// Keeps, per event or registration, only the newest message.
    fn add(&mut self, env: &Envelope) -> anyhow::Result<()> {
        let payload = env.payload.as_slice();
        let Some((producer, kind)) = env.r#type.split_once('.') else {
            anyhow::bail!("type {:?} has no producer", env.r#type);
        };
        match producer {
            "event" => {
                let (event, _) = cityevents_proto::event_snapshot(&env.r#type, payload)?
                    .ok_or_else(|| anyhow::anyhow!("{} without an event", env.r#type))?;
                let id: Uuid = event.id.parse()?;
                if self
                    .events
                    .get(&id)
                    .is_none_or(|e| e.version < event.version)
                {
                    self.events.insert(id, event);
                }
            }
            "join" => {
                let seq: Uuid = env.id.parse()?;
                let (registration, counts) = if kind == "counts_changed" {
                    (None, jn::CountsChanged::decode(payload)?.counts)
                } else {
                    let m = jn::RegistrationChanged::decode(payload)?;
                    (m.registration, m.counts)
                };
                if let Some(r) = registration
                    && let Ok(id) = r.id.parse::<Uuid>()
                    && self.registrations.get(&id).is_none_or(|(_, s)| *s < seq)
                {
                    self.registrations.insert(id, (r, seq));
                }
                if let Some(c) = counts
                    && let Ok(id) = c.event_id.parse::<Uuid>()
                    && self.counts.get(&id).is_none_or(|(_, s)| *s < seq)
                {
                    self.counts.insert(id, (c, seq));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Applies `envs` (of either stream, in any order) in the caller's
/// transaction.
pub async fn apply(conn: &mut PgConnection, envs: &[Envelope]) -> anyhow::Result<Changed> {
    let mut batch = Batch::default();
    for env in envs {
        batch.add(env)?;
    }
    let listings = upsert_events(conn, batch.events.values()).await?;
    let mut stats = record_registrations(conn, batch.registrations.values()).await?;
    stats += apply_counts(conn, batch.counts.values()).await?;
    Ok(Changed { listings, stats })
}

/// The card columns of one event, as the database takes them.
struct Card {
    id: Uuid,
    version: i64,
    listed: bool,
    status: String,
    organizer: Uuid,
    title: String,
    description: String,
    category: String,
    tags: String,
    venue: String,
    city: String,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    time_zone: String,
    local_date: chrono::NaiveDate,
    online: bool,
    latitude: f64,
    longitude: f64,
    capacity: i32,
    cover: String,
}

impl Card {
    fn of(event: &ev::Event) -> anyhow::Result<Self> {
        let draft = event.draft.clone().unwrap_or_default();
        let status = ev::EventStatus::try_from(event.status).unwrap_or_default();
        let (venue, online) = match &draft.location {
            Some(Location::Venue(v)) => (v.clone(), false),
            Some(Location::OnlineUrl(_)) => (ev::Venue::default(), true),
            None => (ev::Venue::default(), false),
        };
        // The event's capacity: its tiers' sum, unlimited if any tier is.
        let capacity = if draft.tiers.is_empty() {
            draft.capacity
        } else if draft.tiers.iter().any(|t| t.capacity == 0) {
            0
        } else {
            draft.tiers.iter().map(|t| t.capacity).sum()
        };
        let starts_at = time(draft.starts_at.as_ref());
        Ok(Self {
            id: event.id.parse()?,
            version: event.version,
            listed: status == ev::EventStatus::Published
                && !event.hidden
                && draft.visibility() != ev::Visibility::Unlisted,
            status: status.as_str_name().to_owned(),
            organizer: event.organizer_id.parse().unwrap_or_default(),
            tags: draft
                .tags
                .iter()
                .map(|t| t.to_lowercase().replace(TAG_SEPARATOR, " "))
                .collect::<Vec<_>>()
                .join(TAG_SEPARATOR),
            category: draft.category.to_lowercase(),
            venue: venue.name,
            city: venue.city,
            starts_at,
            ends_at: time(draft.ends_at.as_ref()),
            local_date: local_date(starts_at, &draft.time_zone),
            time_zone: draft.time_zone,
            online,
            latitude: venue.latitude,
            longitude: venue.longitude,
            capacity,
            cover: draft.cover_image_ids.first().cloned().unwrap_or_default(),
            title: draft.title,
            description: draft.description,
        })
    }

    /// The words a typo may be corrected to.
    fn words(&self) -> impl Iterator<Item = &str> {
        [self.title.as_str(), &self.tags, &self.venue, &self.city]
            .into_iter()
            .flat_map(|s| s.split(|c: char| !c.is_alphanumeric()))
            .filter(|w| w.chars().count() >= 3)
    }
}

/// The date `at` falls on in `zone` (UTC for a zone chrono-tz does not know,
/// which the event service never lets through).
fn local_date(at: DateTime<Utc>, zone: &str) -> chrono::NaiveDate {
    match zone.parse::<chrono_tz::Tz>() {
        Ok(tz) => at.with_timezone(&tz).date_naive(),
        Err(_) => at.date_naive(),
    }
}

/// Upserts the cards whose version is newer than the stored one; adds
/// their words to the lexicon. Returns how many were written.
async fn upsert_events<'a>(
    conn: &mut PgConnection,
    events: impl Iterator<Item = &'a ev::Event>,
) -> anyhow::Result<u64> {
    let cards: Vec<Card> = events.map(Card::of).collect::<anyhow::Result<_>>()?;
    if cards.is_empty() {
        return Ok(0);
    }
    let mut words: Vec<String> = cards
        .iter()
        .flat_map(|c| c.words().map(str::to_lowercase).collect::<Vec<_>>())
        .collect();
    words.sort_unstable();
    words.dedup();
    macro_rules! column {
        ($f:ident) => {
            cards.iter().map(|c| c.$f.clone()).collect::<Vec<_>>()
        };
    }
    let written = sqlx::query!(
        r#"INSERT INTO events (event_id, version, listed, status, organizer_id, title, description, category, tags,
             venue_name, city, starts_at, ends_at, time_zone, local_date, online, location, latitude, longitude,
             capacity, cover_image_id)
           SELECT id, version, listed, status, organizer, title, description, category,
             CASE WHEN tags = '' THEN '{}'::text[] ELSE string_to_array(tags, E'\x1f') END,
             venue, city, starts_at, ends_at, time_zone, local_date, online,
             CASE WHEN online THEN NULL ELSE ST_SetSRID(ST_MakePoint(longitude, latitude), 4326)::geography END,
             latitude, longitude, capacity, cover
           FROM UNNEST($1::uuid[], $2::int8[], $3::bool[], $4::text[], $5::uuid[], $6::text[], $7::text[], $8::text[],
             $9::text[], $10::text[], $11::text[], $12::timestamptz[], $13::timestamptz[], $14::text[], $15::date[],
             $16::bool[], $17::float8[], $18::float8[], $19::int4[], $20::text[])
             AS u(id, version, listed, status, organizer, title, description, category, tags, venue, city,
                  starts_at, ends_at, time_zone, local_date, online, latitude, longitude, capacity, cover)
           ON CONFLICT (event_id) DO UPDATE SET
             version = EXCLUDED.version, listed = EXCLUDED.listed, status = EXCLUDED.status,
             organizer_id = EXCLUDED.organizer_id, title = EXCLUDED.title, description = EXCLUDED.description,
             category = EXCLUDED.category, tags = EXCLUDED.tags, venue_name = EXCLUDED.venue_name,
             city = EXCLUDED.city, starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at,
             time_zone = EXCLUDED.time_zone, local_date = EXCLUDED.local_date, online = EXCLUDED.online,
             location = EXCLUDED.location, latitude = EXCLUDED.latitude, longitude = EXCLUDED.longitude,
             capacity = EXCLUDED.capacity, cover_image_id = EXCLUDED.cover_image_id, updated_at = now()
           WHERE events.version < EXCLUDED.version"#,
        &column!(id),
        &column!(version),
        &column!(listed),
        &column!(status),
        &column!(organizer),
        &column!(title),
        &column!(description),
        &column!(category),
        &column!(tags),
        &column!(venue),
        &column!(city),
        &column!(starts_at),
        &column!(ends_at),
        &column!(time_zone),
        &column!(local_date),
        &column!(online),
        &column!(latitude),
        &column!(longitude),
        &column!(capacity),
        &column!(cover),
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if written > 0 {
        sqlx::query!(
            "INSERT INTO lexicon (word) SELECT DISTINCT lower(f_unaccent(w)) FROM unnest($1::text[]) w
             ON CONFLICT DO NOTHING",
            &words
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(written)
}

/// Takes each event's counts if newer than the stored ones.
async fn apply_counts<'a>(
    conn: &mut PgConnection,
    counts: impl Iterator<Item = &'a (jn::GetCountsResponse, Uuid)>,
) -> anyhow::Result<u64> {
    let mut ids = Vec::new();
    let (mut confirmed, mut waitlisted, mut seqs) = (Vec::new(), Vec::new(), Vec::new());
    for (c, seq) in counts {
        let Ok(id) = c.event_id.parse::<Uuid>() else {
            continue;
        };
        ids.push(id);
        confirmed.push(c.confirmed);
        waitlisted.push(c.waitlisted);
        seqs.push(*seq);
    }
    if ids.is_empty() {
        return Ok(0);
    }
    let n = sqlx::query!(
        "INSERT INTO event_stats (event_id, confirmed, waitlisted, counts_seq)
         SELECT * FROM UNNEST($1::uuid[], $2::int4[], $3::int4[], $4::uuid[])
         ON CONFLICT (event_id) DO UPDATE SET
           confirmed = EXCLUDED.confirmed, waitlisted = EXCLUDED.waitlisted, counts_seq = EXCLUDED.counts_seq
         WHERE event_stats.counts_seq IS NULL OR event_stats.counts_seq < EXCLUDED.counts_seq",
        &ids,
        &confirmed,
        &waitlisted,
        &seqs
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n)
}

/// Records registrations' latest statuses; the first sight of each (not
/// cancelled) adds to its event's heat. Returns how many rows changed.
async fn record_registrations<'a>(
    conn: &mut PgConnection,
    registrations: impl Iterator<Item = &'a (jn::Registration, Uuid)>,
) -> anyhow::Result<u64> {
    let (mut ids, mut events, mut users, mut statuses, mut joined, mut seqs) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for (r, seq) in registrations {
        let (Ok(id), Ok(event), Ok(user)) = (
            r.id.parse::<Uuid>(),
            r.event_id.parse::<Uuid>(),
            r.user_id.parse::<Uuid>(),
        ) else {
            continue;
        };
        let status = match jn::RegistrationStatus::try_from(r.status).unwrap_or_default() {
            jn::RegistrationStatus::Confirmed => "confirmed",
            jn::RegistrationStatus::Waitlisted => "waitlisted",
            jn::RegistrationStatus::CheckedIn => "checked_in",
            _ => "cancelled",
        };
        ids.push(id);
        events.push(event);
        users.push(user);
        statuses.push(status.to_owned());
        joined.push(time(r.created_at.as_ref()));
        seqs.push(*seq);
    }
    if ids.is_empty() {
        return Ok(0);
    }
    let rows = sqlx::query!(
        r#"INSERT INTO registrations (registration_id, event_id, user_id, status, joined_at, seq)
           SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::timestamptz[], $6::uuid[])
           ON CONFLICT (registration_id) DO UPDATE SET status = EXCLUDED.status, seq = EXCLUDED.seq
           WHERE registrations.seq < EXCLUDED.seq
           RETURNING event_id, joined_at, status, (xmax = 0) AS "inserted!""#,
        &ids,
        &events,
        &users,
        &statuses,
        &joined,
        &seqs
    )
    .fetch_all(&mut *conn)
    .await?;
    // Per event, the log-space sum of what its new joins add.
    let mut heat: HashMap<Uuid, f64> = HashMap::new();
    for r in rows
        .iter()
        .filter(|r| r.inserted && r.status != "cancelled")
    {
        let h = heat_of(r.joined_at);
        heat.entry(r.event_id)
            .and_modify(|sum| *sum = log_add(*sum, h))
            .or_insert(h);
    }
    if !heat.is_empty() {
        let (ids, adds): (Vec<Uuid>, Vec<f64>) = heat.into_iter().unzip();
        sqlx::query!(
            "INSERT INTO event_stats (event_id, heat) SELECT * FROM UNNEST($1::uuid[], $2::float8[])
             ON CONFLICT (event_id) DO UPDATE SET heat = CASE WHEN event_stats.heat IS NULL THEN EXCLUDED.heat
               ELSE greatest(event_stats.heat, EXCLUDED.heat) + ln(1 + exp(-abs(event_stats.heat - EXCLUDED.heat))) END",
            &ids,
            &adds
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(rows.len() as u64)
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
            apply(conn, std::slice::from_ref(env)).await?;
            Ok(())
        })
    }

    fn committed<'a>(&'a self, env: &'a Envelope) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if env.r#type.starts_with("event.") {
                self.cache.invalidate().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heat_adds_in_log_space() {
        let (a, b) = (700.0, 700.0);
        assert!((log_add(a, b) - (700.0 + 2f64.ln())).abs() < 1e-9);
        assert!(
            (log_add(0.0, -1000.0)).abs() < 1e-9,
            "a far smaller term adds nothing"
        );
    }
}
