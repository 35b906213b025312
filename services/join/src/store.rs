//! The join database outside the batched join path: leaving, promotion,
//! check-in, reads. Every change to an event's registrations locks its
//! snapshot row first, so they serialise with the join batches.

use chrono::{DateTime, Utc};
use prost::Message;
use sqlx::PgConnection;
use uuid::Uuid;

use cityevents_messaging::outbox;
use cityevents_proto::cityevents::join::v1 as pb;
use cityevents_runtime::{Error, ErrorCode, Result};

use crate::status::{EventStatus, RegStatus};

/// A row of `registrations`.
#[derive(Debug, Clone)]
pub struct RegRow {
    pub id: Uuid,
    pub event_id: Uuid,
    pub user_id: Uuid,
    pub tier_id: String,
    pub status: RegStatus,
    pub waitlist_seq: Option<i64>,
    pub answers: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

use cityevents_runtime::parse::timestamp as ts;

/// A registration read with its waitlist position (0 for a place).
pub struct PositionedRow {
    pub id: Uuid,
    pub event_id: Uuid,
    pub user_id: Uuid,
    pub tier_id: String,
    pub status: RegStatus,
    pub waitlist_seq: Option<i64>,
    pub answers: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub position: i64,
}

impl PositionedRow {
    /// The row and its position.
    pub fn split(self) -> (RegRow, i32) {
        let position = i32::try_from(self.position).unwrap_or(i32::MAX);
        let row = RegRow {
            id: self.id,
            event_id: self.event_id,
            user_id: self.user_id,
            tier_id: self.tier_id,
            status: self.status,
            waitlist_seq: self.waitlist_seq,
            answers: self.answers,
            created_at: self.created_at,
            updated_at: self.updated_at,
        };
        (row, position)
    }
}

impl RegRow {
    /// The message, without ticket code (added by the API for its owner).
    pub fn to_pb(&self, waitlist_position: i32) -> pb::Registration {
        let answers = pb::JoinRequest::decode(self.answers.as_slice())
            .map(|r| r.answers)
            .unwrap_or_default();
        pb::Registration {
            id: self.id.to_string(),
            event_id: self.event_id.to_string(),
            user_id: self.user_id.to_string(),
            tier_id: self.tier_id.clone(),
            status: self.status.to_pb().into(),
            waitlist_position,
            answers,
            ticket_code: String::new(),
            created_at: Some(ts(self.created_at)),
            updated_at: Some(ts(self.updated_at)),
        }
    }

    /// The payload of a domain event about this registration.
    pub fn changed(
        &self,
        event_title: &str,
        counts: pb::GetCountsResponse,
    ) -> pb::RegistrationChanged {
        pb::RegistrationChanged {
            registration: Some(self.to_pb(0)),
            event_title: event_title.to_owned(),
            counts: Some(counts),
        }
    }
}

#[tracing::instrument(name = "db.snapshot_exists", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn snapshot_exists(conn: &mut PgConnection, id: Uuid) -> Result<bool> {
    Ok(sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM event_snapshots WHERE event_id = $1) AS "e!""#,
        id
    )
    .fetch_one(conn)
    .await?)
}

/// Who organizes the event (from its snapshot).
#[tracing::instrument(name = "db.organizers", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn organizers(conn: &mut PgConnection, id: Uuid) -> Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "SELECT organizer_ids FROM event_snapshots WHERE event_id = $1",
        id
    )
    .fetch_optional(conn)
    .await?
    .ok_or_else(Error::no_such_event)
}

