use tonic::Code;

use cityevents_proto::cityevents::join::v1 as pb;
use cityevents_testkit::{authed, code};

use crate::helpers::{draft, new_user, reason, spawn_app};

#[tokio::test]
async fn check_in_by_ticket_is_idempotent_and_rejects_foreign_and_cancelled_tickets() {
    let app = spawn_app().await;
    let event = app.event(draft(10, 0)).await;
    let other = app.event(draft(10, 0)).await;
    let (_, guest) = new_user(&app);
    let ticket = app.join_as(&guest, &event.id).await.unwrap().ticket_code;
    assert!(!ticket.is_empty());
    let check = |event_id: &str, code: &str| pb::CheckInRequest {
        event_id: event_id.into(),
        ticket_code: code.into(),
    };

    let (_, stranger) = new_user(&app);
    assert_eq!(
        code(
            app.join
                .clone()
                .check_in(authed(check(&event.id, &ticket), &stranger))
                .await
        ),
        Code::PermissionDenied
    );

    let first = app
        .join
        .clone()
        .check_in(authed(check(&event.id, &ticket), &app.organizer))
        .await
        .unwrap()
        .into_inner();
    assert!(first.first_check_in);
    assert_eq!(
        first.registration.unwrap().status(),
        pb::RegistrationStatus::CheckedIn
    );
    let again = app
        .join
        .clone()
        .check_in(authed(check(&event.id, &ticket), &app.organizer))
        .await
        .unwrap()
        .into_inner();
    assert!(!again.first_check_in);

    let foreign = app
        .join
        .clone()
        .check_in(authed(check(&other.id, &ticket), &app.organizer))
        .await
        .unwrap_err();
    assert_eq!(reason(&foreign), "TICKET_FOREIGN");
    let forged = app
        .join
        .clone()
        .check_in(authed(check(&event.id, "bm90IGEgdGlja2V0"), &app.organizer))
        .await
        .unwrap_err();
    assert_eq!(
        (forged.code(), reason(&forged).as_str()),
        (Code::InvalidArgument, "TICKET_INVALID")
    );

    let (_, leaver) = new_user(&app);
    let gone = app.join_as(&leaver, &event.id).await.unwrap().ticket_code;
    app.leave_as(&leaver, &event.id).await.unwrap();
    let cancelled = app
        .join
        .clone()
        .check_in(authed(check(&event.id, &gone), &app.organizer))
        .await
        .unwrap_err();
    assert_eq!(reason(&cancelled), "TICKET_NOT_VALID");
}

#[tokio::test]
async fn organizers_page_through_attendees_and_the_waitlist_and_removal_promotes() {
    let app = spawn_app().await;
    let event = app.event(draft(3, 0)).await;
    let users: Vec<_> = (0..5).map(|_| new_user(&app)).collect();
    for (_, t) in &users {
        app.join_as(t, &event.id).await.unwrap();
    }
    let page = |token: &str| pb::ListAttendeesRequest {
        event_id: event.id.clone(),
        page_size: 2,
        page_token: token.into(),
    };
    let first = app
        .join
        .clone()
        .list_attendees(authed(page(""), &app.organizer))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.registrations.len(), 2);
    let second = app
        .join
        .clone()
        .list_attendees(authed(page(&first.next_page_token), &app.organizer))
        .await
        .unwrap();
    assert_eq!(second.into_inner().registrations.len(), 1);
    assert_eq!(
        code(
            app.join
                .clone()
                .list_attendees(authed(page(""), &users[0].1))
                .await
        ),
        Code::PermissionDenied
    );

    let wl = pb::ListWaitlistRequest {
        event_id: event.id.clone(),
        ..Default::default()
    };
    let waitlist = app
        .join
        .clone()
        .list_waitlist(authed(wl, &app.organizer))
        .await
        .unwrap()
        .into_inner();
    let order: Vec<_> = waitlist
        .registrations
        .iter()
        .map(|r| r.user_id.clone())
        .collect();
    assert_eq!(order, [users[3].0.to_string(), users[4].0.to_string()]);

    let remove = pb::RemoveAttendeeRequest {
        event_id: event.id.clone(),
        user_id: users[0].0.to_string(),
        reason: "no-show".into(),
    };
    app.join
        .clone()
        .remove_attendee(authed(remove, &app.organizer))
        .await
        .unwrap();
    assert_eq!(
        app.status_of(&users[3].1, &event.id).await,
        pb::RegistrationStatus::Confirmed
    );
    let counts = app.counts(&event.id).await;
    assert_eq!((counts.confirmed, counts.waitlisted), (3, 1));
}
