//! Admin calls: roles and bans. Each is audited and emitted as a domain event.

use tonic::Request;
use uuid::Uuid;

use cityevents_authn::{Principal, Role};
use cityevents_proto::cityevents::auth::v1 as pb;
use cityevents_runtime::{Error, ErrorCode, Result};

use super::State;
use super::convert::{role_from_pb, user};
use crate::store::users::UserRow;
use crate::store::{audit, sessions, users};
use crate::validate;
use cityevents_messaging::outbox;

const MAX_REASON_CHARS: usize = 500;

impl State {
    async fn admin<T>(&self, req: &Request<T>) -> Result<Principal> {
        let me = self.principal(req).await?;
        if !me.is_at_least(Role::Admin) {
            return Err(Error::new(
                ErrorCode::PermissionDenied,
                "only admins may do this",
            ));
        }
        Ok(me)
    }

    /// The target of an admin call: a valid id that is not the admin's own.
    fn target(me: &Principal, raw: &str) -> Result<Uuid> {
        let id = validate::uuid("user_id", raw)?;
        if id == me.user_id {
            return Err(Error::new(
                ErrorCode::FailedPrecondition,
                "user_id: admins cannot do this to themselves",
            ));
        }
        Ok(id)
    }

    pub(super) async fn set_role(
        &self,
        req: Request<pb::SetRoleRequest>,
    ) -> Result<pb::SetRoleResponse> {
        let me = self.admin(&req).await?;
        let r = req.into_inner();
        let id = Self::target(&me, &r.user_id)?;
        let role = pb::Role::try_from(r.role)
            .ok()
            .and_then(role_from_pb)
            .ok_or_else(|| {
                Error::invalid("role", "must be ROLE_USER, ROLE_MODERATOR or ROLE_ADMIN")
            })?;
        let mut tx = self.pool.begin().await?;
        let row = users::set_role(&mut tx, id, role.as_str())
            .await?
            .ok_or_else(no_such_user)?;
        audit::record(&mut tx, me.user_id, id, "set_role", role.as_str()).await?;
        let ev = pb::RoleChanged {
            user_id: id.to_string(),
            role: role.as_str().into(),
            admin_id: me.user_id.to_string(),
        };
        outbox::enqueue(&mut tx, "auth.role_changed", id, &ev).await?;
        tx.commit().await?;
        self.after_admin_change(&row, "set_role").await?;
        Ok(pb::SetRoleResponse {
            user: Some(user(&row)),
        })
    }

    pub(super) async fn ban_user(
        &self,
        req: Request<pb::BanUserRequest>,
    ) -> Result<pb::BanUserResponse> {
        let me = self.admin(&req).await?;
        let r = req.into_inner();
        let id = Self::target(&me, &r.user_id)?;
        let reason = r.reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
            return Err(Error::invalid(
                "reason",
                format!("is required, at most {MAX_REASON_CHARS} characters"),
            ));
        }
        let mut tx = self.pool.begin().await?;
        let row = users::set_banned(&mut tx, id, Some(reason))
            .await?
            .ok_or_else(no_such_user)?;
        sessions::revoke_all(&mut tx, id, "banned").await?;
        audit::record(&mut tx, me.user_id, id, "ban", reason).await?;
        let ev = ban_event(id, true, reason, me.user_id);
        outbox::enqueue(&mut tx, "auth.user_banned", id, &ev).await?;
        tx.commit().await?;
        self.after_admin_change(&row, "ban").await?;
        Ok(pb::BanUserResponse {
            user: Some(user(&row)),
        })
    }

    pub(super) async fn unban_user(
        &self,
        req: Request<pb::UnbanUserRequest>,
    ) -> Result<pb::UnbanUserResponse> {
        let me = self.admin(&req).await?;
        let id = Self::target(&me, &req.get_ref().user_id)?;
        let mut tx = self.pool.begin().await?;
        let row = users::set_banned(&mut tx, id, None)
            .await?
            .ok_or_else(no_such_user)?;
        audit::record(&mut tx, me.user_id, id, "unban", "").await?;
        outbox::enqueue(
            &mut tx,
            "auth.user_unbanned",
            id,
            &ban_event(id, false, "", me.user_id),
        )
        .await?;
        tx.commit().await?;
        self.after_admin_change(&row, "unban").await?;
        Ok(pb::UnbanUserResponse {
            user: Some(user(&row)),
        })
    }

    /// Publishes the new token version (old tokens die) and counts the action.
    async fn after_admin_change(&self, row: &UserRow, action: &str) -> Result<()> {
        super::copied_later(
            self.revocations
                .set_token_version(row.id, row.token_version)
                .await,
        );
        self.metrics
            .admin_actions
            .with_label_values(&[action])
            .inc();
        tracing::info!(user_id = %row.id, action, "admin action");
        Ok(())
    }
}

fn no_such_user() -> Error {
    Error::new(ErrorCode::NotFound, "user_id: no such user")
}

fn ban_event(id: Uuid, banned: bool, reason: &str, admin: Uuid) -> pb::UserBanChanged {
    pb::UserBanChanged {
        user_id: id.to_string(),
        banned,
        reason: reason.into(),
        admin_id: admin.to_string(),
    }
}
