//! The `cityevents.auth.v1.AuthService` handlers.
//!
//! The trait impl only routes: each call goes to a method of [`State`] in
//! [`account`], [`recovery`] or [`admin`], which returns the runtime's
//! [`Result`], turned into a status in one place.

mod account;
mod admin;
mod convert;
mod recovery;

use std::sync::Arc;

use sqlx::PgPool;
use tonic::{Request, Response, Status};

use cityevents_authn::{Principal, Revocations, Verifier};
use cityevents_proto::cityevents::auth::v1::{self as pb, auth_service_server::AuthService};
use cityevents_runtime::Result;

use crate::config::{RateLimits, TokenConfig};
use crate::metrics::AuthMetrics;
use crate::passwords::Passwords;
use crate::ratelimit::RateLimiter;
use crate::tokens::Issuer;

/// Everything the handlers share.
pub struct State {
    pub pool: PgPool,
    pub passwords: Passwords,
    pub issuer: Issuer,
    pub verifier: Arc<Verifier>,
    pub revocations: Revocations,
    pub limiter: RateLimiter,
    pub limits: RateLimits,
    pub tokens: TokenConfig,
    pub metrics: AuthMetrics,
    pub trust_forwarded_for: bool,
}

/// The gRPC service.
#[derive(Clone)]
pub struct AuthApi {
    state: Arc<State>,
}

impl AuthApi {
    /// Serves with `state`.
    pub fn new(state: State) -> Self {
        Self {
            state: Arc::new(state),
        }
    }
}

impl State {
    async fn principal<T>(&self, req: &Request<T>) -> Result<Principal> {
        self.verifier.authenticate(req.metadata()).await
    }
}

/// The caller's address: the BFF's `x-forwarded-for` when trusted, else the peer.
fn client_address<T>(req: &Request<T>, trust_forwarded_for: bool) -> String {
    let forwarded = trust_forwarded_for
        .then(|| req.metadata().get("x-forwarded-for"))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_owned());
    forwarded
        .or_else(|| req.remote_addr().map(|a| a.ip().to_string()))
        .unwrap_or_else(|| "unknown".into())
}

fn reply<T>(r: Result<T>) -> std::result::Result<Response<T>, Status> {
    r.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl AuthService for AuthApi {
    #[tracing::instrument(skip_all)]
    async fn register(
        &self,
        req: Request<pb::RegisterRequest>,
    ) -> std::result::Result<Response<pb::RegisterResponse>, Status> {
        reply(self.state.register(req).await)
    }

    #[tracing::instrument(skip_all)]
    async fn login(
        &self,
        req: Request<pb::LoginRequest>,
    ) -> std::result::Result<Response<pb::LoginResponse>, Status> {
        reply(self.state.login(req).await)
    }

    #[tracing::instrument(skip_all)]
    async fn refresh(
        &self,
        req: Request<pb::RefreshRequest>,
    ) -> std::result::Result<Response<pb::RefreshResponse>, Status> {
        reply(self.state.refresh(req.into_inner()).await)
    }

    #[tracing::instrument(skip_all)]
    async fn logout(
        &self,
        req: Request<pb::LogoutRequest>,
    ) -> std::result::Result<Response<pb::LogoutResponse>, Status> {
        reply(self.state.logout(req).await)
    }

    #[tracing::instrument(skip_all)]
    async fn logout_everywhere(
        &self,
        req: Request<pb::LogoutEverywhereRequest>,
    ) -> std::result::Result<Response<pb::LogoutEverywhereResponse>, Status> {
        reply(self.state.logout_everywhere(req).await)
    }

    async fn get_jwks(
        &self,
        _req: Request<pb::GetJwksRequest>,
    ) -> std::result::Result<Response<pb::GetJwksResponse>, Status> {
        reply(Ok(self.state.jwks()))
    }

    #[tracing::instrument(skip_all)]
    async fn get_me(
        &self,
        req: Request<pb::GetMeRequest>,
    ) -> std::result::Result<Response<pb::GetMeResponse>, Status> {
        reply(self.state.get_me(req).await)
    }

    #[tracing::instrument(skip_all)]
    async fn request_email_verification(
        &self,
        req: Request<pb::RequestEmailVerificationRequest>,
    ) -> std::result::Result<Response<pb::RequestEmailVerificationResponse>, Status> {
        reply(self.state.request_email_verification(req).await)
    }

    #[tracing::instrument(skip_all)]
    async fn verify_email(
        &self,
        req: Request<pb::VerifyEmailRequest>,
    ) -> std::result::Result<Response<pb::VerifyEmailResponse>, Status> {
        reply(self.state.verify_email(req.into_inner()).await)
    }

    #[tracing::instrument(skip_all)]
    async fn request_password_reset(
        &self,
        req: Request<pb::RequestPasswordResetRequest>,
    ) -> std::result::Result<Response<pb::RequestPasswordResetResponse>, Status> {
        reply(self.state.request_password_reset(req).await)
    }

    #[tracing::instrument(skip_all)]
    async fn reset_password(
        &self,
        req: Request<pb::ResetPasswordRequest>,
    ) -> std::result::Result<Response<pb::ResetPasswordResponse>, Status> {
        reply(self.state.reset_password(req.into_inner()).await)
    }

    #[tracing::instrument(skip_all)]
    async fn set_role(
        &self,
        req: Request<pb::SetRoleRequest>,
    ) -> std::result::Result<Response<pb::SetRoleResponse>, Status> {
        reply(self.state.set_role(req).await)
    }

    #[tracing::instrument(skip_all)]
    async fn ban_user(
        &self,
        req: Request<pb::BanUserRequest>,
    ) -> std::result::Result<Response<pb::BanUserResponse>, Status> {
        reply(self.state.ban_user(req).await)
    }

    #[tracing::instrument(skip_all)]
    async fn unban_user(
        &self,
        req: Request<pb::UnbanUserRequest>,
    ) -> std::result::Result<Response<pb::UnbanUserResponse>, Status> {
        reply(self.state.unban_user(req).await)
    }
}
