//! Sign-up, sign-in, sessions.

use chrono::{Duration, Utc};
use sqlx::PgConnection;
use tonic::Request;
use uuid::Uuid;

use cityevents_proto::cityevents::auth::v1 as pb;
use cityevents_runtime::{Error, ErrorCode, Result};

use super::State;
use super::convert::{role_of, timestamp, user};
use crate::store::one_time::Purpose;
use crate::store::users::UserRow;
use crate::store::{one_time, sessions, users};
use crate::tokens::{self, Subject};
use crate::validate;
use cityevents_messaging::outbox;

const BAD_CREDENTIALS: &str = "email or password is incorrect";

impl State {
    pub(super) async fn register(
        &self,
        req: Request<pb::RegisterRequest>,
    ) -> Result<pb::RegisterResponse> {
        let address = self.client_address.of(&req);
        let r = req.into_inner();
        let email = validate::email("email", &r.email)?;
        validate::password("password", &r.password, &email)?;
        let name = validate::display_name("display_name", &r.display_name, &email)?;
        if let Err(e) = self
            .limiter
            .check("register-addr", &address, self.limits.register_per_address)
            .await
        {
            self.metrics
                .registrations
                .with_label_values(&["rate_limited"])
                .inc();
            return Err(e);
        }
        let hash = self.passwords.hash(&r.password).await?;

        let mut tx = self.pool.begin().await?;
        let row = match users::insert(&mut tx, Uuid::now_v7(), &email, &name, &hash).await {
            Err(e) if e.code() == ErrorCode::AlreadyExists => {
                self.metrics
                    .registrations
                    .with_label_values(&["duplicate"])
                    .inc();
                return Err(e);
            }
            other => other?,
        };
        let registered = pb::UserRegistered {
            user_id: row.id.to_string(),
            email: email.clone(),
            display_name: name,
        };
        outbox::enqueue(&mut tx, "auth.user_registered", row.id, &registered).await?;
        self.issue_one_time(&mut tx, &row, Purpose::VerifyEmail)
            .await?;
        let session = self.start_session(&mut tx, &row).await?;
        tx.commit().await?;

        self.metrics.registrations.with_label_values(&["ok"]).inc();
        tracing::info!(user_id = %row.id, "account registered");
        Ok(pb::RegisterResponse {
            user: Some(user(&row)),
            session: Some(session),
        })
    }

    pub(super) async fn login(&self, req: Request<pb::LoginRequest>) -> Result<pb::LoginResponse> {
        let address = self.client_address.of(&req);
        let r = req.into_inner();
        let email = validate::email("email", &r.email)?;
        if r.password.is_empty() {
            return Err(Error::invalid("password", "is required"));
        }
        let limited = async {
            self.limiter
                .check("login-addr", &address, self.limits.login_per_address)
                .await?;
            // Per account *and* address: a stranger failing logins for a
            // victim's email from elsewhere does not lock the victim out.
            self.limiter
                .check(
                    "login-account",
                    &format!("{email}|{address}"),
                    self.limits.login_per_account,
                )
                .await
        };
        if let Err(e) = limited.await {
            self.metrics
                .logins
                .with_label_values(&["rate_limited"])
                .inc();
            return Err(e);
        }

        let mut conn = self.pool.acquire().await?;
        let row = users::by_email(&mut conn, &email).await?;
        let ok = self
            .passwords
            .verify(&r.password, row.as_ref().map(|u| u.password_hash.as_str()))
            .await?;
        let row = match row {
            Some(row) if ok => row,
            _ => {
                self.metrics
                    .logins
                    .with_label_values(&["bad_credentials"])
                    .inc();
                return Err(Error::new(ErrorCode::Unauthenticated, BAD_CREDENTIALS));
            }
        };
        if row.banned_at.is_some() {
            self.metrics.logins.with_label_values(&["banned"]).inc();
            return Err(Error::new(
                ErrorCode::PermissionDenied,
                "this account is banned",
            ));
        }
        let session = self.start_session(&mut conn, &row).await?;
        self.metrics.logins.with_label_values(&["ok"]).inc();
        Ok(pb::LoginResponse {
            user: Some(user(&row)),
            session: Some(session),
        })
    }

