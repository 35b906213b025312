//! The product's main path over the public gRPC API, as an app would drive it.

use futures::StreamExt;
use tonic::Code;

use cityevents_proto::cityevents::api::v1::{self as api, watch_event_response::Update};
use cityevents_proto::cityevents::join::v1::RegistrationStatus;
use cityevents_testkit::authed;

use crate::helpers::*;

#[tokio::test]
async fn sign_up_verify_publish_join_fill_waitlist_leave_promotes_and_check_in() {
    let mesh = mesh().await;
    let organizer = mesh.verified().await;
    let event = mesh.published(&organizer, 2, 1).await;

    // The organizer watches the event live.
    let mut live = mesh
        .live()
        .watch_event(authed(
            api::WatchEventRequest {
                event_id: event.id.clone(),
            },
            &organizer.token,
        ))
        .await
        .unwrap()
        .into_inner();
    let first = live.next().await.unwrap().unwrap();
    assert!(
        matches!(first.update, Some(Update::Event(ref e)) if e.id == event.id),
        "{first:?}"
    );
    let mut confirmed_seen = Vec::new();

    let (ann, bob, cy) = (
        mesh.sign_up().await,
        mesh.sign_up().await,
        mesh.sign_up().await,
    );
    let join = |p: &Person| {
        let mut reg = mesh.registrations();
        let req = authed(
            api::JoinEventRequest {
                event_id: event.id.clone(),
                ..Default::default()
            },
            &p.token,
        );
        async move {
            reg.join_event(req)
                .await
                .map(|r| r.into_inner().registration.unwrap())
        }
    };
    let a = join(&ann).await.unwrap();
    assert_eq!(a.status(), RegistrationStatus::Confirmed);
    assert!(!a.ticket_code.is_empty());
    // The live stream sees the seat taken.
    while let Some(Ok(msg)) = live.next().await {
        if let Some(Update::Counts(c)) = msg.update {
            confirmed_seen.push(c.confirmed);
            if c.confirmed == 1 {
                break;
            }
        }
    }
    assert_eq!(confirmed_seen.last(), Some(&1));

    assert_eq!(
        join(&bob).await.unwrap().status(),
        RegistrationStatus::Confirmed
    );
    let waiting = join(&cy).await.unwrap();
    assert_eq!(waiting.status(), RegistrationStatus::Waitlisted);
    assert_eq!(waiting.waitlist_position, 1);
    let full = join(&mesh.sign_up().await).await.unwrap_err();
    assert_eq!(
        (full.code(), reason(&full).as_str()),
        (Code::ResourceExhausted, "WAITLIST_FULL")
    );

    // The page in one call: event, counts and my registration.
    let page = mesh
        .events()
        .get_event(authed(
            api::GetEventRequest {
                event_id: event.id.clone(),
            },
            &cy.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.counts.as_ref().unwrap().confirmed, 2);
    assert_eq!(
        page.my_registration.unwrap().status(),
        RegistrationStatus::Waitlisted
    );
    let named = page.organizer.unwrap();
    assert_eq!(
        (named.id, named.display_name.as_str()),
        (organizer.user_id.clone(), "Ada"),
        "the page names the organizer"
    );

    // Ann leaves: Cy is promoted.
    mesh.registrations()
        .leave_event(authed(
            api::LeaveEventRequest {
                event_id: event.id.clone(),
            },
            &ann.token,
        ))
        .await
        .unwrap();
    let mine = mesh
        .registrations()
        .get_my_registration(authed(
            api::GetMyRegistrationRequest {
                event_id: event.id.clone(),
            },
            &cy.token,
        ))
        .await
        .unwrap()
        .into_inner()
        .registration
        .unwrap();
    assert_eq!(mine.status(), RegistrationStatus::Confirmed);
    let tickets = mesh
        .registrations()
        .list_my_tickets(authed(api::ListMyTicketsRequest::default(), &cy.token))
        .await
        .unwrap()
        .into_inner()
        .tickets;
    let ticket = tickets[0].registration.as_ref().unwrap();
    assert_eq!(
        (
            tickets.len(),
            ticket.id.as_str(),
            ticket.ticket_code.is_empty()
        ),
        (1, mine.id.as_str(), false),
        "my tickets holds the promoted place with its code"
    );

    // The organizer checks Cy in at the door, once.
    let check = |token: &str| {
        let mut reg = mesh.registrations();
        let req = authed(
            api::CheckInRequest {
                event_id: event.id.clone(),
                ticket_code: mine.ticket_code.clone(),
            },
            token,
        );
        async move { reg.check_in(req).await.map(|r| r.into_inner()) }
    };
    assert_eq!(code(check(&bob.token).await), Code::PermissionDenied);
    assert!(check(&organizer.token).await.unwrap().first_check_in);
    assert!(!check(&organizer.token).await.unwrap().first_check_in);

    let attendees = mesh
        .registrations()
        .list_attendees(authed(
            api::ListAttendeesRequest {
                event_id: event.id.clone(),
                ..Default::default()
            },
            &organizer.token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(attendees.registrations.len(), 2);
    let mut named: Vec<_> = attendees
        .people
        .iter()
        .map(|p| (p.id.clone(), p.display_name.clone()))
        .collect();
    named.sort();
    let mut expected: Vec<_> = attendees
        .registrations
        .iter()
        .map(|r| (r.user_id.clone(), "Ada".to_owned()))
        .collect();
    expected.sort();
    assert_eq!(named, expected, "the door sees each attendee's name");
}

#[tokio::test]
async fn a_door_gets_the_ticket_key_without_signing_in() {
    let mesh = mesh().await;
    let key = mesh
        .registrations()
        .get_ticket_key(api::GetTicketKeyRequest {})
        .await
        .unwrap()
        .into_inner()
        .key
        .unwrap();
    assert_eq!((key.kty.as_str(), key.crv.as_str()), ("OKP", "Ed25519"));
    assert!(!key.x.is_empty());
}

#[tokio::test]
async fn a_retried_join_with_the_same_idempotency_key_returns_the_same_registration() {
    let mesh = mesh().await;
    let organizer = mesh.verified().await;
    let event = mesh.published(&organizer, 1, 0).await;
    let guest = mesh.sign_up().await;
    let join = |key: &'static str| {
        let mut reg = mesh.registrations();
        let mut req = authed(
            api::JoinEventRequest {
                event_id: event.id.clone(),
                ..Default::default()
            },
            &guest.token,
        );
        req.metadata_mut()
            .insert("idempotency-key", key.parse().unwrap());
        async move {
            reg.join_event(req)
                .await
                .unwrap()
                .into_inner()
                .registration
                .unwrap()
        }
    };
    let (a, b) = (join("k-1").await, join("k-1").await);
    assert_eq!(a.id, b.id);
}

#[tokio::test]
async fn a_quiet_live_stream_gets_heartbeats_so_proxies_keep_it_open() {
    let mesh = mesh_with(|c| c.live.heartbeat_secs = 1).await;
    let organizer = mesh.verified().await;
    let event = mesh.published(&organizer, 5, 0).await;
    let req = api::WatchEventRequest {
        event_id: event.id.clone(),
    };
    let mut live = mesh.live().watch_event(req).await.unwrap().into_inner();
    let mut kinds = Vec::new();
    while kinds.iter().filter(|k| **k == "heartbeat").count() < 2 {
        let msg = live.next().await.unwrap().unwrap();
        kinds.push(match msg.update {
            Some(Update::Event(_)) => "event",
            Some(Update::Counts(_)) => "counts",
            Some(Update::Heartbeat(_)) => "heartbeat",
            None => "none",
        });
    }
    assert_eq!(kinds, ["event", "counts", "heartbeat", "heartbeat"]);
}