/// Moves the heads of the tier's waitlist into whatever room it has, in
/// waitlist order; the caller [`emit`]s `join.promoted` for each. The room is
/// the tier's and the event's, whichever is smaller: the event's capacity is
/// the sum of its offered tiers, and places held in removed tiers count
/// against it. A removed tier has no room.
#[tracing::instrument(name = "db.promote", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn promote(conn: &mut PgConnection, event: Uuid, tier: &str) -> Result<Vec<RegRow>> {
    let promoted = sqlx::query_as!(
        RegRow,
        r#"WITH ev AS (
               SELECT bool_or(NOT removed AND capacity = 0) AS unlimited,
                      COALESCE(sum(capacity) FILTER (WHERE NOT removed), 0) AS cap,
                      COALESCE(sum(confirmed), 0) AS confirmed
               FROM tiers WHERE event_id = $1),
           room AS (
               SELECT LEAST(
                   CASE WHEN t.removed THEN 0 WHEN t.capacity = 0 THEN 2147483647
                        ELSE GREATEST(t.capacity - t.confirmed, 0) END,
                   CASE WHEN ev.unlimited THEN 2147483647 ELSE GREATEST(ev.cap - ev.confirmed, 0) END) AS n
               FROM tiers t, ev WHERE t.event_id = $1 AND t.tier_id = $2),
           heads AS (
               SELECT id FROM registrations
               WHERE event_id = $1 AND tier_id = $2 AND status = 'waitlisted'
               ORDER BY waitlist_seq LIMIT (SELECT n FROM room) FOR UPDATE)
           UPDATE registrations r SET status = 'confirmed', waitlist_seq = NULL, updated_at = now()
           FROM heads WHERE r.id = heads.id
           RETURNING r.id, r.event_id, r.user_id, r.tier_id, r.status AS "status: RegStatus", r.waitlist_seq, r.answers, r.created_at, r.updated_at"#,
        event,
        tier
    )
    .fetch_all(&mut *conn)
    .await?;
    let n = promoted.len();
    if n == 0 {
        return Ok(promoted);
    }
    sqlx::query!(
        "UPDATE tiers SET confirmed = confirmed + $3, waitlisted = waitlisted - $3 WHERE event_id = $1 AND tier_id = $2",
        event,
        tier,
        n as i32
    )
    .execute(&mut *conn)
    .await?;
    Ok(promoted)
}

/// [`promote`] in every offered tier of the event, in tier order: a place
/// freed anywhere may be the event-wide room another tier's waitlist needs.
#[tracing::instrument(name = "db.promote_all", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn promote_all(conn: &mut PgConnection, event: Uuid) -> Result<Vec<RegRow>> {
    let tiers = sqlx::query_scalar!(
        "SELECT tier_id FROM tiers WHERE event_id = $1 AND NOT removed ORDER BY tier_id",
        event
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut promoted = Vec::new();
    for tier in &tiers {
        promoted.extend(promote(conn, event, tier).await?);
    }
    Ok(promoted)
}

/// Writes a `RegistrationChanged` per change, each with the event's title
/// and its counts as this transaction leaves them.
#[tracing::instrument(name = "db.emit", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn emit(
    conn: &mut PgConnection,
    event: Uuid,
    changes: &[(&'static str, RegRow)],
) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let EventCounts { title, counts, .. } = read_counts(conn, event).await?;
    let events = changes
        .iter()
        .map(|(event_type, row)| outbox::NewEvent {
            event_type,
            aggregate_id: row.id.to_string(),
            payload: row.changed(&title, counts.clone()).encode_to_vec(),
            traceparent: String::new(),
        })
        .collect();
    outbox::enqueue_many(conn, events).await
}

