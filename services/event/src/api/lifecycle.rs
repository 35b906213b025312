//! Creating, reading, editing, publishing and cancelling events.

use prost::Message;
use sqlx::PgConnection;
use tonic::Request;
use uuid::Uuid;

use cityevents_authn::Role;
use cityevents_messaging::outbox;
use cityevents_proto::cityevents::event::v1 as pb;
use cityevents_proto::cityevents::join::v1::GetCountsRequest;
use cityevents_proto::cityevents::media::v1::AttachImagesRequest;
use cityevents_runtime::error::{IMAGE_PROCESSING, REASON_METADATA};
use cityevents_runtime::{Error, ErrorCode, Result};

use super::convert::event;
use super::{State, ensure_can_edit, ensure_version, visible_to};
use crate::store::{self, EventRow};
use crate::validate;

impl State {
    pub(super) async fn create(
        &self,
        req: Request<pb::CreateEventRequest>,
    ) -> Result<pb::CreateEventResponse> {
        let me = self.principal(&req).await?;
        if !me.email_verified {
            return Err(Error::new(
                ErrorCode::PermissionDenied,
                "verify your email address before creating events",
            ));
        }
        let authorization = req.metadata().get("authorization").cloned();
        let draft = req
            .into_inner()
            .draft
            .ok_or_else(|| Error::invalid("draft", "is required"))?;
        let v = validate::draft(draft)?;
        let id = Uuid::now_v7();
        self.attach_covers(id, &v.draft, &authorization).await?;
        let mut tx = self.pool.begin().await?;
        store::insert(
            &mut tx,
            id,
            me.user_id,
            &v.draft.encode_to_vec(),
            v.starts_at,
            v.ends_at,
        )
        .await?;
        let row = store::get(&mut tx, id)
            .await?
            .ok_or_else(store::not_found)?;
        tx.commit().await?;
        self.lifecycle.with_label_values(&["created"]).inc();
        tracing::info!(event_id = %id, "event created");
        Ok(pb::CreateEventResponse {
            event: Some(event(&row)?),
        })
    }

    pub(super) async fn get(
        &self,
        req: Request<pb::GetEventRequest>,
    ) -> Result<pb::GetEventResponse> {
        let me = self.maybe_principal(&req).await?;
        let id = validate::id("event_id", &req.get_ref().event_id)?;
        let mut conn = self.pool.acquire().await?;
        let row = store::get(&mut conn, id)
            .await?
            .filter(|r| visible_to(me.as_ref(), r))
            .ok_or_else(store::not_found)?;
        Ok(pb::GetEventResponse {
            event: Some(event(&row)?),
        })
    }

    pub(super) async fn update(
        &self,
        req: Request<pb::UpdateEventRequest>,
    ) -> Result<pb::UpdateEventResponse> {
        let me = self.principal(&req).await?;
        let authorization = req.metadata().get("authorization").cloned();
        let r = req.into_inner();
        let id = validate::id("event_id", &r.event_id)?;
        let v = validate::draft(
            r.draft
                .ok_or_else(|| Error::invalid("draft", "is required"))?,
        )?;
        let mut tx = self.pool.begin().await?;
        let row = store::lock(&mut tx, id).await?;
        ensure_can_edit(&me, &row)?;
        if row.status == "cancelled" {
            return Err(Error::new(
                ErrorCode::FailedPrecondition,
                "a cancelled event cannot be edited",
            ));
        }
        ensure_version(&row, r.expected_version)?;
        if row.status == "published" {
            self.ensure_capacity_floor(id, &v.draft).await?;
        }
        self.attach_covers(id, &v.draft, &authorization).await?;
        store::update_draft(
            &mut tx,
            id,
            &v.draft.encode_to_vec(),
            v.starts_at,
            v.ends_at,
        )
        .await?;
        let event = self.emit_changed(&mut tx, id, "event.updated").await?;
        tx.commit().await?;
        self.lifecycle.with_label_values(&["updated"]).inc();
        Ok(pb::UpdateEventResponse { event: Some(event) })
    }

