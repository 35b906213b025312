use tonic::Code;

use cityevents_proto::cityevents::auth::v1 as pb;

use crate::helpers::{PASSWORD, authed, code, spawn_app};

#[tokio::test]
async fn a_ban_kills_existing_sessions_and_blocks_login_until_unbanned() {
    let app = spawn_app().await;
    let (_, admin_token) = app.admin().await;
    let (email, r) = app.user().await;
    let victim = r.user.unwrap();
    let session = r.session.unwrap();

    let ban = pb::BanUserRequest {
        user_id: victim.id.clone(),
        reason: "spam".into(),
    };
    let banned = app
        .client
        .clone()
        .ban_user(authed(ban, &admin_token))
        .await
        .unwrap()
        .into_inner();
    assert!(banned.user.unwrap().banned);

    assert_eq!(
        app.me(&session.access_token).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let refresh = app
        .client
        .clone()
        .refresh(pb::RefreshRequest {
            refresh_token: session.refresh_token,
        })
        .await;
    assert_eq!(code(refresh), Code::Unauthenticated);
    let login = app.login(&email, PASSWORD).await.unwrap_err();
    assert_eq!(login.code(), Code::PermissionDenied);

    let unban = pb::UnbanUserRequest {
        user_id: victim.id.clone(),
    };
    app.client
        .clone()
        .unban_user(authed(unban, &admin_token))
        .await
        .unwrap();
    assert!(app.login(&email, PASSWORD).await.is_ok());

    let (actions,): (Vec<String>,) =
        sqlx::query_as("SELECT array_agg(action ORDER BY id) FROM admin_audit")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(actions, ["ban", "unban"]);
    let events = app
        .published::<pb::UserBanChanged>("auth.user_banned", &victim.id)
        .await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].reason, "spam");
}

#[tokio::test]
async fn only_admins_may_ban_or_change_roles() {
    let app = spawn_app().await;
    let (_, a) = app.user().await;
    let (_, b) = app.user().await;
    let token = a.session.unwrap().access_token;
    let target = b.user.unwrap().id;
    let ban = pb::BanUserRequest {
        user_id: target.clone(),
        reason: "x".into(),
    };
    assert_eq!(
        code(app.client.clone().ban_user(authed(ban, &token)).await),
        Code::PermissionDenied
    );
    let role = pb::SetRoleRequest {
        user_id: target,
        role: pb::Role::Admin.into(),
    };
    assert_eq!(
        code(app.client.clone().set_role(authed(role, &token)).await),
        Code::PermissionDenied
    );
}

#[tokio::test]
async fn a_role_change_shows_in_the_next_token_and_kills_tokens_with_the_old_role() {
    let app = spawn_app().await;
    let (_, admin_token) = app.admin().await;
    let (email, r) = app.user().await;
    let user = r.user.unwrap();
    let old = r.session.unwrap().access_token;

    let req = pb::SetRoleRequest {
        user_id: user.id.clone(),
        role: pb::Role::Moderator.into(),
    };
    let changed = app
        .client
        .clone()
        .set_role(authed(req, &admin_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(changed.user.unwrap().role(), pb::Role::Moderator);

    assert_eq!(
        app.me(&old).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let fresh = app.login(&email, PASSWORD).await.unwrap();
    assert_eq!(fresh.user.unwrap().role(), pb::Role::Moderator);
}

#[tokio::test]
async fn admin_calls_validate_their_arguments() {
    let app = spawn_app().await;
    let (admin_id, token) = app.admin().await;
    let cases: Vec<(pb::BanUserRequest, Code)> = vec![
        (
            pb::BanUserRequest {
                user_id: "nope".into(),
                reason: "x".into(),
            },
            Code::InvalidArgument,
        ),
        (
            pb::BanUserRequest {
                user_id: uuid::Uuid::new_v4().to_string(),
                reason: "x".into(),
            },
            Code::NotFound,
        ),
        (
            pb::BanUserRequest {
                user_id: admin_id.clone(),
                reason: "x".into(),
            },
            Code::FailedPrecondition,
        ),
        (
            pb::BanUserRequest {
                user_id: uuid::Uuid::new_v4().to_string(),
                reason: " ".into(),
            },
            Code::InvalidArgument,
        ),
    ];
    for (req, want) in cases {
        assert_eq!(
            code(app.client.clone().ban_user(authed(req, &token)).await),
            want
        );
    }
    let role = pb::SetRoleRequest {
        user_id: uuid::Uuid::new_v4().to_string(),
        role: 0,
    };
    assert_eq!(
        code(app.client.clone().set_role(authed(role, &token)).await),
        Code::InvalidArgument
    );
}