    pub(super) async fn refresh(&self, r: pb::RefreshRequest) -> Result<pb::RefreshResponse> {
        validate::token("refresh_token", &r.refresh_token)?;
        let hash = tokens::hash(&r.refresh_token);
        let mut tx = self.pool.begin().await?;
        let Some((session_id, user_id)) = sessions::claim_refresh(&mut tx, &hash).await? else {
            drop(tx);
            return Err(self.refresh_refused(&hash).await?);
        };
        let row = users::require(&mut tx, user_id, "refresh_token").await?;
        if row.banned_at.is_some() {
            return Err(Error::new(
                ErrorCode::PermissionDenied,
                "this account is banned",
            ));
        }
        let session = self.rotate(&mut tx, &row, session_id).await?;
        tx.commit().await?;
        self.metrics.refreshes.with_label_values(&["ok"]).inc();
        Ok(pb::RefreshResponse {
            session: Some(session),
        })
    }

    /// Why a refresh token was not claimable; a reused one ends its session.
    async fn refresh_refused(&self, hash: &[u8]) -> Result<Error> {
        let mut conn = self.pool.acquire().await?;
        let Some(row) = sessions::lookup_refresh(&mut conn, hash).await? else {
            self.metrics.refreshes.with_label_values(&["invalid"]).inc();
            return Ok(Error::new(
                ErrorCode::Unauthenticated,
                "refresh token is not valid; sign in again",
            ));
        };
        if row.session_revoked {
            self.metrics.refreshes.with_label_values(&["invalid"]).inc();
            return Ok(Error::new(
                ErrorCode::Unauthenticated,
                "this session has ended; sign in again",
            ));
        }
        if row.used {
            // A used token came back: it was stolen or replayed. End the family.
            sessions::revoke(
                &mut conn,
                row.session_id,
                row.user_id,
                "refresh token reuse",
            )
            .await?;
            super::copied_later(
                self.revocations
                    .revoke_session(row.session_id, self.access_ttl_secs())
                    .await,
            );
            self.metrics
                .refreshes
                .with_label_values(&["reuse_detected"])
                .inc();
            tracing::warn!(user_id = %row.user_id, session_id = %row.session_id, "refresh token reuse: session revoked");
            return Ok(Error::new(
                ErrorCode::Unauthenticated,
                "refresh token was already used; the session has been ended for safety, sign in again",
            ));
        }
        self.metrics.refreshes.with_label_values(&["invalid"]).inc();
        Ok(Error::new(
            ErrorCode::Unauthenticated,
            "refresh token has expired; sign in again",
        ))
    }

    pub(super) async fn logout(
        &self,
        req: Request<pb::LogoutRequest>,
    ) -> Result<pb::LogoutResponse> {
        let me = self.principal(&req).await?;
        let mut conn = self.pool.acquire().await?;
        sessions::revoke(&mut conn, me.session_id, me.user_id, "logout").await?;
        super::copied_later(
            self.revocations
                .revoke_session(me.session_id, self.access_ttl_secs())
                .await,
        );
        Ok(pb::LogoutResponse {})
    }

    pub(super) async fn logout_everywhere(
        &self,
        req: Request<pb::LogoutEverywhereRequest>,
    ) -> Result<pb::LogoutEverywhereResponse> {
        let me = self.principal(&req).await?;
        let mut tx = self.pool.begin().await?;
        let version = users::bump_token_version(&mut tx, me.user_id).await?;
        sessions::revoke_all(&mut tx, me.user_id, "logout everywhere").await?;
        tx.commit().await?;
        super::copied_later(
            self.revocations
                .set_token_version(me.user_id, version)
                .await,
        );
        Ok(pb::LogoutEverywhereResponse {})
    }

    pub(super) fn jwks(&self) -> pb::GetJwksResponse {
        pb::GetJwksResponse {
            keys: self.issuer.jwks(),
            issuer: self.tokens.verifier.issuer.clone(),
            audience: self.tokens.verifier.audience.clone(),
        }
    }

    pub(super) async fn get_me(&self, req: Request<pb::GetMeRequest>) -> Result<pb::GetMeResponse> {
        let me = self.principal(&req).await?;
        let mut conn = self.pool.acquire().await?;
        let row = users::require(&mut conn, me.user_id, "authorization").await?;
        Ok(pb::GetMeResponse {
            user: Some(user(&row)),
        })
    }

