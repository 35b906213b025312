//! Email verification and password reset.

use tonic::Request;

use cityevents_proto::cityevents::auth::v1 as pb;
use cityevents_runtime::{Error, ErrorCode, Result};

use super::State;
use super::convert::user;
use crate::store::one_time::{self, Purpose};
use crate::store::{sessions, users};
use crate::{tokens, validate};
use cityevents_messaging::outbox;

/// The least time a reset request takes to answer (well above the work a
/// known account costs).
const RESET_ANSWER_FLOOR: std::time::Duration = std::time::Duration::from_millis(250);

impl State {
    pub(super) async fn request_email_verification(
        &self,
        req: Request<pb::RequestEmailVerificationRequest>,
    ) -> Result<pb::RequestEmailVerificationResponse> {
        let me = self.principal(&req).await?;
        let mut tx = self.pool.begin().await?;
        let row = users::require(&mut tx, me.user_id, "authorization").await?;
        if row.email_verified {
            return Err(Error::new(
                ErrorCode::FailedPrecondition,
                "email is already verified",
            ));
        }
        self.limiter
            .check("mail-account", &row.email, self.limits.mail_per_account)
            .await?;
        self.issue_one_time(&mut tx, &row, Purpose::VerifyEmail)
            .await?;
        tx.commit().await?;
        Ok(pb::RequestEmailVerificationResponse {})
    }

    pub(super) async fn verify_email(
        &self,
        r: pb::VerifyEmailRequest,
    ) -> Result<pb::VerifyEmailResponse> {
        validate::token("token", &r.token)?;
        let mut tx = self.pool.begin().await?;
        let user_id =
            one_time::consume(&mut tx, &tokens::hash(&r.token), Purpose::VerifyEmail).await?;
        users::set_verified(&mut tx, user_id).await?;
        outbox::enqueue(
            &mut tx,
            "auth.email_verified",
            user_id,
            &pb::EmailVerified {
                user_id: user_id.to_string(),
            },
        )
        .await?;
        let row = users::require(&mut tx, user_id, "token").await?;
        tx.commit().await?;
        Ok(pb::VerifyEmailResponse {
            user: Some(user(&row)),
        })
    }

    /// Answers the same, in the same time, whether or not the account exists.
    pub(super) async fn request_password_reset(
        &self,
        req: Request<pb::RequestPasswordResetRequest>,
    ) -> Result<pb::RequestPasswordResetResponse> {
        let started = tokio::time::Instant::now();
        let address = self.client_address.of(&req);
        let email = validate::email("email", &req.get_ref().email)?;
        self.limiter
            .check("login-addr", &address, self.limits.login_per_address)
            .await?;
        self.limiter
            .check("mail-account", &email, self.limits.mail_per_account)
            .await?;
        let mut tx = self.pool.begin().await?;
        match users::by_email(&mut tx, &email).await? {
            Some(row) if row.banned_at.is_none() => {
                self.issue_one_time(&mut tx, &row, Purpose::ResetPassword)
                    .await?;
                tx.commit().await?;
            }
            _ => tracing::info!("password reset asked for an unknown or banned account"),
        }
        // Answered no sooner than the floor, so the time taken does not
        // tell whether the account exists (issuing the token and its mail
        // event costs a few writes that an unknown email skips).
        tokio::time::sleep_until(started + RESET_ANSWER_FLOOR).await;
        Ok(pb::RequestPasswordResetResponse {})
    }

    /// Sets the new password and ends every session. A rejected password
    /// leaves the token unused (the transaction rolls back).
    pub(super) async fn reset_password(
        &self,
        r: pb::ResetPasswordRequest,
    ) -> Result<pb::ResetPasswordResponse> {
        validate::token("token", &r.token)?;
        let mut tx = self.pool.begin().await?;
        let user_id =
            one_time::consume(&mut tx, &tokens::hash(&r.token), Purpose::ResetPassword).await?;
        let row = users::require(&mut tx, user_id, "token").await?;
        validate::password("new_password", &r.new_password, &row.email)?;
        let hash = self.passwords.hash(&r.new_password).await?;
        let version = users::set_password(&mut tx, user_id, &hash).await?;
        sessions::revoke_all(&mut tx, user_id, "password reset").await?;
        tx.commit().await?;
        super::copied_later(self.revocations.set_token_version(user_id, version).await);
        tracing::info!(user_id = %user_id, "password reset");
        Ok(pb::ResetPasswordResponse {})
    }
}