    pub(super) async fn publish(
        &self,
        req: Request<pb::PublishEventRequest>,
    ) -> Result<pb::PublishEventResponse> {
        let me = self.principal(&req).await?;
        let id = validate::id("event_id", &req.get_ref().event_id)?;
        let mut tx = self.pool.begin().await?;
        let row = store::lock(&mut tx, id).await?;
        ensure_can_edit(&me, &row)?;
        ensure_version(&row, req.get_ref().expected_version)?;
        if row.status != "draft" {
            return Err(Error::new(
                ErrorCode::FailedPrecondition,
                format!("only drafts can be published; this event is {}", row.status),
            ));
        }
        let draft = pb::EventDraft::decode(row.draft.as_slice()).map_err(Error::internal)?;
        let starts = draft.starts_at.map_or(0, |t| t.seconds);
        if starts <= chrono::Utc::now().timestamp() {
            return Err(Error::new(
                ErrorCode::FailedPrecondition,
                "draft.starts_at: the event starts in the past",
            ));
        }
        store::set_status(&mut tx, id, "published", None).await?;
        let event = self.emit_changed(&mut tx, id, "event.published").await?;
        tx.commit().await?;
        self.lifecycle.with_label_values(&["published"]).inc();
        Ok(pb::PublishEventResponse { event: Some(event) })
    }

    pub(super) async fn cancel(
        &self,
        req: Request<pb::CancelEventRequest>,
    ) -> Result<pb::CancelEventResponse> {
        let me = self.principal(&req).await?;
        let r = req.into_inner();
        let id = validate::id("event_id", &r.event_id)?;
        let reason = validate::reason(&r.reason)?;
        let mut tx = self.pool.begin().await?;
        let row = store::lock(&mut tx, id).await?;
        ensure_can_edit(&me, &row)?;
        ensure_version(&row, r.expected_version)?;
        if row.status == "cancelled" {
            return Err(Error::new(
                ErrorCode::FailedPrecondition,
                "the event is already cancelled",
            ));
        }
        store::set_status(&mut tx, id, "cancelled", Some(&reason)).await?;
        let row = store::get(&mut tx, id)
            .await?
            .ok_or_else(store::not_found)?;
        let event = event(&row)?;
        let payload = pb::EventCancelled {
            event: Some(event.clone()),
            reason,
        };
        outbox::enqueue(&mut tx, "event.cancelled", id, &payload).await?;
        tx.commit().await?;
        self.lifecycle.with_label_values(&["cancelled"]).inc();
        Ok(pb::CancelEventResponse { event: Some(event) })
    }

