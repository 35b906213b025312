use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::future::join_all;
use uuid::Uuid;

use cityevents_proto::cityevents::join::v1 as pb;

use crate::helpers::{draft, new_user, spawn_app};

#[tokio::test]
async fn two_thousand_concurrent_joins_confirm_exactly_capacity_and_waitlist_the_rest_in_arrival_order()
 {
    let app = spawn_app().await;
    let event = app.event(draft(100, 1_900)).await;
    let users: Vec<_> = (0..2_000).map(|_| new_user(&app)).collect();
    let joins = users.iter().map(|(_, token)| {
        let (app, token, id) = (&app, token.clone(), event.id.clone());
        async move { app.join_as(&token, &id).await }
    });
    let results = join_all(joins).await;

    let errors: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(errors.is_empty(), "no errors: {:?}", errors.first());
    let regs: Vec<pb::Registration> = results.into_iter().map(Result::unwrap).collect();
    let confirmed = regs
        .iter()
        .filter(|r| r.status() == pb::RegistrationStatus::Confirmed)
        .count();
    assert_eq!(confirmed, 100);
    assert_eq!(
        app.statuses(&event.id).await,
        [("confirmed".into(), 100), ("waitlisted".into(), 1_900)]
    );
    let counts = app.counts(&event.id).await;
    assert_eq!((counts.confirmed, counts.waitlisted), (100, 1_900));
    let has_ticket = |r: &pb::Registration| !r.ticket_code.is_empty();
    assert!(
        regs.iter()
            .all(|r| has_ticket(r) == (r.status() == pb::RegistrationStatus::Confirmed)),
        "tickets exactly for confirmed places"
    );

    // Arrival order: every confirmed registration came before every
    // waitlisted one, and the waitlist order is the arrival order.
    let rows: Vec<(Uuid, String, Option<i64>)> = sqlx::query_as(
        "SELECT id, status, waitlist_seq FROM registrations WHERE event_id = $1::uuid ORDER BY id",
    )
    .bind(&event.id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(rows[..100].iter().all(|r| r.1 == "confirmed"));
    let seqs: Vec<i64> = rows[100..].iter().map(|r| r.2.unwrap()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "waitlist follows arrival order"
    );
    let mut positions: Vec<i32> = regs
        .iter()
        .map(|r| r.waitlist_position)
        .filter(|p| *p > 0)
        .collect();
    positions.sort_unstable();
    assert_eq!(
        positions,
        (1..=1_900).collect::<Vec<_>>(),
        "each waitlist position handed out once"
    );
}

#[tokio::test]
async fn joins_past_the_waitlist_cap_are_refused_and_leave_nothing_behind() {
    let app = spawn_app().await;
    let event = app.event(draft(5, 5)).await;
    let users: Vec<_> = (0..40).map(|_| new_user(&app)).collect();
    let results = join_all(users.iter().map(|(_, t)| app.join_as(t, &event.id))).await;
    let refused: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(refused.len(), 30);
    assert!(
        refused
            .iter()
            .all(|s| s.code() == tonic::Code::ResourceExhausted
                && crate::helpers::reason(s) == "WAITLIST_FULL")
    );
    assert_eq!(
        app.statuses(&event.id).await,
        [("confirmed".into(), 5), ("waitlisted".into(), 5)]
    );
}

#[tokio::test]
async fn the_same_user_joining_fifty_times_at_once_holds_one_registration() {
    let app = spawn_app().await;
    let event = app.event(draft(10, 0)).await;
    let (_, token) = new_user(&app);
    let results = join_all((0..50).map(|_| app.join_as(&token, &event.id))).await;
    let ids: std::collections::HashSet<String> =
        results.into_iter().map(|r| r.unwrap().id).collect();
    assert_eq!(ids.len(), 1, "every answer names the same registration");
    assert_eq!(app.statuses(&event.id).await, [("confirmed".into(), 1)]);
    assert_eq!(app.counts(&event.id).await.confirmed, 1);
}

#[tokio::test]
async fn leaves_and_joins_racing_never_push_confirmed_past_capacity_and_promote_in_order() {
    let app = spawn_app().await;
    let event = app.event(draft(10, 0)).await;
    let first: Vec<_> = (0..30).map(|_| new_user(&app)).collect();
    for (_, t) in &first {
        app.join_as(t, &event.id).await.unwrap();
    }
    // Watch the confirmed count from the database while the race runs.
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (pool, done, id) = (app.pool.clone(), done.clone(), event.id.clone());
        tokio::spawn(async move {
            let mut max = 0i64;
            while !done.load(Ordering::Relaxed) {
                let (n,): (i64,) = sqlx::query_as(
                    "SELECT count(*) FROM registrations WHERE event_id = $1::uuid AND status IN ('confirmed', 'checked_in')",
                )
                .bind(&id)
                .fetch_one(&pool)
                .await
                .unwrap();
                max = max.max(n);
            }
            max
        })
    };
    let newcomers: Vec<_> = (0..20).map(|_| new_user(&app)).collect();
    let leaves = first[..10]
        .iter()
        .map(|(_, t)| async { app.leave_as(t, &event.id).await.map(|_| ()) });
    let joins = newcomers
        .iter()
        .map(|(_, t)| async { app.join_as(t, &event.id).await.map(|_| ()) });
    let (l, j) = tokio::join!(join_all(leaves), join_all(joins));
    done.store(true, Ordering::Relaxed);
    assert!(l.iter().chain(j.iter()).all(Result::is_ok));
    assert!(
        watcher.await.unwrap() <= 10,
        "confirmed never exceeded capacity"
    );

    // The ten who left were replaced by the ten earliest on the waitlist.
    for (_, t) in &first[10..20] {
        assert_eq!(
            app.status_of(t, &event.id).await,
            pb::RegistrationStatus::Confirmed
        );
    }
    for (_, t) in &first[20..] {
        assert_eq!(
            app.status_of(t, &event.id).await,
            pb::RegistrationStatus::Waitlisted
        );
    }
    let counts = app.counts(&event.id).await;
    assert_eq!((counts.confirmed, counts.waitlisted), (10, 30));
}