/// Cancels the user's registration (leave, or an organizer's removal) and
/// promotes the head of the waitlist in the same transaction.
#[tracing::instrument(name = "db.cancel", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn cancel(
    conn: &mut PgConnection,
    event: Uuid,
    user: Uuid,
    event_type: &'static str,
) -> Result<Cancelled> {
    sqlx::query!(
        "SELECT event_id FROM event_snapshots WHERE event_id = $1 FOR UPDATE",
        event
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(Error::no_such_event)?;
    let before = sqlx::query_as!(
        RegRow,
        r#"SELECT id, event_id, user_id, tier_id, status AS "status: RegStatus", waitlist_seq, answers, created_at, updated_at
         FROM registrations WHERE event_id = $1 AND user_id = $2 FOR UPDATE"#,
        event,
        user
    )
    .fetch_optional(&mut *conn)
    .await?
    .filter(|r| r.status.is_active())
    .ok_or_else(|| Error::new(ErrorCode::NotFound, "no registration for this event").with_reason("NOT_REGISTERED"))?;
    if before.status == RegStatus::CheckedIn {
        return Err(Error::new(
            ErrorCode::FailedPrecondition,
            "already checked in; the registration cannot be cancelled",
        ));
    }
    let row = sqlx::query_as!(
        RegRow,
        r#"UPDATE registrations SET status = 'cancelled', waitlist_seq = NULL, updated_at = now() WHERE id = $1
         RETURNING id, event_id, user_id, tier_id, status AS "status: RegStatus", waitlist_seq, answers, created_at, updated_at"#,
        before.id
    )
    .fetch_one(&mut *conn)
    .await?;
    let (confirmed, waitlisted) = if before.status == RegStatus::Confirmed {
        (1, 0)
    } else {
        (0, 1)
    };
    sqlx::query!(
        "UPDATE tiers SET confirmed = confirmed - $3, waitlisted = waitlisted - $4 WHERE event_id = $1 AND tier_id = $2",
        event,
        before.tier_id,
        confirmed,
        waitlisted
    )
    .execute(&mut *conn)
    .await?;
    let promoted = if confirmed == 1 {
        promote_all(conn, event).await?
    } else {
        Vec::new()
    };
    let promotions = promoted.len();
    let mut changes = vec![(event_type, row.clone())];
    changes.extend(promoted.into_iter().map(|r| ("join.promoted", r)));
    emit(conn, event, &changes).await?;
    Ok(Cancelled { row, promotions })
}

/// A cancelled registration, and how many people it moved off the waitlist.
pub struct Cancelled {
    pub row: RegRow,
    pub promotions: usize,
}

/// Confirmed, waitlisted and remaining places per tier.
#[tracing::instrument(name = "db.counts", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn counts(conn: &mut PgConnection, event: Uuid) -> Result<pb::GetCountsResponse> {
    Ok(read_counts(conn, event).await?.counts)
}

/// An event's counts with what decides who may read them.
pub struct EventCounts {
    pub title: String,
    /// Whether outsiders may see the event (published or cancelled, not
    /// hidden); otherwise only its organizers and moderators may.
    pub public: bool,
    pub organizers: Vec<Uuid>,
    pub counts: pb::GetCountsResponse,
}

/// The event's title, visibility, organizers and counts, in one read; an
/// unknown event is NOT_FOUND.
#[tracing::instrument(name = "db.read_counts", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn read_counts(conn: &mut PgConnection, event: Uuid) -> Result<EventCounts> {
    let rows = sqlx::query!(
        r#"SELECT s.title, s.status AS "status: EventStatus", s.hidden, s.organizer_ids,
                  t.tier_id, t.capacity, t.confirmed, t.waitlisted, t.removed
           FROM event_snapshots s JOIN tiers t USING (event_id) WHERE s.event_id = $1 ORDER BY t.tier_id"#,
        event
    )
    .fetch_all(conn)
    .await?;
    let first = rows.first().ok_or_else(Error::no_such_event)?;
    let (title, public, organizers) = (
        first.title.clone(),
        first.status != EventStatus::Draft && !first.hidden,
        first.organizer_ids.clone(),
    );
    let counts = counts_of(
        event,
        rows.into_iter().map(|t| TierCounters {
            tier_id: t.tier_id,
            capacity: t.capacity,
            confirmed: t.confirmed,
            waitlisted: t.waitlisted,
            removed: t.removed,
        }),
    );
    Ok(EventCounts {
        title,
        public,
        organizers,
        counts,
    })
}

/// One tier's counters, as stored.
pub struct TierCounters {
    pub tier_id: String,
    /// 0 is unlimited.
    pub capacity: i32,
    pub confirmed: i32,
    pub waitlisted: i32,
    /// No longer offered: its holders count, its room does not.
    pub removed: bool,
}

