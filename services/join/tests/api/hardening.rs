//! The defects the hardening review found, each pinned by a test: removed
//! tiers, ghost seats, rejoins of a full event, waitlist positions,
//! concurrent copies of a key, overload and shutdown.

use std::time::Duration;

use futures::future::join_all;
use tonic::Code;
use tonic::metadata::MetadataValue;

use cityevents_proto::cityevents::event::v1 as ev;
use cityevents_proto::cityevents::join::v1::{self as pb, join_service_client::JoinServiceClient};
use cityevents_testkit::authed;

use crate::helpers::{draft, new_user, reason, spawn_app, spawn_app_with};

fn tier(id: &str, capacity: i32) -> ev::TicketTier {
    ev::TicketTier {
        id: id.into(),
        name: id.into(),
        capacity,
        ..Default::default()
    }
}

fn join_req(event: &str, tier: &str, token: &str) -> tonic::Request<pb::JoinRequest> {
    authed(
        pb::JoinRequest {
            event_id: event.into(),
            tier_id: tier.into(),
            ..Default::default()
        },
        token,
    )
}

fn with_key(
    mut req: tonic::Request<pb::JoinRequest>,
    key: &str,
) -> tonic::Request<pb::JoinRequest> {
    req.metadata_mut()
        .insert("idempotency-key", MetadataValue::try_from(key).unwrap());
    req
}

async fn join_tier(
    client: &JoinServiceClient<tonic::transport::Channel>,
    event: &str,
    tier: &str,
    token: &str,
) -> Result<pb::Registration, tonic::Status> {
    let reply = client.clone().join(join_req(event, tier, token)).await?;
    Ok(reply.into_inner().registration.unwrap())
}

/// Waits until join has applied the edit that leaves only tier "c" offered.
async fn only_tier_c_offered(app: &crate::helpers::TestApp, event: &str) {
    app.eventually("the edit reaches join", async || {
        app.counts(event)
            .await
            .tiers
            .iter()
            .all(|t| t.tier_id == "c")
    })
    .await;
}

fn count(rows: &[(String, i64)], status: &str) -> i64 {
    rows.iter().find(|(s, _)| s == status).map_or(0, |r| r.1)
}

#[tokio::test]
async fn a_removed_tier_takes_no_new_joins_and_its_holders_count_against_the_event() {
    let app = spawn_app().await;
    let mut d = draft(0, 100);
    d.tiers = vec![tier("a", 2), tier("b", 2)];
    let event = app.event(d.clone()).await;
    let holders: Vec<_> = (0..4).map(|_| new_user(&app)).collect();
    for (i, (_, t)) in holders.iter().enumerate() {
        let tier = if i < 2 { "a" } else { "b" };
        let r = join_tier(&app.join, &event.id, tier, t).await.unwrap();
        assert_eq!(r.status(), pb::RegistrationStatus::Confirmed);
    }

    d.tiers = vec![tier("c", 4)];
    app.update_event(&event, d).await;
    only_tier_c_offered(&app, &event.id).await;

    let (_, late) = new_user(&app);
    let refused = join_tier(&app.join, &event.id, "a", &late)
        .await
        .unwrap_err();
    assert_eq!(
        (refused.code(), reason(&refused).as_str()),
        (Code::FailedPrecondition, "TIER_REMOVED")
    );
    // Four places are held in removed tiers; the event holds four in all.
    let waiting = join_tier(&app.join, &event.id, "c", &late).await.unwrap();
    assert_eq!(waiting.status(), pb::RegistrationStatus::Waitlisted);
    let counts = app.counts(&event.id).await;
    assert_eq!((counts.confirmed, counts.waitlisted), (4, 1));
    assert_eq!(
        counts.tiers[0].remaining, 0,
        "the event's room bounds the tier's"
    );

    // A holder of a removed tier leaves: the event has room, and the head
    // of the waitlist of the offered tier gets it.
    app.leave_as(&holders[0].1, &event.id).await.unwrap();
    assert_eq!(
        app.status_of(&late, &event.id).await,
        pb::RegistrationStatus::Confirmed
    );
    assert_eq!(app.counts(&event.id).await.confirmed, 4);
}