    pub(super) async fn list_organized(
        &self,
        req: Request<pb::ListOrganizedEventsRequest>,
    ) -> Result<pb::ListOrganizedEventsResponse> {
        let me = self.principal(&req).await?;
        let (size, after) = validate::page(req.get_ref().page_size, &req.get_ref().page_token)?;
        let mut conn = self.pool.acquire().await?;
        let ids = store::list_organized(&mut conn, me.user_id, after, size).await?;
        let mut events = Vec::with_capacity(ids.len());
        for id in &ids {
            if let Some(row) = store::get(&mut conn, *id).await? {
                events.push(event(&row)?);
            }
        }
        let next = if ids.len() as i64 == size {
            ids.last().map(ToString::to_string).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(pb::ListOrganizedEventsResponse {
            events,
            next_page_token: next,
        })
    }

    /// Only the owner (or an admin) changes who co-organizes.
    pub(super) async fn co_organizer<T>(
        &self,
        req: &Request<T>,
        event_id: &str,
        user_id: &str,
        add: bool,
    ) -> Result<pb::Event> {
        let me = self.principal(req).await?;
        let id = validate::id("event_id", event_id)?;
        let user = validate::id("user_id", user_id)?;
        let mut tx = self.pool.begin().await?;
        let row = store::lock(&mut tx, id).await?;
        if row.organizer_id != me.user_id && !me.is_at_least(Role::Admin) {
            return Err(Error::new(
                ErrorCode::PermissionDenied,
                "only the event's owner may change its co-organizers",
            ));
        }
        if user == row.organizer_id {
            return Err(Error::new(
                ErrorCode::FailedPrecondition,
                "user_id: the owner already organizes this event",
            ));
        }
        store::set_co_organizer(&mut tx, id, user, add).await?;
        let event = if row.status == "published" {
            self.emit_changed(&mut tx, id, "event.updated").await?
        } else {
            super::convert::event(
                &store::get(&mut tx, id)
                    .await?
                    .ok_or_else(store::not_found)?,
            )?
        };
        tx.commit().await?;
        Ok(event)
    }

    /// Re-reads the event and writes `event_type` with it to the outbox.
    pub(super) async fn emit_changed(
        &self,
        conn: &mut PgConnection,
        id: Uuid,
        event_type: &str,
    ) -> Result<pb::Event> {
        let row: EventRow = store::get(conn, id).await?.ok_or_else(store::not_found)?;
        let event = event(&row)?;
        outbox::enqueue(
            conn,
            event_type,
            id,
            &pb::EventChanged {
                event: Some(event.clone()),
            },
        )
        .await?;
        Ok(event)
    }

    /// Capacity may not drop below what is already confirmed (asked of join).
    /// Has the media service check the draft's images (they exist, are
    /// ready, and are the caller's or the event's already) and mark them
    /// used by this event, so they are not collected. Done before the
    /// event commits: an edit that then fails leaves an image attached
    /// (kept) rather than a cover collected.
    async fn attach_covers(
        &self,
        id: Uuid,
        draft: &pb::EventDraft,
        authorization: &Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
    ) -> Result<()> {
        if draft.cover_image_ids.is_empty() {
            return Ok(());
        }
        let Some(media) = &self.media else {
            return Err(Error::new(
                ErrorCode::FailedPrecondition,
                "draft.cover_image_ids: this deployment keeps no images",
            ));
        };
        let mut req = Request::new(AttachImagesRequest {
            subject: format!("event/{id}"),
            image_ids: draft.cover_image_ids.clone(),
        });
        if let Some(a) = authorization {
            req.metadata_mut().insert("authorization", a.clone());
        }
        match media.clone().attach_images(req).await {
            Ok(_) => Ok(()),
            Err(s) => {
                let code = match s.code() {
                    tonic::Code::NotFound => ErrorCode::NotFound,
                    tonic::Code::PermissionDenied => ErrorCode::PermissionDenied,
                    tonic::Code::FailedPrecondition => ErrorCode::FailedPrecondition,
                    tonic::Code::InvalidArgument => ErrorCode::InvalidArgument,
                    _ => {
                        return Err(Error::unavailable(anyhow::anyhow!(
                            "media AttachImages: {s}"
                        )));
                    }
                };
                let why = s.message().trim_start_matches("image_ids: ");
                let err = Error::new(code, format!("draft.cover_image_ids: {why}"));
                // Still processing: the caller may retry in a moment.
                let reason = s
                    .metadata()
                    .get(REASON_METADATA)
                    .and_then(|v| v.to_str().ok());
                Err(if reason == Some(IMAGE_PROCESSING) {
                    err.with_reason(IMAGE_PROCESSING)
                        .with_retry_after(std::time::Duration::from_secs(1))
                } else {
                    err
                })
            }
        }
    }

    async fn ensure_capacity_floor(&self, id: Uuid, draft: &pb::EventDraft) -> Result<()> {
        let Some(join) = &self.join else {
            return Ok(());
        };
        let counts = join
            .clone()
            .get_counts(GetCountsRequest {
                event_id: id.to_string(),
            })
            .await
            .map_err(|s| Error::unavailable(anyhow::anyhow!("join GetCounts: {s}")))?
            .into_inner();
        if draft.capacity > 0 && counts.confirmed > draft.capacity {
            return Err(Error::new(
                ErrorCode::FailedPrecondition,
                format!(
                    "draft.capacity: {} people are confirmed; capacity cannot go below that",
                    counts.confirmed
                ),
            ));
        }
        for tier in &draft.tiers {
            let confirmed = counts
                .tiers
                .iter()
                .find(|t| t.tier_id == tier.id)
                .map_or(0, |t| t.confirmed);
            if tier.capacity > 0 && confirmed > tier.capacity {
                return Err(Error::new(
                    ErrorCode::FailedPrecondition,
                    format!(
                        "draft.tiers: {confirmed} confirmed in tier {:?}; its capacity cannot go below that",
                        tier.name
                    ),
                ));
            }
        }
        Ok(())
    }
}
