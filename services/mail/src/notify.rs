//! What each domain event sends. The handler runs in the consumer's
//! transaction: the people, events and registrations it learns and the
//! mails it logs commit with the message's inbox row, so a redelivered
//! message logs nothing twice; the sender sends later ([`crate::send`]).
//! A mail whose recipient or event is not known yet (the streams are not
//! ordered with each other) fails the message, which is retried with
//! backoff until they are.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use futures::future::BoxFuture;
use prost::Message;
use sqlx::PgConnection;
use uuid::Uuid;

use cityevents_authn::sealed::Sealer;
use cityevents_messaging::Envelope;
use cityevents_messaging::consumer::Handler;
use cityevents_proto::cityevents::auth::v1 as au;
use cityevents_proto::cityevents::event::v1::{self as ev, event_draft::Location};
use cityevents_proto::cityevents::join::v1 as jn;

use crate::compose::Composer;
use crate::store::{self, EventRow, Person};

/// Turns domain events into logged mails.
pub struct Notifier {
    pub composer: Arc<Composer>,
    pub sealer: Sealer,
}

fn time(t: Option<&prost_types::Timestamp>) -> DateTime<Utc> {
    cityevents_runtime::parse::time("", t).unwrap_or_default()
}

/// "Thursday 24 December 2026, 19:00 (Europe/Berlin)".
pub fn when(at: DateTime<Utc>, zone: &str) -> String {
    match zone.parse::<Tz>() {
        Ok(tz) => format!(
            "{} ({zone})",
            at.with_timezone(&tz).format("%A %-d %B %Y, %H:%M")
        ),
        Err(_) => format!("{} (UTC)", at.format("%A %-d %B %Y, %H:%M")),
    }
}

impl EventRow {
    fn of(e: &ev::Event) -> anyhow::Result<Self> {
        let draft = e.draft.clone().unwrap_or_default();
        let place = match &draft.location {
            Some(Location::Venue(v)) => [v.name.as_str(), v.address.as_str(), v.city.as_str()]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(", "),
            Some(Location::OnlineUrl(url)) => format!("online: {url}"),
            None => String::new(),
        };
        let status = match ev::EventStatus::try_from(e.status).unwrap_or_default() {
            ev::EventStatus::Published => "published",
            ev::EventStatus::Cancelled => "cancelled",
            ev::EventStatus::Completed => "completed",
            _ => "draft",
        };
        Ok(Self {
            event_id: e.id.parse()?,
            version: e.version,
            title: draft.title,
            description: draft.description,
            starts_at: time(draft.starts_at.as_ref()),
            ends_at: time(draft.ends_at.as_ref()),
            time_zone: draft.time_zone,
            place,
            status: status.into(),
        })
    }

    /// What templates see of the event.
    fn view(&self, composer: &Composer) -> minijinja::Value {
        minijinja::context! {
            title => self.title,
            when => when(self.starts_at, &self.time_zone),
            place => self.place,
            url => composer.url(&format!("/events/{}", self.event_id)),
        }
    }

    /// The event as an invitation.
    fn ics(&self) -> String {
        let entry = cityevents_ical::Entry {
            event_id: self.event_id,
            version: self.version,
            title: self.title.clone(),
            description: self.description.clone(),
            location: self.place.clone(),
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            time_zone: self.time_zone.clone(),
            cancelled: self.status == "cancelled",
        };
        cityevents_ical::render(&self.title, &[entry], Utc::now())
    }
}

