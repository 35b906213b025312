use cityevents_proto::cityevents::auth::v1 as au;
use cityevents_proto::cityevents::event::v1 as ev;
use cityevents_testkit::{authed, in_hours};

use crate::helpers::*;

/// The link's token (after `token=`).
fn token_in(text: &str) -> String {
    let at = text.find("token=").expect("a link with a token") + "token=".len();
    text[at..].split_whitespace().next().unwrap().to_owned()
}

#[tokio::test]
async fn sign_up_and_password_reset_mail_links_that_work_once() {
    let p = post().await;
    let ada = p.sign_up("Ada").await;
    let mails = p.wait_for(&ada.email, 1).await;
    let verify = read(&mails[0]);
    assert_eq!(verify.subject, "Confirm your email address");
    assert!(verify.text.contains("Hello Ada"), "{}", verify.text);
    // The HTML part escapes `/` (valid in an attribute; browsers decode it).
    assert!(
        verify.html.contains("verify-email?token="),
        "{}",
        verify.html
    );
    assert!(
        verify
            .text
            .contains("https://app.example.org/verify-email?token="),
        "{}",
        verify.text
    );
    assert!(
        verify.unsubscribe.is_none(),
        "security mail has no unsubscribe"
    );
    let token = token_in(&verify.text);
    p.auth
        .clone()
        .verify_email(au::VerifyEmailRequest {
            token: token.clone(),
        })
        .await
        .unwrap();
    let again = p
        .auth
        .clone()
        .verify_email(au::VerifyEmailRequest { token })
        .await;
    assert!(again.is_err(), "the link works once");

    p.auth
        .clone()
        .request_password_reset(au::RequestPasswordResetRequest {
            email: ada.email.clone(),
        })
        .await
        .unwrap();
    let mails = p.wait_for(&ada.email, 2).await;
    let reset = read(&mails[1]);
    assert_eq!(reset.subject, "Reset your password");
    let req = au::ResetPasswordRequest {
        token: token_in(&reset.text),
        new_password: "a new long passphrase".into(),
    };
    p.auth.clone().reset_password(req).await.unwrap();
}

#[tokio::test]
async fn a_join_is_confirmed_with_an_invitation_and_changes_reach_everyone_registered() {
    let p = post().await;
    let org = p.sign_up("Olga").await;
    let ben = p.sign_up("Ben").await;
    p.wait_for(&ben.email, 1).await; // the verification mail
    let e = p.event(&org, "Jazz on the river", 48).await;
    p.join(&ben, &e).await;

    let mails = p.wait_for(&ben.email, 2).await;
    let yes = read(&mails[1]);
    assert_eq!(yes.subject, "You're in: Jazz on the river");
    assert!(
        yes.text.contains("Where: Hall, Main St 1, Berlin"),
        "{}",
        yes.text
    );
    assert!(
        yes.html.contains("<strong>Jazz on the river</strong>"),
        "{}",
        yes.html
    );
    let (name, ctype, ics) = yes.attachment.expect("an invitation");
    assert_eq!(
        (name.as_str(), ctype.as_str()),
        ("invitation.ics", "text/calendar")
    );
    assert!(ics.contains(&format!("UID:{}@cityevents", e.id)), "{ics}");
    assert!(ics.contains("DTSTART;TZID=Europe/Berlin:"), "{ics}");
    let unsubscribe = yes.unsubscribe.expect("List-Unsubscribe");
    assert!(
        unsubscribe.starts_with("<https://app.example.org/v1/mail/unsubscribe/"),
        "{unsubscribe}"
    );

    // Moved by a day: everyone registered hears, with the new invitation.
    let mut draft = e.draft.clone().unwrap();
    draft.starts_at = Some(in_hours(72));
    draft.ends_at = Some(in_hours(74));
    let req = ev::UpdateEventRequest {
        event_id: e.id.clone(),
        expected_version: e.version,
        draft: Some(draft),
    };
    let e = p
        .events
        .clone()
        .update_event(authed(req, &org.token))
        .await
        .unwrap()
        .into_inner()
        .event
        .unwrap();
    let mails = p.wait_for(&ben.email, 3).await;
    let moved = read(&mails[2]);
    assert_eq!(moved.subject, "Changed: Jazz on the river");
    assert!(moved.text.contains("(was "), "{}", moved.text);
    assert!(
        moved
            .attachment
            .unwrap()
            .2
            .contains(&format!("SEQUENCE:{}", e.version))
    );

    let req = ev::CancelEventRequest {
        event_id: e.id.clone(),
        expected_version: e.version,
        reason: "the river flooded".into(),
    };
    p.events
        .clone()
        .cancel_event(authed(req, &org.token))
        .await
        .unwrap();
    let mails = p.wait_for(&ben.email, 4).await;
    let off = read(&mails[3]);
    assert_eq!(off.subject, "Cancelled: Jazz on the river");
    assert!(off.text.contains("the river flooded"), "{}", off.text);
    assert!(off.attachment.unwrap().2.contains("STATUS:CANCELLED"));
}