#[tokio::test]
async fn joins_naming_old_tiers_while_the_edit_lands_never_exceed_the_event_capacity() {
    let app = spawn_app().await;
    let mut d = draft(0, 0);
    d.tiers = vec![tier("a", 10), tier("b", 10)];
    let event = app.event(d.clone()).await;
    // Join knows the event with its first tiers before the storm.
    let first = join_tier(&app.join, &event.id, "a", &new_user(&app).1)
        .await
        .unwrap();
    assert_eq!(first.status(), pb::RegistrationStatus::Confirmed);
    let users: Vec<_> = (0..300).map(|_| new_user(&app)).collect();
    d.tiers = vec![tier("c", 20)];
    let edit = app.update_event(&event, d);
    let joins = join_all(users.iter().enumerate().map(|(i, (_, t))| {
        let tier = ["a", "b", "c"][i % 3];
        let (app, id) = (&app, event.id.clone());
        async move {
            // Spread over the edit: some before it lands, some after.
            tokio::time::sleep(Duration::from_millis((i % 30) as u64 * 10)).await;
            join_tier(&app.join, &id, tier, t).await
        }
    }));
    let (_, results) = tokio::join!(edit, joins);
    let confirmed_answers = results
        .iter()
        .filter(|r| {
            r.as_ref()
                .is_ok_and(|r| r.status() == pb::RegistrationStatus::Confirmed)
        })
        .count();
    let rows = app.statuses(&event.id).await;
    assert!(count(&rows, "confirmed") <= 20, "overbooked: {rows:?}");
    assert_eq!(count(&rows, "confirmed") as usize, confirmed_answers + 1);
    // Once the edit has landed, the old tiers take nothing.
    only_tier_c_offered(&app, &event.id).await;
    let (_, late) = new_user(&app);
    let refused = join_tier(&app.join, &event.id, "b", &late)
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "TIER_REMOVED");
    assert!(app.counts(&event.id).await.confirmed <= 20);
}

#[tokio::test]
async fn a_user_who_holds_a_place_or_a_waitlist_entry_gets_it_back_on_a_full_event() {
    let app = spawn_app().await;
    let event = app.event(draft(1, 1)).await;
    let (seated, waiting, outsider) = (new_user(&app).1, new_user(&app).1, new_user(&app).1);
    let place = app.join_as(&seated, &event.id).await.unwrap();
    let entry = app.join_as(&waiting, &event.id).await.unwrap();
    let full = app.join_as(&outsider, &event.id).await.unwrap_err();
    assert_eq!(reason(&full), "WAITLIST_FULL");

    let again = app.join_as(&seated, &event.id).await.unwrap();
    assert_eq!(
        (again.id.clone(), again.status()),
        (place.id, pb::RegistrationStatus::Confirmed)
    );
    assert!(!again.ticket_code.is_empty());
    let again = app.join_as(&waiting, &event.id).await.unwrap();
    assert_eq!(
        (again.id.clone(), again.status(), again.waitlist_position),
        (entry.id, pb::RegistrationStatus::Waitlisted, 1)
    );
}

#[tokio::test]
async fn the_waitlist_lists_every_entry_with_its_position() {
    let app = spawn_app().await;
    let event = app.event(draft(1, 10)).await;
    for _ in 0..4 {
        app.join_as(&new_user(&app).1, &event.id).await.unwrap();
    }
    let list = app
        .join
        .clone()
        .list_waitlist(authed(
            pb::ListWaitlistRequest {
                event_id: event.id.clone(),
                page_size: 2,
                page_token: String::new(),
            },
            &app.organizer,
        ))
        .await
        .unwrap()
        .into_inner();
    let positions: Vec<i32> = list
        .registrations
        .iter()
        .map(|r| r.waitlist_position)
        .collect();
    assert_eq!(positions, [1, 2]);
    let rest = app
        .join
        .clone()
        .list_waitlist(authed(
            pb::ListWaitlistRequest {
                event_id: event.id.clone(),
                page_size: 2,
                page_token: list.next_page_token,
            },
            &app.organizer,
        ))
        .await
        .unwrap()
        .into_inner();
    let positions: Vec<i32> = rest
        .registrations
        .iter()
        .map(|r| r.waitlist_position)
        .collect();
    assert_eq!(positions, [3]);
}