    /// What anyone may see of up to 100 accounts; no login needed.
    pub(super) async fn get_public_profiles(
        &self,
        req: pb::GetPublicProfilesRequest,
    ) -> Result<pb::GetPublicProfilesResponse> {
        const MAX: usize = 100;
        if req.user_ids.len() > MAX {
            return Err(Error::invalid("user_ids", "at most 100 at a time"));
        }
        let ids = req
            .user_ids
            .iter()
            .map(|raw| cityevents_runtime::parse::id("user_ids", raw))
            .collect::<Result<Vec<_>>>()?;
        let mut conn = self.pool.acquire().await?;
        let profiles = users::public_names(&mut conn, &ids)
            .await?
            .into_iter()
            .map(|(id, display_name)| pb::PublicProfile {
                id: id.to_string(),
                display_name,
            })
            .collect();
        Ok(pb::GetPublicProfilesResponse { profiles })
    }

    /// Starts a session: a new refresh-token family and its first tokens.
    async fn start_session(&self, conn: &mut PgConnection, row: &UserRow) -> Result<pb::Session> {
        let session_id = sessions::create(conn, row.id).await?;
        self.rotate(conn, row, session_id).await
    }

    /// Issues the next refresh token of `session_id` and a fresh access token.
    async fn rotate(
        &self,
        conn: &mut PgConnection,
        row: &UserRow,
        session_id: Uuid,
    ) -> Result<pb::Session> {
        let (refresh, hash) = tokens::opaque()?;
        let refresh_exp = Utc::now() + Duration::seconds(self.tokens.refresh_ttl_secs as i64);
        sessions::insert_refresh(conn, &hash, session_id, refresh_exp).await?;
        let subject = Subject {
            user_id: row.id,
            role: role_of(row),
            token_version: row.token_version,
            email_verified: row.email_verified,
            session_id,
        };
        let (access, access_exp) = self.issuer.access_token(&subject)?;
        Ok(pb::Session {
            access_token: access,
            access_token_expires_at: Some(timestamp(access_exp)),
            refresh_token: refresh,
            refresh_token_expires_at: Some(timestamp(refresh_exp)),
        })
    }

    pub(super) fn access_ttl_secs(&self) -> u64 {
        self.tokens.access_ttl_secs + self.tokens.verifier.leeway_secs
    }

    /// Creates a one-time token for `row` and writes the mail request to the outbox.
    pub(super) async fn issue_one_time(
        &self,
        conn: &mut PgConnection,
        row: &UserRow,
        purpose: Purpose,
    ) -> Result<()> {
        let (token, hash) = tokens::opaque()?;
        let ttl = match purpose {
            Purpose::VerifyEmail => self.tokens.verify_ttl_secs,
            Purpose::ResetPassword => self.tokens.reset_ttl_secs,
        };
        let expires_at = Utc::now() + Duration::seconds(ttl as i64);
        one_time::void_unused(conn, row.id, purpose).await?;
        one_time::insert(conn, &hash, row.id, purpose, expires_at).await?;
        let (id, email, name, exp) = (
            row.id.to_string(),
            row.email.clone(),
            row.display_name.clone(),
            expires_at.timestamp(),
        );
        // Only the sealed form leaves this service: the stream keeps
        // messages for days and dead letters for a month.
        let sealed_token = self
            .sealer
            .seal(purpose.as_str(), &id, &token)
            .map_err(Error::internal)?;
        match purpose {
            Purpose::VerifyEmail => {
                let ev = pb::EmailVerificationRequested {
                    user_id: id,
                    email,
                    display_name: name,
                    sealed_token,
                    expires_at_unix: exp,
                    ..Default::default()
                };
                outbox::enqueue(conn, "auth.email_verification_requested", row.id, &ev).await?;
            }
            Purpose::ResetPassword => {
                let ev = pb::PasswordResetRequested {
                    user_id: id,
                    email,
                    display_name: name,
                    sealed_token,
                    expires_at_unix: exp,
                    ..Default::default()
                };
                outbox::enqueue(conn, "auth.password_reset_requested", row.id, &ev).await?;
            }
        }
        Ok(())
    }
}
