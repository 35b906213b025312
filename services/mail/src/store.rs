//! The mail database: people, events and registrations as the streams tell
//! them, and the delivery log (compile-checked SQL).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::compose::{Delivery, Mail};

/// An event as mail shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub event_id: Uuid,
    pub version: i64,
    pub title: String,
    pub description: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub time_zone: String,
    pub place: String,
    pub status: String,
}

/// Someone mail goes to.
#[derive(Debug, Clone)]
pub struct Person {
    pub user_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub prefs: Preferences,
}

/// Which mail besides security mail someone wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preferences {
    pub confirmations: bool,
    pub event_changes: bool,
    pub reminders: bool,
}

impl Default for Preferences {
    fn default() -> Self {
        Self {
            confirmations: true,
            event_changes: true,
            reminders: true,
        }
    }
}

#[tracing::instrument(name = "db.upsert_person", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn upsert_person(conn: &mut PgConnection, p: &Person) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO people (user_id, email, display_name) VALUES ($1, $2, $3)
         ON CONFLICT (user_id) DO UPDATE SET email = EXCLUDED.email, display_name = EXCLUDED.display_name",
        p.user_id,
        p.email,
        p.display_name
    )
    .execute(conn)
    .await?;
    Ok(())
}

#[tracing::instrument(name = "db.person", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn person(conn: &mut PgConnection, user: Uuid) -> sqlx::Result<Option<Person>> {
    let row = sqlx::query!(
        "SELECT user_id, email, display_name, confirmations, event_changes, reminders FROM people WHERE user_id = $1",
        user
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| Person {
        user_id: r.user_id,
        email: r.email,
        display_name: r.display_name,
        prefs: Preferences {
            confirmations: r.confirmations,
            event_changes: r.event_changes,
            reminders: r.reminders,
        },
    }))
}

/// Sets `user`'s preferences; `None` if mail does not know them (yet).
#[tracing::instrument(name = "db.set_preferences", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn set_preferences(
    pool: &PgPool,
    user: Uuid,
    p: Preferences,
) -> sqlx::Result<Option<Preferences>> {
    let n = sqlx::query!(
        "UPDATE people SET confirmations = $2, event_changes = $3, reminders = $4 WHERE user_id = $1",
        user,
        p.confirmations,
        p.event_changes,
        p.reminders
    )
    .execute(pool)
    .await?
    .rows_affected();
    Ok((n == 1).then_some(p))
}

#[tracing::instrument(name = "db.event", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn event(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<EventRow>> {
    sqlx::query_as!(
        EventRow,
        "SELECT event_id, version, title, description, starts_at, ends_at, time_zone, place, status
         FROM events WHERE event_id = $1",
        id
    )
    .fetch_optional(conn)
    .await
}

/// Stores `e` if its version is newer; returns whether it did.
#[tracing::instrument(name = "db.upsert_event", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn upsert_event(conn: &mut PgConnection, e: &EventRow) -> sqlx::Result<bool> {
    let n = sqlx::query!(
        "INSERT INTO events (event_id, version, title, description, starts_at, ends_at, time_zone, place, status)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (event_id) DO UPDATE SET version = EXCLUDED.version, title = EXCLUDED.title,
           description = EXCLUDED.description, starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at,
           time_zone = EXCLUDED.time_zone, place = EXCLUDED.place, status = EXCLUDED.status
         WHERE events.version < EXCLUDED.version",
        e.event_id,
        e.version,
        e.title,
        e.description,
        e.starts_at,
        e.ends_at,
        e.time_zone,
        e.place,
        e.status
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Records a registration's status if `seq` is newer than the stored one.
#[tracing::instrument(name = "db.record_registration", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn record_registration(
    conn: &mut PgConnection,
    id: Uuid,
    event: Uuid,
    user: Uuid,
    status: &str,
    joined_at: DateTime<Utc>,
    seq: Uuid,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO registrations (registration_id, event_id, user_id, status, joined_at, seq)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (registration_id) DO UPDATE SET status = EXCLUDED.status, seq = EXCLUDED.seq
         WHERE registrations.seq < EXCLUDED.seq",
        id,
        event,
        user,
        status,
        joined_at,
        seq
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Everyone holding a place or waiting for one at `event` who still wants
/// mail.
#[tracing::instrument(name = "db.registered", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn registered(conn: &mut PgConnection, event: Uuid) -> sqlx::Result<Vec<Person>> {
    let rows = sqlx::query!(
        "SELECT DISTINCT p.user_id, p.email, p.display_name
         FROM registrations r JOIN people p USING (user_id)
         WHERE r.event_id = $1 AND r.status IN ('confirmed', 'waitlisted', 'checked_in') AND p.event_changes",
        event
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Person {
            user_id: r.user_id,
            email: r.email,
            display_name: r.display_name,
            prefs: Preferences::default(),
        })
        .collect())
}

