//! `cityevents.mail.v1.MailService`: the operators' calls (the delivery log,
//! a test mail; admins only) and one-click unsubscribe (the link's
//! signature is the credential).

use std::sync::Arc;

use sqlx::PgPool;
use tonic::Request;
use uuid::Uuid;

use cityevents_authn::{Role, Verifier};
use cityevents_proto::cityevents::mail::v1::{self as pb, mail_service_server::MailService};
use cityevents_runtime::error::{Reply, reply};
use cityevents_runtime::{Error, ErrorCode, Result, parse};

use crate::compose::Composer;
use crate::store;

pub struct State {
    pub pool: PgPool,
    pub verifier: Arc<Verifier>,
    pub composer: Arc<Composer>,
}

#[derive(Clone)]
pub struct MailApi {
    state: Arc<State>,
}

impl MailApi {
    pub fn new(state: State) -> Self {
        Self {
            state: Arc::new(state),
        }
    }
}

impl State {
    async fn admin<T>(&self, req: &Request<T>) -> Result<()> {
        let me = self.verifier.authenticate(req.metadata()).await?;
        if me.is_at_least(Role::Admin) {
            Ok(())
        } else {
            Err(Error::new(
                ErrorCode::PermissionDenied,
                "only admins may read or test mail",
            ))
        }
    }

    async fn list(
        &self,
        req: Request<pb::ListDeliveriesRequest>,
    ) -> Result<pb::ListDeliveriesResponse> {
        self.admin(&req).await?;
        let r = req.into_inner();
        let size = parse::page_size(r.page_size);
        let before = if r.page_token.is_empty() {
            Uuid::max()
        } else {
            parse::id("page_token", &r.page_token)?
        };
        let recipient = (!r.recipient.is_empty()).then_some(r.recipient);
        let rows = sqlx::query!(
            "SELECT id, message_id, template, recipient, status, attempts, last_error, created_at, sent_at
             FROM deliveries WHERE id < $1 AND ($2::text IS NULL OR recipient = $2)
             ORDER BY id DESC LIMIT $3",
            before,
            recipient,
            size + 1
        )
        .fetch_all(&self.pool)
        .await?;
        let more = rows.len() as i64 > size;
        let deliveries: Vec<pb::Delivery> = rows
            .into_iter()
            .take(size as usize)
            .map(|d| pb::Delivery {
                id: d.id.to_string(),
                message_id: d.message_id,
                template: d.template,
                recipient: d.recipient,
                status: match d.status.as_str() {
                    "sent" => pb::DeliveryStatus::Sent,
                    "failed" => pb::DeliveryStatus::Failed,
                    _ => pb::DeliveryStatus::Pending,
                } as i32,
                attempts: d.attempts,
                last_error: d.last_error,
                created_at: Some(parse::timestamp(d.created_at)),
                sent_at: d.sent_at.map(parse::timestamp),
            })
            .collect();
        let next_page_token = match (more, deliveries.last()) {
            (true, Some(d)) => d.id.clone(),
            _ => String::new(),
        };
        Ok(pb::ListDeliveriesResponse {
            deliveries,
            next_page_token,
        })
    }

    async fn test(
        &self,
        req: Request<pb::SendTestMailRequest>,
    ) -> Result<pb::SendTestMailResponse> {
        self.admin(&req).await?;
        let to = req.into_inner().recipient;
        if to.parse::<lettre::message::Mailbox>().is_err() {
            return Err(Error::invalid("recipient", "is not an email address"));
        }
        let ctx = minijinja::context! { sent => chrono::Utc::now().to_rfc3339() };
        let mail = self
            .composer
            .render("test", &to, None, true, ctx, None)
            .map_err(Error::internal)?;
        let cause = format!("test:{}", Uuid::now_v7());
        let mut conn = self.pool.acquire().await?;
        store::enqueue(&mut conn, &cause, &mail).await?;
        Ok(pb::SendTestMailResponse {
            delivery: Some(pb::Delivery {
                message_id: cause,
                template: "test".into(),
                recipient: to,
                status: pb::DeliveryStatus::Pending as i32,
                ..Default::default()
            }),
        })
    }

    async fn unsubscribe(
        &self,
        req: Request<pb::UnsubscribeRequest>,
    ) -> Result<pb::UnsubscribeResponse> {
        let token = req.into_inner().token;
        let user = self.composer.unsubscriber(&token).ok_or_else(|| {
            Error::invalid(
                "token",
                "is not an unsubscribe link of ours (copy it whole from the mail)",
            )
        })?;
        store::unsubscribe(&self.pool, user).await?;
        tracing::info!(%user, "unsubscribed from all but security mail");
        Ok(pb::UnsubscribeResponse {})
    }

    async fn preferences(
        &self,
        req: Request<pb::GetPreferencesRequest>,
    ) -> Result<pb::GetPreferencesResponse> {
        let me = self.verifier.authenticate(req.metadata()).await?;
        let mut conn = self.pool.acquire().await?;
        let person = store::person(&mut conn, me.user_id)
            .await?
            .ok_or_else(unknown)?;
        Ok(pb::GetPreferencesResponse {
            preferences: Some(to_pb(person.prefs)),
        })
    }

    async fn set_preferences(
        &self,
        req: Request<pb::SetPreferencesRequest>,
    ) -> Result<pb::SetPreferencesResponse> {
        let me = self.verifier.authenticate(req.metadata()).await?;
        let p = req
            .into_inner()
            .preferences
            .ok_or_else(|| Error::invalid("preferences", "is required"))?;
        let prefs = store::Preferences {
            confirmations: p.confirmations,
            event_changes: p.event_changes,
            reminders: p.reminders,
        };
        let set = store::set_preferences(&self.pool, me.user_id, prefs)
            .await?
            .ok_or_else(unknown)?;
        Ok(pb::SetPreferencesResponse {
            preferences: Some(to_pb(set)),
        })
    }
}

/// A person auth told us nothing of yet.
fn unknown() -> Error {
    Error::new(
        ErrorCode::NotFound,
        "no mail address is known for you yet; retry in a moment",
    )
}

fn to_pb(p: store::Preferences) -> pb::NotificationPreferences {
    pb::NotificationPreferences {
        confirmations: p.confirmations,
        event_changes: p.event_changes,
        reminders: p.reminders,
    }
}

#[tonic::async_trait]
impl MailService for MailApi {
    #[tracing::instrument(skip_all)]
    async fn list_deliveries(
        &self,
        req: Request<pb::ListDeliveriesRequest>,
    ) -> Reply<pb::ListDeliveriesResponse> {
        reply(self.state.list(req).await)
    }
    #[tracing::instrument(skip_all)]
    async fn send_test_mail(
        &self,
        req: Request<pb::SendTestMailRequest>,
    ) -> Reply<pb::SendTestMailResponse> {
        reply(self.state.test(req).await)
    }
    #[tracing::instrument(skip_all)]
    async fn get_preferences(
        &self,
        req: Request<pb::GetPreferencesRequest>,
    ) -> Reply<pb::GetPreferencesResponse> {
        reply(self.state.preferences(req).await)
    }
    #[tracing::instrument(skip_all)]
    async fn set_preferences(
        &self,
        req: Request<pb::SetPreferencesRequest>,
    ) -> Reply<pb::SetPreferencesResponse> {
        reply(self.state.set_preferences(req).await)
    }
    #[tracing::instrument(skip_all)]
    async fn unsubscribe(
        &self,
        req: Request<pb::UnsubscribeRequest>,
    ) -> Reply<pb::UnsubscribeResponse> {
        reply(self.state.unsubscribe(req).await)
    }
}
