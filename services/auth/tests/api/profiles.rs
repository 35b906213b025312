//! Public profiles: what anyone may see of an account.

use tonic::Code;

use cityevents_proto::cityevents::auth::v1 as pb;

use crate::helpers::{code, spawn_app};

fn ask(ids: &[&str]) -> pb::GetPublicProfilesRequest {
    pb::GetPublicProfilesRequest {
        user_ids: ids.iter().map(|s| (*s).to_owned()).collect(),
    }
}

#[tokio::test]
async fn public_profiles_give_display_names_without_login_and_leave_out_unknown_and_banned_accounts()
 {
    let app = spawn_app().await;
    let (_, a) = app.user().await;
    let (_, b) = app.user().await;
    let (a, b) = (a.user.unwrap().id, b.user.unwrap().id);
    sqlx::query("UPDATE users SET banned_at = now() WHERE id = $1::uuid")
        .bind(&b)
        .execute(&app.pool)
        .await
        .unwrap();
    let unknown = uuid::Uuid::now_v7().to_string();

    let got = app
        .client
        .clone()
        .get_public_profiles(ask(&[&a, &b, &unknown]))
        .await
        .unwrap()
        .into_inner()
        .profiles;

    assert_eq!(
        got,
        [pb::PublicProfile {
            id: a,
            display_name: "Ada".into()
        }],
        "no email, no role: only the name, and only of live accounts"
    );
}

#[tokio::test]
async fn public_profiles_refuse_a_bad_id_and_more_than_a_hundred_at_once() {
    let app = spawn_app().await;
    let bad = app.client.clone().get_public_profiles(ask(&["nope"])).await;
    assert_eq!(code(bad), Code::InvalidArgument);
    let many: Vec<String> = (0..101).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let req = pb::GetPublicProfilesRequest { user_ids: many };
    let err = app
        .client
        .clone()
        .get_public_profiles(req)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("user_ids:"), "{}", err.message());
}