impl Notifier {
    async fn handle(&self, conn: &mut PgConnection, env: &Envelope) -> anyhow::Result<()> {
        let payload = env.payload.as_slice();
        match env.r#type.as_str() {
            "auth.user_registered" => {
                let m = au::UserRegistered::decode(payload)?;
                store::upsert_person(conn, &person(&m.user_id, &m.email, &m.display_name)?).await?;
            }
            "auth.email_verification_requested" => {
                let m = au::EmailVerificationRequested::decode(payload)?;
                let p = person(&m.user_id, &m.email, &m.display_name)?;
                self.link(
                    conn,
                    env,
                    &p,
                    "verify_email",
                    "/verify-email",
                    &m.sealed_token,
                    m.expires_at_unix,
                )
                .await?;
            }
            "auth.password_reset_requested" => {
                let m = au::PasswordResetRequested::decode(payload)?;
                let p = person(&m.user_id, &m.email, &m.display_name)?;
                self.link(
                    conn,
                    env,
                    &p,
                    "reset_password",
                    "/reset-password",
                    &m.sealed_token,
                    m.expires_at_unix,
                )
                .await?;
            }
            t if t.starts_with("event.") => self.event(conn, env).await?,
            t if t.starts_with("join.") && t != "join.counts_changed" => {
                self.join(conn, env).await?
            }
            _ => {}
        }
        Ok(())
    }

    /// A security mail carrying a one-time link, opened from its seal.
    #[allow(clippy::too_many_arguments)]
    async fn link(
        &self,
        conn: &mut PgConnection,
        env: &Envelope,
        p: &Person,
        purpose: &'static str,
        path: &str,
        sealed: &str,
        expires: i64,
    ) -> anyhow::Result<()> {
        store::upsert_person(conn, p).await?;
        let user = p.user_id.to_string();
        // A seal we cannot open will not open later: the message is parked.
        let token = self
            .sealer
            .open(purpose, &user, sealed)
            .ok_or_else(|| anyhow::anyhow!("{purpose} link of {user}: the seal does not open"))?;
        let expires = DateTime::from_timestamp(expires, 0).unwrap_or_default();
        let ctx = minijinja::context! {
            name => p.display_name,
            link => self.composer.url(&format!("{path}?token={token}")),
            expires => expires.format("%-d %B %Y, %H:%M UTC").to_string(),
        };
        let mail = self
            .composer
            .render(purpose, &p.email, Some(p.user_id), true, ctx, None)?;
        store::enqueue(conn, &env.id, &mail).await?;
        Ok(())
    }

    /// Keeps the event; tells everyone registered when it is cancelled, or
    /// when its time or place changed.
    async fn event(&self, conn: &mut PgConnection, env: &Envelope) -> anyhow::Result<()> {
        let (event, reason) = cityevents_proto::event_snapshot(&env.r#type, &env.payload)?
            .ok_or_else(|| anyhow::anyhow!("{} without an event", env.r#type))?;
        let new = EventRow::of(&event)?;
        let old = store::event(conn, new.event_id).await?;
        if !store::upsert_event(conn, &new).await? {
            return Ok(());
        }
        let template = match (&old, env.r#type.as_str()) {
            (_, "event.cancelled") => "event_cancelled",
            (Some(o), "event.updated")
                if o.starts_at != new.starts_at
                    || o.ends_at != new.ends_at
                    || o.place != new.place =>
            {
                "event_updated"
            }
            _ => return Ok(()),
        };
        let before = old.as_ref().unwrap_or(&new).view(&self.composer);
        let ics = new.ics();
        for p in store::registered(conn, new.event_id).await? {
            let ctx = minijinja::context! {
                name => p.display_name, event => new.view(&self.composer), before => before.clone(), reason => reason,
            };
            let mail = self.composer.render(
                template,
                &p.email,
                Some(p.user_id),
                false,
                ctx,
                Some(ics.clone()),
            )?;
            store::enqueue(conn, &env.id, &mail).await?;
        }
        Ok(())
    }

    /// Keeps the registration; confirms a place (joined or promoted) with
    /// the invitation attached.
    async fn join(&self, conn: &mut PgConnection, env: &Envelope) -> anyhow::Result<()> {
        let m = jn::RegistrationChanged::decode(env.payload.as_slice())?;
        let Some(r) = m.registration else {
            return Ok(());
        };
        let (id, event, user): (Uuid, Uuid, Uuid) =
            (r.id.parse()?, r.event_id.parse()?, r.user_id.parse()?);
        let status = match jn::RegistrationStatus::try_from(r.status).unwrap_or_default() {
            jn::RegistrationStatus::Confirmed => "confirmed",
            jn::RegistrationStatus::Waitlisted => "waitlisted",
            jn::RegistrationStatus::CheckedIn => "checked_in",
            _ => "cancelled",
        };
        store::record_registration(
            conn,
            id,
            event,
            user,
            status,
            time(r.created_at.as_ref()),
            env.id.parse()?,
        )
        .await?;
        let template = match env.r#type.as_str() {
            "join.confirmed" => "join_confirmed",
            "join.promoted" => "promoted",
            _ => return Ok(()),
        };
        let person = store::person(conn, user)
            .await?
            .ok_or_else(|| anyhow::anyhow!("user {user} not known yet"))?;
        let e = store::event(conn, event)
            .await?
            .ok_or_else(|| anyhow::anyhow!("event {event} not known yet"))?;
        // The streams are not ordered with each other: a join seen only after
        // its event's cancellation was left out of the cancellation mail, so
        // it gets that mail now instead of a confirmation.
        let (template, wanted) = if e.status == "cancelled" {
            ("event_cancelled", person.prefs.event_changes)
        } else {
            (template, person.prefs.confirmations)
        };
        if !wanted {
            return Ok(());
        }
        let view = e.view(&self.composer);
        let ctx = minijinja::context! {
            name => person.display_name, event => view.clone(), before => view, reason => "",
        };
        let mail = self.composer.render(
            template,
            &person.email,
            Some(user),
            false,
            ctx,
            Some(e.ics()),
        )?;
        store::enqueue(conn, &env.id, &mail).await?;
        Ok(())
    }
}

fn person(user: &str, email: &str, name: &str) -> anyhow::Result<Person> {
    Ok(Person {
        user_id: user.parse()?,
        email: email.to_owned(),
        display_name: name.to_owned(),
        prefs: store::Preferences::default(),
    })
}

/// Renders and logs the reminders now due.
pub async fn remind(pool: &sqlx::PgPool, composer: &Composer, hours: i64) -> anyhow::Result<usize> {
    let mut logged = 0;
    for d in store::due_reminders(pool, hours, 500).await? {
        let ctx =
            minijinja::context! { name => d.person.display_name, event => d.event.view(composer) };
        let mail = composer.render(
            "reminder",
            &d.person.email,
            Some(d.person.user_id),
            false,
            ctx,
            Some(d.event.ics()),
        )?;
        let mut conn = pool.acquire().await?;
        // The key makes a second replica's pass, or a restart's, a no-op.
        if store::enqueue(&mut conn, &store::reminder_key(&d.event), &mail).await? {
            logged += 1;
        }
    }
    Ok(logged)
}

/// The consumers' handler.
pub struct MailHandler(pub Arc<Notifier>);

impl Handler for MailHandler {
    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        env: &'a Envelope,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(self.0.handle(conn, env))
    }
}