/// The event's counts: totals over every tier (removed ones' holders
/// included), and per tier for the tiers still offered, each tier's
/// remaining bounded by the event's. Capacity 0 is unlimited (remaining -1).
pub fn counts_of(
    event: Uuid,
    tiers: impl IntoIterator<Item = TierCounters>,
) -> pb::GetCountsResponse {
    let tiers: Vec<TierCounters> = tiers.into_iter().collect();
    let offered = || tiers.iter().filter(|t| !t.removed);
    let confirmed: i64 = tiers.iter().map(|t| i64::from(t.confirmed)).sum();
    let event_room = if offered().any(|t| t.capacity == 0) {
        None
    } else {
        let capacity: i64 = offered().map(|t| i64::from(t.capacity)).sum();
        Some((capacity - confirmed).max(0))
    };
    let to_i32 = |n: i64| i32::try_from(n).unwrap_or(i32::MAX);
    pb::GetCountsResponse {
        event_id: event.to_string(),
        confirmed: to_i32(confirmed),
        waitlisted: to_i32(tiers.iter().map(|t| i64::from(t.waitlisted)).sum()),
        tiers: offered()
            .map(|t| {
                let tier_room =
                    (t.capacity != 0).then(|| i64::from((t.capacity - t.confirmed).max(0)));
                let remaining = match (tier_room, event_room) {
                    (None, None) => -1,
                    (Some(r), None) | (None, Some(r)) => r,
                    (Some(a), Some(b)) => a.min(b),
                };
                pb::TierCounts {
                    tier_id: t.tier_id.clone(),
                    capacity: t.capacity,
                    confirmed: t.confirmed,
                    remaining: to_i32(remaining),
                }
            })
            .collect(),
    }
}

/// The user's registration for the event and its waitlist position.
#[tracing::instrument(name = "db.registration", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn registration(
    conn: &mut PgConnection,
    event: Uuid,
    user: Uuid,
) -> Result<Option<(RegRow, i32)>> {
    let Some(row) = sqlx::query_as!(
        RegRow,
        r#"SELECT id, event_id, user_id, tier_id, status AS "status: RegStatus", waitlist_seq, answers, created_at, updated_at
         FROM registrations WHERE event_id = $1 AND user_id = $2"#,
        event,
        user
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let position = match row.waitlist_seq {
        Some(seq) => sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!" FROM registrations
               WHERE event_id = $1 AND tier_id = $2 AND status = 'waitlisted' AND waitlist_seq <= $3"#,
            event,
            row.tier_id,
            seq
        )
        .fetch_one(conn)
        .await? as i32,
        None => 0,
    };
    Ok(Some((row, position)))
}

/// A page of confirmed and checked-in registrations, by id.
#[tracing::instrument(name = "db.attendees", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn attendees(
    conn: &mut PgConnection,
    event: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<RegRow>> {
    Ok(sqlx::query_as!(
        RegRow,
        r#"SELECT id, event_id, user_id, tier_id, status AS "status: RegStatus", waitlist_seq, answers, created_at, updated_at
         FROM registrations
         WHERE event_id = $1 AND status IN ('confirmed', 'checked_in') AND ($2::uuid IS NULL OR id > $2)
         ORDER BY id LIMIT $3"#,
        event,
        after,
        limit
    )
    .fetch_all(conn)
    .await?)
}

/// A page of the waitlist in order, each entry with its position in its
/// tier's waitlist (what `GetRegistration` tells its owner).
#[tracing::instrument(name = "db.waitlist", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn waitlist(
    conn: &mut PgConnection,
    event: Uuid,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<(RegRow, i32)>> {
    let rows = sqlx::query_as!(
        PositionedRow,
        r#"SELECT id AS "id!", event_id AS "event_id!", user_id AS "user_id!", tier_id AS "tier_id!",
                  status AS "status!: RegStatus", waitlist_seq, answers AS "answers!",
                  created_at AS "created_at!", updated_at AS "updated_at!", position AS "position!"
           FROM (
             SELECT id, event_id, user_id, tier_id, status, waitlist_seq, answers, created_at, updated_at,
                    row_number() OVER (PARTITION BY tier_id ORDER BY waitlist_seq) AS position
             FROM registrations WHERE event_id = $1 AND status = 'waitlisted') w
           WHERE waitlist_seq > $2 ORDER BY waitlist_seq LIMIT $3"#,
        event,
        after_seq,
        limit
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(PositionedRow::split).collect())
}

