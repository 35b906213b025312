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
use tonic::Request;

use cityevents_authn::{Principal, Revocations, Sealer, Verifier};
use cityevents_proto::cityevents::auth::v1::{self as pb, auth_service_server::AuthService};
use cityevents_runtime::Result;
use cityevents_runtime::client_addr::ClientAddress;
use cityevents_runtime::error::{Reply, reply};

use crate::config::{RateLimits, TokenConfig};
use crate::metrics::AuthMetrics;
use crate::passwords::Passwords;
use crate::tokens::Issuer;
use cityevents_runtime::ratelimit::RateLimiter;

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
    /// Who the client of a request is, behind trusted proxies.
    pub client_address: ClientAddress,
    /// Seals one-time link tokens for the mail service.
    pub sealer: Sealer,
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

/// The outcome of writing a revocation to Redis right after its commit. A
/// failure does not fail the request (the change is committed): the
/// revocation copier writes it within a second (`revocation_copy`).
fn copied_later(written: redis::RedisResult<()>) {
    if let Err(e) = written {
        tracing::warn!(error = %e, "revocation not written to redis yet; the copier will");
    }
}

#[tonic::async_trait]
impl AuthService for AuthApi {
    #[tracing::instrument(skip_all)]
    async fn register(&self, req: Request<pb::RegisterRequest>) -> Reply<pb::RegisterResponse> {
        reply(self.state.register(req).await)
    }

    #[tracing::instrument(skip_all)]
    async fn login(&self, req: Request<pb::LoginRequest>) -> Reply<pb::LoginResponse> {
        reply(self.state.login(req).await)
    }

    #[tracing::instrument(skip_all)]
    async fn refresh(&self, req: Request<pb::RefreshRequest>) -> Reply<pb::RefreshResponse> {
        reply(self.state.refresh(req.into_inner()).await)
    }

    #[tracing::instrument(skip_all)]
    async fn logout(&self, req: Request<pb::LogoutRequest>) -> Reply<pb::LogoutResponse> {
        reply(self.state.logout(req).await)
    }

    #[tracing::instrument(skip_all)]
    async fn logout_everywhere(
        &self,
        req: Request<pb::LogoutEverywhereRequest>,
    ) -> Reply<pb::LogoutEverywhereResponse> {
        reply(self.state.logout_everywhere(req).await)
    }

    async fn get_jwks(&self, _req: Request<pb::GetJwksRequest>) -> Reply<pb::GetJwksResponse> {
        reply(Ok(self.state.jwks()))
    }

    #[tracing::instrument(skip_all)]
    async fn get_me(&self, req: Request<pb::GetMeRequest>) -> Reply<pb::GetMeResponse> {
        reply(self.state.get_me(req).await)
    }

    #[tracing::instrument(skip_all)]
    async fn get_public_profiles(
        &self,
        req: Request<pb::GetPublicProfilesRequest>,
    ) -> Reply<pb::GetPublicProfilesResponse> {
        reply(self.state.get_public_profiles(req.into_inner()).await)
    }

    #[tracing::instrument(skip_all)]
    async fn request_email_verification(
        &self,
        req: Request<pb::RequestEmailVerificationRequest>,
    ) -> Reply<pb::RequestEmailVerificationResponse> {
        reply(self.state.request_email_verification(req).await)
    }

    #[tracing::instrument(skip_all)]
    async fn verify_email(
        &self,
        req: Request<pb::VerifyEmailRequest>,
    ) -> Reply<pb::VerifyEmailResponse> {
        reply(self.state.verify_email(req.into_inner()).await)
    }

    #[tracing::instrument(skip_all)]
    async fn request_password_reset(
        &self,
        req: Request<pb::RequestPasswordResetRequest>,
    ) -> Reply<pb::RequestPasswordResetResponse> {
        reply(self.state.request_password_reset(req).await)
    }

    #[tracing::instrument(skip_all)]
    async fn reset_password(
        &self,
        req: Request<pb::ResetPasswordRequest>,
    ) -> Reply<pb::ResetPasswordResponse> {
        reply(self.state.reset_password(req.into_inner()).await)
    }

    #[tracing::instrument(skip_all)]
    async fn set_role(&self, req: Request<pb::SetRoleRequest>) -> Reply<pb::SetRoleResponse> {
        reply(self.state.set_role(req).await)
    }

    #[tracing::instrument(skip_all)]
    async fn ban_user(&self, req: Request<pb::BanUserRequest>) -> Reply<pb::BanUserResponse> {
        reply(self.state.ban_user(req).await)
    }

    #[tracing::instrument(skip_all)]
    async fn unban_user(&self, req: Request<pb::UnbanUserRequest>) -> Reply<pb::UnbanUserResponse> {
        reply(self.state.unban_user(req).await)
    }
}