/// Logs `mail` for sending, once per (cause, recipient, template); returns
/// whether it was new.
#[tracing::instrument(name = "db.enqueue", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn enqueue(conn: &mut PgConnection, cause: &str, mail: &Mail) -> sqlx::Result<bool> {
    let n = sqlx::query!(
        "INSERT INTO deliveries (id, message_id, template, recipient, user_id, subject, text_body, html_body, ics, security)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (message_id, recipient, template) DO NOTHING",
        Uuid::now_v7(),
        cause,
        mail.template,
        mail.recipient,
        mail.user_id,
        mail.subject,
        mail.text,
        mail.html,
        mail.ics,
        mail.security
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Takes up to `n` due mails for sending: each is leased for `lease_secs`
/// (another replica skips it meanwhile) and its attempt counted.
#[tracing::instrument(name = "db.claim", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn claim(pool: &PgPool, n: i64, lease_secs: f64) -> sqlx::Result<Vec<Delivery>> {
    sqlx::query_as!(
        Delivery,
        "UPDATE deliveries SET attempts = attempts + 1,
           next_attempt_at = now() + make_interval(secs => $2)
         WHERE id IN (SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= now()
                      ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
         RETURNING id, recipient, user_id, template, subject, text_body, html_body, ics, security, attempts",
        n,
        lease_secs
    )
    .fetch_all(pool)
    .await
}

#[tracing::instrument(name = "db.mark_sent", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn mark_sent(pool: &PgPool, id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE deliveries SET status = 'sent', sent_at = now(), last_error = '' WHERE id = $1",
        id
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Records a failure: tried again after `delay_secs`, or, `last`, not at all.
#[tracing::instrument(name = "db.mark_failed", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn mark_failed(
    pool: &PgPool,
    id: Uuid,
    error: &str,
    delay_secs: f64,
    last: bool,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE deliveries SET last_error = $2,
           status = CASE WHEN $4 THEN 'failed' ELSE 'pending' END,
           next_attempt_at = now() + make_interval(secs => $3)
         WHERE id = $1",
        id,
        error,
        delay_secs,
        last
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Non-security mail off for `user`; returns whether they were known.
#[tracing::instrument(name = "db.unsubscribe", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn unsubscribe(pool: &PgPool, user: Uuid) -> sqlx::Result<bool> {
    let off = Preferences {
        confirmations: false,
        event_changes: false,
        reminders: false,
    };
    Ok(set_preferences(pool, user, off).await?.is_some())
}

/// A confirmed person and an event starting within `hours`, who joined
/// before the reminder was due and has no reminder for this start yet.
pub struct Due {
    pub event: EventRow,
    pub person: Person,
}

#[tracing::instrument(name = "db.due_reminders", skip_all, fields(otel.kind = "client", db.system = "postgresql"))]
pub async fn due_reminders(pool: &PgPool, hours: i64, limit: i64) -> sqlx::Result<Vec<Due>> {
    let rows = sqlx::query!(
        r#"SELECT e.event_id, e.version, e.title, e.description, e.starts_at, e.ends_at, e.time_zone, e.place,
             e.status, p.user_id, p.email, p.display_name
           FROM events e JOIN registrations r USING (event_id) JOIN people p USING (user_id)
           WHERE e.status = 'published' AND e.starts_at > now()
             AND e.starts_at <= now() + make_interval(hours => $1::int)
             AND r.status IN ('confirmed', 'checked_in') AND p.reminders
             AND r.joined_at < e.starts_at - make_interval(hours => $1::int)
             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.template = 'reminder' AND d.recipient = p.email
                             AND d.message_id = 'reminder:' || e.event_id || ':' || extract(epoch FROM e.starts_at)::bigint)
           LIMIT $2"#,
        hours as i32,
        limit
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Due {
            event: EventRow {
                event_id: r.event_id,
                version: r.version,
                title: r.title,
                description: r.description,
                starts_at: r.starts_at,
                ends_at: r.ends_at,
                time_zone: r.time_zone,
                place: r.place,
                status: r.status,
            },
            person: Person {
                user_id: r.user_id,
                email: r.email,
                display_name: r.display_name,
                prefs: Preferences::default(),
            },
        })
        .collect())
}

/// The reminder's once-only key: its event and the start it announces.
pub fn reminder_key(e: &EventRow) -> String {
    format!("reminder:{}:{}", e.event_id, e.starts_at.timestamp())
}
