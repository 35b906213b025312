//! What join tells the rest of the platform: a domain event per
//! registration change, each carrying the event's counts.

use prost::Message;

use cityevents_proto::cityevents::join::v1 as pb;

use crate::helpers::{draft, new_user, spawn_app};

#[tokio::test]
async fn every_registration_change_is_written_with_the_title_and_the_counts_after_it() {
    let app = spawn_app().await;
    let event = app.event(draft(1, 0)).await;
    let title = event.draft.as_ref().unwrap().title.clone();
    let (first, first_token) = new_user(&app);
    let (second, second_token) = new_user(&app);
    app.join_as(&first_token, &event.id).await.unwrap();
    app.join_as(&second_token, &event.id).await.unwrap();
    app.leave_as(&first_token, &event.id).await.unwrap();

    let (first, second) = (first.to_string(), second.to_string());
    assert_eq!(
        app.registration_events().await,
        vec![
            ("join.confirmed".into(), first.clone(), 1, 0, title.clone()),
            (
                "join.waitlisted".into(),
                second.clone(),
                1,
                1,
                title.clone()
            ),
            // The leave and the promotion it caused commit together.
            ("join.cancelled".into(), first, 1, 0, title.clone()),
            ("join.promoted".into(), second, 1, 0, title),
        ]
    );
}

#[tokio::test]
async fn a_capacity_change_with_nobody_to_promote_is_written_as_counts_changed() {
    let app = spawn_app().await;
    let event = app.event(draft(1, 0)).await;
    app.counts(&event.id).await;
    app.update_event(&event, draft(5, 0)).await;
    app.eventually("the new capacity reaches join", async || {
        app.counts(&event.id).await.tiers[0].capacity == 5
    })
    .await;

    let capacities: Vec<i32> = app
        .published()
        .await
        .into_iter()
        .filter(|(t, _)| t == "join.counts_changed")
        .map(|(_, p)| pb::CountsChanged::decode(p.as_slice()).unwrap())
        .map(|c| c.counts.unwrap().tiers[0].capacity)
        .collect();
    // Learning of the event, then the change.
    assert_eq!(capacities, vec![1, 5]);
}
