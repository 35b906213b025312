//! What join knows of events: snapshots built from the event stream, with a
//! synchronous fallback to the event service when one is missing, and the
//! waitlist promotion that capacity growth triggers.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use prost::Message;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use cityevents_messaging::consumer::Handler;
use cityevents_messaging::{Envelope, outbox};
use cityevents_proto::cityevents::event::v1::{
    self as ev, event_service_client::EventServiceClient,
};
use cityevents_proto::cityevents::join::v1 as pb;
use cityevents_runtime::grpc::client::GrpcChannel;
use cityevents_runtime::{Error, Result};

use crate::status::EventStatus;
use crate::store;

/// The implicit tier of an event without tiers.
pub const DEFAULT_TIER: &str = "default";

/// A time from the event service (validated there).
fn time(t: Option<&prost_types::Timestamp>) -> DateTime<Utc> {
    cityevents_runtime::parse::time("", t).unwrap_or_default()
}

/// Applies `event` if it is newer than what is stored; promotes waitlisted
/// registrations into any room a capacity increase made. A tier missing from
/// the new draft is marked removed: it takes no new joins, its holders keep
/// their places (and count against the event's capacity), and its counts
/// leave `GetCounts`. Returns whether it was applied.
pub async fn apply(conn: &mut PgConnection, event: &ev::Event) -> Result<bool> {
    let id: Uuid = event
        .id
        .parse()
        .map_err(|_| Error::invalid("event.id", "is not a valid id"))?;
    let draft = event.draft.clone().unwrap_or_default();
    let mut organizers: Vec<Uuid> = event
        .co_organizer_ids
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    organizers.extend(event.organizer_id.parse::<Uuid>().ok());
    let questions = ev::EventDraft {
        questions: draft.questions.clone(),
        ..Default::default()
    }
    .encode_to_vec();
    let tiers: Vec<(String, i32)> = if draft.tiers.is_empty() {
        vec![(DEFAULT_TIER.to_owned(), draft.capacity)]
    } else {
        draft
            .tiers
            .iter()
            .map(|t| (t.id.clone(), t.capacity))
            .collect()
    };
    let applied = sqlx::query!(
        r#"INSERT INTO event_snapshots
             (event_id, version, status, hidden, title, starts_at, ends_at, waitlist_cap, organizer_ids, questions, default_tier)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
           ON CONFLICT (event_id) DO UPDATE SET
             version = EXCLUDED.version, status = EXCLUDED.status, hidden = EXCLUDED.hidden, title = EXCLUDED.title,
             starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at, waitlist_cap = EXCLUDED.waitlist_cap,
             organizer_ids = EXCLUDED.organizer_ids, questions = EXCLUDED.questions,
             default_tier = EXCLUDED.default_tier, updated_at = now()
           WHERE event_snapshots.version < EXCLUDED.version"#,
        id,
        event.version,
        EventStatus::of(event).as_str(),
        event.hidden,
        draft.title,
        time(draft.starts_at.as_ref()),
        time(draft.ends_at.as_ref()),
        draft.waitlist_cap,
        &organizers,
        questions,
        tiers[0].0
    )
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if !applied {
        return Ok(false);
    }
    let (ids, caps): (Vec<String>, Vec<i32>) = tiers.into_iter().unzip();
    let mut resized = sqlx::query_scalar!(
        "INSERT INTO tiers (event_id, tier_id, capacity) SELECT $1, * FROM UNNEST($2::text[], $3::int[])
         ON CONFLICT (event_id, tier_id) DO UPDATE SET capacity = EXCLUDED.capacity, removed = false
         WHERE tiers.capacity <> EXCLUDED.capacity OR tiers.removed
         RETURNING tier_id",
        id,
        &ids,
        &caps
    )
    .fetch_all(&mut *conn)
    .await?;
    let removed = sqlx::query_scalar!(
        "UPDATE tiers SET removed = true WHERE event_id = $1 AND NOT removed AND NOT (tier_id = ANY($2))
         RETURNING tier_id",
        id,
        &ids
    )
    .fetch_all(&mut *conn)
    .await?;
    resized.extend(removed);
    let promoted: Vec<_> = store::promote_all(conn, id)
        .await?
        .into_iter()
        .map(|r| ("join.promoted", r))
        .collect();
    // Promotions carry the new counts; otherwise say that capacity changed.
    if !promoted.is_empty() {
        store::emit(conn, id, &promoted).await?;
    } else if !resized.is_empty() {
        let counts = store::counts(conn, id).await?;
        outbox::enqueue(
            conn,
            "join.counts_changed",
            id,
            &pb::CountsChanged {
                counts: Some(counts),
            },
        )
        .await?;
    }
    Ok(true)
}

