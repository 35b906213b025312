//! `AccountService`: sign-up, sign-in, sessions, verification and recovery,
//! over the auth service (which applies its own per-account limits).

use tonic::Request;

use cityevents_proto::cityevents::api::v1::{self as api, account_service_server::AccountService};
use cityevents_proto::cityevents::auth::v1 as auth;
use cityevents_proto::cityevents::mail::v1 as mail;

use super::{Api, Reply, answer, ok};

#[tonic::async_trait]
impl AccountService for Api {
    async fn sign_up(&self, req: Request<api::SignUpRequest>) -> Reply<api::SignUpResponse> {
        let caller = self.edge.admit(&req).await?;
        let m = req.get_ref();
        let msg = auth::RegisterRequest {
            email: m.email.clone(),
            password: m.password.clone(),
            display_name: m.display_name.clone(),
        };
        let r = answer(
            self.backends
                .auth
                .clone()
                .register(caller.outbound(&req, msg)),
        )
        .await?;
        ok(api::SignUpResponse {
            user: r.user,
            session: r.session,
        })
    }

    async fn sign_in(&self, req: Request<api::SignInRequest>) -> Reply<api::SignInResponse> {
        let caller = self.edge.admit(&req).await?;
        let m = req.get_ref();
        let msg = auth::LoginRequest {
            email: m.email.clone(),
            password: m.password.clone(),
        };
        let r = answer(self.backends.auth.clone().login(caller.outbound(&req, msg))).await?;
        ok(api::SignInResponse {
            user: r.user,
            session: r.session,
        })
    }

    async fn refresh_session(
        &self,
        req: Request<api::RefreshSessionRequest>,
    ) -> Reply<api::RefreshSessionResponse> {
        let caller = self.edge.admit(&req).await?;
        let msg = auth::RefreshRequest {
            refresh_token: req.get_ref().refresh_token.clone(),
        };
        let r = answer(
            self.backends
                .auth
                .clone()
                .refresh(caller.outbound(&req, msg)),
        )
        .await?;
        ok(api::RefreshSessionResponse { session: r.session })
    }

    async fn sign_out(&self, req: Request<api::SignOutRequest>) -> Reply<api::SignOutResponse> {
        let (caller, _) = self.edge.signed_in(&req).await?;
        let mut auth = self.backends.auth.clone();
        if req.get_ref().everywhere {
            let msg = caller.outbound(&req, auth::LogoutEverywhereRequest {});
            answer(auth.logout_everywhere(msg)).await?;
        } else {
            answer(auth.logout(caller.outbound(&req, auth::LogoutRequest {}))).await?;
        }
        ok(api::SignOutResponse {})
    }

    async fn get_account(
        &self,
        req: Request<api::GetAccountRequest>,
    ) -> Reply<api::GetAccountResponse> {
        let (caller, _) = self.edge.signed_in(&req).await?;
        let msg = caller.outbound(&req, auth::GetMeRequest {});
        let r = answer(self.backends.auth.clone().get_me(msg)).await?;
        ok(api::GetAccountResponse { user: r.user })
    }

    async fn verify_email(
        &self,
        req: Request<api::VerifyEmailRequest>,
    ) -> Reply<api::VerifyEmailResponse> {
        let caller = self.edge.admit(&req).await?;
        let msg = auth::VerifyEmailRequest {
            token: req.get_ref().token.clone(),
        };
        let r = answer(
            self.backends
                .auth
                .clone()
                .verify_email(caller.outbound(&req, msg)),
        )
        .await?;
        ok(api::VerifyEmailResponse { user: r.user })
    }

    async fn request_password_reset(
        &self,
        req: Request<api::RequestPasswordResetRequest>,
    ) -> Reply<api::RequestPasswordResetResponse> {
        let caller = self.edge.admit(&req).await?;
        let msg = auth::RequestPasswordResetRequest {
            email: req.get_ref().email.clone(),
        };
        let out = caller.outbound(&req, msg);
        answer(self.backends.auth.clone().request_password_reset(out)).await?;
        ok(api::RequestPasswordResetResponse {})
    }

    async fn reset_password(
        &self,
        req: Request<api::ResetPasswordRequest>,
    ) -> Reply<api::ResetPasswordResponse> {
        let caller = self.edge.admit(&req).await?;
        let m = req.get_ref();
        let msg = auth::ResetPasswordRequest {
            token: m.token.clone(),
            new_password: m.new_password.clone(),
        };
        answer(
            self.backends
                .auth
                .clone()
                .reset_password(caller.outbound(&req, msg)),
        )
        .await?;
        ok(api::ResetPasswordResponse {})
    }

    async fn get_notification_preferences(
        &self,
        req: Request<api::GetNotificationPreferencesRequest>,
    ) -> Reply<api::GetNotificationPreferencesResponse> {
        let (caller, _) = self.edge.signed_in(&req).await?;
        let out = caller.outbound(&req, mail::GetPreferencesRequest {});
        let r = answer(self.backends.mail.clone().get_preferences(out)).await?;
        ok(api::GetNotificationPreferencesResponse {
            preferences: r.preferences,
        })
    }

    async fn update_notification_preferences(
        &self,
        req: Request<api::UpdateNotificationPreferencesRequest>,
    ) -> Reply<api::UpdateNotificationPreferencesResponse> {
        let (caller, _) = self.edge.signed_in(&req).await?;
        let msg = mail::SetPreferencesRequest {
            preferences: req.get_ref().preferences,
        };
        let r = answer(
            self.backends
                .mail
                .clone()
                .set_preferences(caller.outbound(&req, msg)),
        )
        .await?;
        ok(api::UpdateNotificationPreferencesResponse {
            preferences: r.preferences,
        })
    }

    async fn unsubscribe_from_mail(
        &self,
        req: Request<api::UnsubscribeFromMailRequest>,
    ) -> Reply<api::UnsubscribeFromMailResponse> {
        let caller = self.edge.admit(&req).await?;
        let msg = mail::UnsubscribeRequest {
            token: req.get_ref().token.clone(),
        };
        let out = caller.outbound(&req, msg);
        answer(self.backends.mail.clone().unsubscribe(out)).await?;
        ok(api::UnsubscribeFromMailResponse {})
    }

    async fn request_email_verification(
        &self,
        req: Request<api::RequestEmailVerificationRequest>,
    ) -> Reply<api::RequestEmailVerificationResponse> {
        let (caller, _) = self.edge.signed_in(&req).await?;
        let out = caller.outbound(&req, auth::RequestEmailVerificationRequest {});
        answer(self.backends.auth.clone().request_email_verification(out)).await?;
        ok(api::RequestEmailVerificationResponse {})
    }
}