#[tokio::test]
async fn a_join_whose_caller_stopped_waiting_before_the_batch_decided_takes_no_seat() {
    let app = spawn_app().await;
    let event = app.event(draft(100, 0)).await;
    app.join_as(&new_user(&app).1, &event.id).await.unwrap();
    let lock = app.lock_event(&event.id).await;
    let users: Vec<_> = (0..20).map(|_| new_user(&app)).collect();
    let timed_out = join_all(users.iter().map(|(_, t)| {
        let mut req = join_req(&event.id, "", t);
        req.set_timeout(Duration::from_millis(300));
        let mut client = app.join.clone();
        async move { client.join(req).await }
    }))
    .await;
    let codes: Vec<Code> = timed_out
        .iter()
        .map(|r| r.as_ref().err().map_or(Code::Ok, |s| s.code()))
        .collect();
    // tonic's server answers an expired `grpc-timeout` with CANCELLED;
    // admission may refuse at once a join it cannot answer in time.
    let expired = |c: &Code| {
        matches!(
            c,
            Code::DeadlineExceeded | Code::Cancelled | Code::ResourceExhausted
        )
    };
    assert!(codes.iter().all(expired), "{codes:?}");
    // The server counts each deadline from the call's arrival, a little
    // after the client's: let those pass too before the batch may decide.
    tokio::time::sleep(Duration::from_millis(700)).await;
    lock.rollback().await.unwrap();

    // The shard settles in order, so this join comes after the expired ones.
    app.join_as(&new_user(&app).1, &event.id).await.unwrap();
    assert_eq!(app.statuses(&event.id).await, [("confirmed".into(), 2)]);
    assert_eq!(app.counts(&event.id).await.confirmed, 2);
}

#[tokio::test]
async fn concurrent_copies_of_a_keyed_join_all_get_the_one_registration() {
    let app = spawn_app().await;
    // Joined at once after publishing: the first copies meet an event join
    // has no snapshot of yet.
    let event = app.event(draft(10, 0)).await;
    let (_, token) = new_user(&app);
    let copies = join_all((0..20).map(|_| {
        let mut client = app.join.clone();
        let req = with_key(join_req(&event.id, "", &token), "same-key");
        async move { client.join(req).await }
    }))
    .await;
    let ids: Vec<String> = copies
        .into_iter()
        .map(|r| r.unwrap().into_inner().registration.unwrap().id)
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] == w[1]),
        "one registration: {ids:?}"
    );
    assert_eq!(app.statuses(&event.id).await, [("confirmed".into(), 1)]);
}

#[tokio::test]
async fn under_overload_the_excess_is_refused_at_once_with_retry_after_and_takes_nothing() {
    let app = spawn_app_with(|c| {
        c.batch.shards = 1;
        c.batch.max_queue = 8;
    })
    .await;
    let event = app.event(draft(0, 0)).await;
    app.join_as(&new_user(&app).1, &event.id).await.unwrap();
    let users: Vec<_> = (0..400).map(|_| new_user(&app)).collect();
    let results = join_all(users.iter().map(|(_, t)| app.join_as(t, &event.id))).await;
    let refused: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(!refused.is_empty(), "a queue of 8 cannot take 400 at once");
    for s in &refused {
        assert_eq!(
            (s.code(), reason(s).as_str()),
            (Code::ResourceExhausted, "OVERLOADED")
        );
        assert!(s.metadata().get("retry-after").is_some());
    }
    let answered = results.iter().filter(|r| r.is_ok()).count() as i64;
    assert_eq!(
        app.statuses(&event.id).await,
        [("confirmed".into(), answered + 1)]
    );
}

