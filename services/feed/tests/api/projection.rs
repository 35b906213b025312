use cityevents_proto::cityevents::event::v1 as ev;
use cityevents_proto::cityevents::feed::v1 as pb;

use crate::helpers::*;

#[tokio::test]
async fn a_published_event_is_found_and_updates_cancellations_and_hiding_follow_it() {
    let d = discovery().await;
    let e = d.publish(berlin("Harbour jazz night", 24)).await;
    let found = d
        .titles(pb::SearchRequest {
            read_after: after(&e),
            ..query("harbour")
        })
        .await;
    assert_eq!(found, ["Harbour jazz night"]);

    let e = d
        .update(&e, |draft| {
            draft.title = "Harbour blues night".into();
            draft.description = "Blues by the water".into();
        })
        .await;
    let found = d
        .titles(pb::SearchRequest {
            read_after: after(&e),
            ..query("blues")
        })
        .await;
    assert_eq!(found, ["Harbour blues night"]);
    assert!(
        d.titles(pb::SearchRequest {
            read_after: after(&e),
            ..query("jazz")
        })
        .await
        .is_empty()
    );

    let e = d.moderate(&e, true).await;
    assert!(
        d.titles(pb::SearchRequest {
            read_after: after(&e),
            ..query("harbour")
        })
        .await
        .is_empty()
    );
    let e = d.moderate(&e, false).await;
    assert_eq!(
        d.titles(pb::SearchRequest {
            read_after: after(&e),
            ..query("harbour")
        })
        .await
        .len(),
        1
    );

    let e = d.cancel(&e).await;
    assert!(
        d.titles(pb::SearchRequest {
            read_after: after(&e),
            ..query("harbour")
        })
        .await
        .is_empty()
    );
}

#[tokio::test]
async fn drafts_and_unlisted_events_are_never_listed() {
    let d = discovery().await;
    d.create(berlin("Secret draft party", 24)).await;
    let unlisted = d
        .publish(ev::EventDraft {
            visibility: ev::Visibility::Unlisted as i32,
            ..berlin("Unlisted party", 24)
        })
        .await;
    let public = d.publish(berlin("Public party", 24)).await;
    let r = |e: &ev::Event| pb::SearchRequest {
        read_after: after(e),
        ..query("party")
    };
    d.titles(r(&unlisted)).await;
    assert_eq!(d.titles(r(&public)).await, ["Public party"]);
}

#[tokio::test]
async fn remaining_seats_follow_joins() {
    let d = discovery().await;
    let e = d
        .publish(ev::EventDraft {
            capacity: 2,
            ..berlin("Tiny gig", 24)
        })
        .await;
    let (_, fan) = d.world.user();
    d.join(&fan, &e).await;
    let cards = d
        .eventually(query("tiny"), |c| {
            c.first().is_some_and(|c| c.confirmed == 1)
        })
        .await;
    assert_eq!(cards[0].remaining, 1);
    let (_, other) = d.world.user();
    d.join(&other, &e).await;
    let full = pb::SearchRequest {
        free_seats_only: true,
        ..query("tiny")
    };
    d.eventually(full, |c| c.is_empty()).await;
}

/// Every column of the projection but bookkeeping times, in a stable order.
async fn projection_of(d: &Discovery) -> Vec<String> {
    sqlx::query_scalar::<_, String>(
        "SELECT concat_ws('|', e.event_id, e.version, e.listed, e.title, e.local_date,
                          s.confirmed, s.waitlisted, s.counts_seq, round(s.heat::numeric, 9),
                          (SELECT string_agg(registration_id || status || seq, ',' ORDER BY registration_id)
                           FROM registrations r WHERE r.event_id = e.event_id))
         FROM events e LEFT JOIN event_stats s USING (event_id) ORDER BY e.event_id",
    )
    .fetch_all(&d.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn replaying_the_whole_stream_twice_changes_nothing() {
    let d = discovery().await;
    let a = d.publish(berlin("Replay one", 24)).await;
    let b = d.publish(berlin("Replay two", 48)).await;
    let b = d.update(&b, |draft| draft.capacity = 3).await;
    for _ in 0..3 {
        let (_, fan) = d.world.user();
        d.join(&fan, &a).await;
    }
    d.cancel(
        &d.update(&a, |draft| draft.title = "Replay one, moved".into())
            .await,
    )
    .await;
    d.eventually(
        pb::SearchRequest {
            read_after: after(&b),
            ..query("replay")
        },
        |c| c.len() == 1,
    )
    .await;
    // Let both streams settle: the cancellation in, three joins counted.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while sqlx::query_scalar::<_, i32>(
        "SELECT s.confirmed FROM events e JOIN event_stats s USING (event_id)
         WHERE e.title = 'Replay one, moved' AND NOT e.listed",
    )
    .fetch_optional(&d.pool)
    .await
    .unwrap()
    .unwrap_or(0)
        < 3
    {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let before = projection_of(&d).await;
    let js = cityevents_messaging::connect(&d.cfg.nats).await.unwrap();
    let prefix = &d.cfg.nats.stream_prefix;
    for _ in 0..2 {
        let report = feed::rebuild::replay(&d.pool, &js, prefix, false)
            .await
            .unwrap();
        assert_eq!(
            report.applied, 0,
            "nothing is newer than what it has: {report}"
        );
        assert_eq!(projection_of(&d).await, before);
    }
    // From scratch, the same projection again.
    let report = feed::rebuild::replay(&d.pool, &js, prefix, true)
        .await
        .unwrap();
    assert!(report.messages >= 8, "{report}");
    assert_eq!(projection_of(&d).await, before);
}
