use std::time::Duration;

use cityevents_messaging::consumer::Handler;
use cityevents_proto::cityevents::mail::v1 as pb;
use cityevents_testkit::authed;

use crate::helpers::*;

async fn deliveries(p: &Post, email: &str) -> Vec<(String, String, i32)> {
    sqlx::query_as("SELECT template, status, attempts FROM deliveries WHERE recipient = $1 ORDER BY created_at")
        .bind(email)
        .fetch_all(&p.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_redelivered_message_sends_nothing_new() {
    let p = post().await;
    let org = p.sign_up("Olga").await;
    let ben = p.sign_up("Ben").await;
    let e = p.event(&org, "Choir", 48).await;
    p.join(&ben, &e).await;
    p.wait_for(&ben.email, 2).await;
    // The join's message again, straight into the handler (as a redelivery
    // past the inbox would be): the delivery log's key holds.
    let joins = cityevents_testkit::published(&p.pool, &p.cfg.nats, "join").await;
    let confirmed = joins.iter().find(|m| m.r#type == "join.confirmed").unwrap();
    let notifier = std::sync::Arc::new(mail::notify::Notifier {
        composer: std::sync::Arc::new(
            mail::compose::Composer::new(
                &p.cfg.mail.from,
                &p.cfg.mail.public_base_url,
                p.cfg.mail.unsubscribe_key.expose(),
            )
            .unwrap(),
        ),
        sealer: p.cfg.link_seal.load().unwrap(),
    });
    for _ in 0..2 {
        let mut tx = p.pool.begin().await.unwrap();
        mail::notify::MailHandler(notifier.clone())
            .handle(&mut tx, confirmed)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        p.mails_to(&ben.email).len(),
        2,
        "the verification and one confirmation"
    );
    let templates: Vec<String> = deliveries(&p, &ben.email)
        .await
        .into_iter()
        .map(|d| d.0)
        .collect();
    assert_eq!(templates, ["verify_email", "join_confirmed"]);
}

#[tokio::test]
async fn an_smtp_outage_delays_mail_but_loses_none() {
    let mut p = post().await;
    p.smtp.pause();
    let ada = p.sign_up("Ada").await;
    // Tried and failed while the relay is away...
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while deliveries(&p, &ada.email)
        .await
        .first()
        .is_none_or(|d| d.2 < 2)
    {
        assert!(std::time::Instant::now() < deadline, "no retries seen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // ...and sent once it is back.
    p.smtp.resume();
    let mails = p.wait_for(&ada.email, 1).await;
    assert_eq!(read(&mails[0]).subject, "Confirm your email address");
    // The relay has the mail; the delivery row says so once the mail
    // service has recorded the relay's answer (a moment later).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let d = loop {
        let d = deliveries(&p, &ada.email).await.remove(0);
        if d.1 != "pending" || std::time::Instant::now() > deadline {
            break d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(d.1, "sent");
    assert!(d.2 >= 2, "sent on attempt {}", d.2);
}

#[tokio::test]
async fn a_permanent_refusal_is_recorded_and_not_retried() {
    let p = post().await;
    let admin = p
        .world
        .token(uuid::Uuid::now_v7(), cityevents_authn::Role::Admin, true);
    let req = pb::SendTestMailRequest {
        recipient: "nobody@reject.invalid".into(),
    };
    p.mail
        .clone()
        .send_test_mail(authed(req, &admin))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let d = deliveries(&p, "nobody@reject.invalid").await;
        if d.first().is_some_and(|d| d.1 == "failed") {
            assert_eq!(d[0].2, 1, "one attempt");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{d:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = p
        .mail
        .clone()
        .list_deliveries(authed(pb::ListDeliveriesRequest::default(), &admin))
        .await
        .unwrap();
    let failed = &log.into_inner().deliveries[0];
    assert_eq!(failed.status, pb::DeliveryStatus::Failed as i32);
    assert!(failed.last_error.contains("550"), "{}", failed.last_error);
    let user = p
        .world
        .token(uuid::Uuid::now_v7(), cityevents_authn::Role::User, true);
    let refused = p
        .mail
        .clone()
        .list_deliveries(authed(pb::ListDeliveriesRequest::default(), &user))
        .await;
    assert_eq!(refused.unwrap_err().code(), tonic::Code::PermissionDenied);
}

#[tokio::test]
async fn the_reminder_goes_once_with_two_replicas_running() {
    let p = post_with(2, |c| c.mail.reminder_every_secs = 1).await;
    let org = p.sign_up("Olga").await;
    let ben = p.sign_up("Ben").await;
    let e = p.event(&org, "Morning run", 20).await;
    p.join(&ben, &e).await;
    p.wait_for(&ben.email, 2).await;
    // Ben joined days ago, before the reminder was due.
    sqlx::query("UPDATE registrations SET joined_at = now() - interval '3 days'")
        .execute(&p.pool)
        .await
        .unwrap();
    let mails = p.wait_for(&ben.email, 3).await;
    assert_eq!(read(&mails[2]).subject, "Tomorrow: Morning run");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        p.mails_to(&ben.email).len(),
        3,
        "two replicas, three passes each: one reminder"
    );
}

#[tokio::test]
async fn unsubscribing_stops_all_but_security_mail() {
    let p = post().await;
    let org = p.sign_up("Olga").await;
    let ben = p.sign_up("Ben").await;
    let first = p.event(&org, "First", 48).await;
    p.join(&ben, &first).await;
    let mails = p.wait_for(&ben.email, 2).await;
    let link = mails
        .iter()
        .find_map(|m| read(m).unsubscribe)
        .expect("the confirmation's List-Unsubscribe");
    let token = link
        .trim_matches(['<', '>'])
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    p.mail
        .clone()
        .unsubscribe(pb::UnsubscribeRequest {
            token: token.clone(),
        })
        .await
        .unwrap();
    let bad = p
        .mail
        .clone()
        .unsubscribe(pb::UnsubscribeRequest {
            token: format!("{token}x"),
        })
        .await;
    assert_eq!(bad.unwrap_err().code(), tonic::Code::InvalidArgument);

    let second = p.event(&org, "Second", 48).await;
    p.join(&ben, &second).await;
    use cityevents_proto::cityevents::auth::v1 as au;
    p.auth
        .clone()
        .request_password_reset(au::RequestPasswordResetRequest {
            email: ben.email.clone(),
        })
        .await
        .unwrap();
    let mails = p.wait_for(&ben.email, 3).await;
    assert_eq!(
        read(&mails[2]).subject,
        "Reset your password",
        "security mail still comes"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let templates: Vec<String> = deliveries(&p, &ben.email)
        .await
        .into_iter()
        .map(|d| d.0)
        .collect();
    assert_eq!(
        templates,
        ["verify_email", "join_confirmed", "reset_password"],
        "no confirmation of the second"
    );
}

#[tokio::test]
async fn preferences_choose_which_mail_comes_besides_security_mail() {
    let p = post().await;
    let org = p.sign_up("Olga").await;
    let ben = p.sign_up("Ben").await;
    p.wait_for(&ben.email, 1).await;
    let mut mail = p.mail.clone();
    let got = mail
        .get_preferences(authed(pb::GetPreferencesRequest {}, &ben.token))
        .await
        .unwrap();
    let all = pb::NotificationPreferences {
        confirmations: true,
        event_changes: true,
        reminders: true,
    };
    assert_eq!(got.into_inner().preferences, Some(all));
    let no_confirmations = pb::NotificationPreferences {
        confirmations: false,
        ..all
    };
    let req = pb::SetPreferencesRequest {
        preferences: Some(no_confirmations),
    };
    mail.set_preferences(authed(req, &ben.token)).await.unwrap();

    let e = p.event(&org, "Quiz night", 48).await;
    p.join(&ben, &e).await;
    // Mail has handled the join (and, with confirmations off, sent nothing).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while sqlx::query_scalar::<_, i64>("SELECT count(*) FROM registrations")
        .fetch_one(&p.pool)
        .await
        .unwrap()
        == 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the join never reached mail"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let req = cityevents_proto::cityevents::event::v1::CancelEventRequest {
        event_id: e.id.clone(),
        expected_version: e.version,
        reason: "the host is ill".into(),
    };
    p.events
        .clone()
        .cancel_event(authed(req, &org.token))
        .await
        .unwrap();
    let mails = p.wait_for(&ben.email, 2).await;
    assert_eq!(
        read(&mails[1]).subject,
        "Cancelled: Quiz night",
        "changes still come"
    );
    let templates: Vec<String> = deliveries(&p, &ben.email)
        .await
        .into_iter()
        .map(|d| d.0)
        .collect();
    assert_eq!(
        templates,
        ["verify_email", "event_cancelled"],
        "no confirmation"
    );

    let stranger = p
        .world
        .token(uuid::Uuid::now_v7(), cityevents_authn::Role::User, true);
    let unknown = mail
        .get_preferences(authed(pb::GetPreferencesRequest {}, &stranger))
        .await;
    assert_eq!(unknown.unwrap_err().code(), tonic::Code::NotFound);
}