#[tokio::test]
async fn counts_of_a_draft_are_hidden_from_everyone_but_its_organizers() {
    let app = spawn_app().await;
    let created = app
        .events
        .clone()
        .create_event(authed(
            ev::CreateEventRequest {
                draft: Some(draft(10, 0)),
            },
            &app.organizer,
        ))
        .await
        .unwrap()
        .into_inner()
        .event
        .unwrap();
    // The organizer's call makes join fetch the draft from the event service.
    let own = app
        .join
        .clone()
        .get_counts(authed(
            pb::GetCountsRequest {
                event_id: created.id.clone(),
            },
            &app.organizer,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.confirmed, 0);
    let anonymous = app
        .join
        .clone()
        .get_counts(pb::GetCountsRequest {
            event_id: created.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (anonymous.code(), reason(&anonymous).as_str()),
        (Code::NotFound, "EVENT_NOT_FOUND")
    );
    let stranger = app
        .join
        .clone()
        .get_counts(authed(
            pb::GetCountsRequest {
                event_id: created.id.clone(),
            },
            &new_user(&app).1,
        ))
        .await
        .unwrap_err();
    assert_eq!(stranger.code(), Code::NotFound);
}

#[tokio::test]
async fn a_shutdown_during_a_storm_answers_every_join_the_server_had_accepted() {
    let app = spawn_app().await;
    let event = app.event(draft(0, 0)).await;
    let (replica, stop, running) = app.join_replica().await;
    join_tier(&replica, &event.id, "", &new_user(&app).1)
        .await
        .unwrap();
    let lock = app.lock_event(&event.id).await;
    let users: Vec<_> = (0..100).map(|_| new_user(&app)).collect();
    let storm = tokio::spawn({
        let (replica, event) = (replica.clone(), event.id.clone());
        async move {
            let joins = users
                .iter()
                .map(|(_, t)| join_tier(&replica, &event, "", t));
            join_all(joins).await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;
    lock.rollback().await.unwrap();

    let results = storm.await.unwrap();
    running.await.unwrap().unwrap();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(
        ok,
        100,
        "every accepted join answered: {:?}",
        results.iter().find(|r| r.is_err())
    );
    assert_eq!(app.statuses(&event.id).await, [("confirmed".into(), 101)]);
}

#[tokio::test]
async fn the_batch_workers_and_the_reads_have_pools_of_their_own_shown_in_metrics() {
    let app = spawn_app().await;
    let event = app.event(draft(10, 0)).await;
    app.join_as(&new_user(&app).1, &event.id).await.unwrap();
    let text = cityevents_testkit::http_get(&format!("http://{}/metrics", app.join_admin)).await;
    for pool in ["main", "batch"] {
        assert!(
            text.contains(&format!("db_pool_max_connections{{pool=\"{pool}\"}}")),
            "{pool}: {text}"
        );
        assert!(text.contains(&format!("db_pool_saturated{{pool=\"{pool}\"}}")));
    }
    // Two shards hold a connection each; their pool has one to spare.
    assert!(
        text.contains(r#"db_pool_max_connections{pool="batch"} 3"#),
        "{text}"
    );
}

#[tokio::test]
async fn a_message_over_the_size_limit_is_refused_in_the_error_tables_terms() {
    let app = spawn_app().await;
    let event = app.event(draft(10, 0)).await;
    let (_, token) = new_user(&app);
    let mut req = join_req(&event.id, "", &token);
    req.get_mut().answers = vec![pb::Answer {
        question_id: "q".into(),
        value: Some(pb::answer::Value::Text("x".repeat(5 * 1024 * 1024))),
    }];
    let err = app.join.clone().join(req).await.unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::ResourceExhausted, "MESSAGE_TOO_LARGE")
    );
    assert!(err.message().contains("larger than"), "{}", err.message());
    // The connection is fine and nothing was taken.
    app.join_as(&token, &event.id).await.unwrap();
    assert_eq!(app.statuses(&event.id).await, [("confirmed".into(), 1)]);
}