/// Keeps snapshots current from `event.*` messages.
pub struct SnapshotHandler;

impl Handler for SnapshotHandler {
    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        env: &'a Envelope,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let event = match env.r#type.as_str() {
                "event.cancelled" => ev::EventCancelled::decode(env.payload.as_slice())?.event,
                "event.hidden" | "event.unhidden" => {
                    ev::EventModerated::decode(env.payload.as_slice())?.event
                }
                _ => ev::EventChanged::decode(env.payload.as_slice())?.event,
            };
            let event = event.ok_or_else(|| anyhow::anyhow!("{} without an event", env.r#type))?;
            // The error keeps its cause (not the caller-facing text).
            apply(conn, &event).await.map_err(anyhow::Error::from)?;
            Ok(())
        })
    }
}

/// Fetches a snapshot the stream has not delivered yet from the event service.
pub struct Fallback {
    pool: PgPool,
    events: Option<EventServiceClient<GrpcChannel>>,
    /// Events known to have a snapshot (snapshots are never deleted), so the
    /// hot path asks the database once per event, not once per join.
    known: std::sync::RwLock<std::collections::HashSet<Uuid>>,
    /// Bounds first-sight lookups, so a rush on a new event does not drain
    /// the pool: the first lookup fills `known`, the rest find it there.
    lookups: tokio::sync::Semaphore,
    /// Ids recently found to be no event, answered NOT_FOUND without a
    /// lookup for [`MISSING_TTL`], so random ids cannot hold the lookups
    /// that first joins of real events need. Bounded by [`MISSING_CAP`].
    missing: std::sync::Mutex<std::collections::HashMap<Uuid, std::time::Instant>>,
}

/// How long an id found to be no event is remembered.
const MISSING_TTL: std::time::Duration = std::time::Duration::from_secs(5);
/// Ids remembered as missing at most.
const MISSING_CAP: usize = 10_000;

impl Fallback {
    pub fn new(pool: PgPool, events: Option<EventServiceClient<GrpcChannel>>) -> Self {
        Self {
            pool,
            events,
            known: Default::default(),
            lookups: tokio::sync::Semaphore::new(4),
            missing: Default::default(),
        }
    }

    /// Makes sure a snapshot of `id` exists, or answers NOT_FOUND.
    pub async fn ensure(&self, id: Uuid) -> Result<()> {
        let known = || self.known.read().is_ok_and(|k| k.contains(&id));
        if known() {
            return Ok(());
        }
        if self.recently_missing(id) {
            return Err(Error::no_such_event());
        }
        let _permit = self.lookups.acquire().await.map_err(Error::internal)?;
        if known() {
            return Ok(());
        }
        if let Err(e) = self.fetch(id).await {
            if e.reason() == "EVENT_NOT_FOUND" {
                self.remember_missing(id);
            }
            return Err(e);
        }
        if let Ok(mut k) = self.known.write() {
            k.insert(id);
        }
        Ok(())
    }

    fn recently_missing(&self, id: Uuid) -> bool {
        let missing = self.missing.lock().unwrap_or_else(|e| e.into_inner());
        missing.get(&id).is_some_and(|t| t.elapsed() < MISSING_TTL)
    }

    fn remember_missing(&self, id: Uuid) {
        let mut missing = self.missing.lock().unwrap_or_else(|e| e.into_inner());
        if missing.len() >= MISSING_CAP {
            missing.retain(|_, t| t.elapsed() < MISSING_TTL);
            if missing.len() >= MISSING_CAP {
                missing.clear();
            }
        }
        missing.insert(id, std::time::Instant::now());
    }

    async fn fetch(&self, id: Uuid) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        if store::snapshot_exists(&mut conn, id).await? {
            return Ok(());
        }
        drop(conn);
        let unknown = Error::no_such_event;
        let Some(client) = &self.events else {
            return Err(unknown());
        };
        let reply = client
            .clone()
            .get_event(ev::GetEventRequest {
                event_id: id.to_string(),
            })
            .await;
        let event = match reply {
            Ok(r) => r.into_inner().event.ok_or_else(unknown)?,
            Err(s) if s.code() == tonic::Code::NotFound => return Err(unknown()),
            Err(s) => return Err(Error::unavailable(anyhow::anyhow!("event GetEvent: {s}"))),
        };
        let mut tx = self.pool.begin().await?;
        apply(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(())
    }
}