/// Checks a registration in; `false` when it already was.
#[tracing::instrument(name = "db.check_in", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn check_in(conn: &mut PgConnection, id: Uuid, event: Uuid) -> Result<(RegRow, bool)> {
    let first = sqlx::query_as!(
        RegRow,
        r#"UPDATE registrations SET status = 'checked_in', updated_at = now()
         WHERE id = $1 AND event_id = $2 AND status = 'confirmed'
         RETURNING id, event_id, user_id, tier_id, status AS "status: RegStatus", waitlist_seq, answers, created_at, updated_at"#,
        id,
        event
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = first {
        emit(conn, event, &[("join.checked_in", row.clone())]).await?;
        return Ok((row, true));
    }
    let row = sqlx::query_as!(
        RegRow,
        r#"SELECT id, event_id, user_id, tier_id, status AS "status: RegStatus", waitlist_seq, answers, created_at, updated_at
         FROM registrations WHERE id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| Error::new(ErrorCode::NotFound, "ticket_code: no such registration"))?;
    if row.event_id != event {
        return Err(Error::new(
            ErrorCode::FailedPrecondition,
            "ticket_code: this ticket is for another event",
        )
        .with_reason("TICKET_FOREIGN"));
    }
    match row.status {
        RegStatus::CheckedIn => Ok((row, false)),
        other => Err(Error::new(
            ErrorCode::FailedPrecondition,
            format!("ticket_code: the registration is {}", other.as_str()),
        )
        .with_reason("TICKET_NOT_VALID")),
    }
}

/// One of a user's registrations with its position and its event's title
/// and start (what a ticket list shows).
pub struct TicketRow {
    pub row: RegRow,
    pub position: i32,
    pub title: String,
    pub starts_at: DateTime<Utc>,
}

/// A page of `user`'s registrations holding a place or a waitlist entry for
/// events not yet ended, soonest first, after the `(starts_at, id)` given.
#[tracing::instrument(name = "db.tickets", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn tickets(
    conn: &mut PgConnection,
    user: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<TicketRow>> {
    let (after_start, after_id) = after.unzip();
    let rows = sqlx::query!(
        r#"SELECT r.id, r.event_id, r.user_id, r.tier_id, r.status AS "status: RegStatus", r.waitlist_seq,
                  r.answers, r.created_at, r.updated_at, s.title, s.starts_at,
                  CASE WHEN r.status = 'waitlisted' THEN
                    (SELECT count(*) FROM registrations w
                     WHERE w.event_id = r.event_id AND w.tier_id = r.tier_id
                       AND w.status = 'waitlisted' AND w.waitlist_seq <= r.waitlist_seq)
                  ELSE 0 END AS "position!"
           FROM registrations r JOIN event_snapshots s ON s.event_id = r.event_id
           WHERE r.user_id = $1 AND r.status IN ('confirmed', 'waitlisted', 'checked_in')
             AND s.ends_at > now()
             AND ($2::timestamptz IS NULL OR (s.starts_at, r.id) > ($2, $3::uuid))
           ORDER BY s.starts_at, r.id LIMIT $4"#,
        user,
        after_start,
        after_id,
        limit
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| TicketRow {
            row: RegRow {
                id: r.id,
                event_id: r.event_id,
                user_id: r.user_id,
                tier_id: r.tier_id,
                status: r.status,
                waitlist_seq: r.waitlist_seq,
                answers: r.answers,
                created_at: r.created_at,
                updated_at: r.updated_at,
            },
            position: i32::try_from(r.position).unwrap_or(i32::MAX),
            title: r.title,
            starts_at: r.starts_at,
        })
        .collect())
}
