use tonic::Code;

use cityevents_proto::cityevents::event::v1 as pb;

use crate::helpers::{draft, spawn_app, ts};

/// Breaks one field of a good draft.
type Breaker = Box<dyn Fn(&mut pb::EventDraft)>;

fn tier(id: &str, capacity: i32) -> pb::TicketTier {
    pb::TicketTier {
        id: id.into(),
        name: "Tier".into(),
        capacity,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_bad_draft_is_refused_with_the_field_named() {
    let app = spawn_app().await;
    let (_, token) = app.world.user();
    let cases: Vec<(Breaker, &str)> = vec![
        (Box::new(|d| d.title = " ".into()), "draft.title"),
        (
            Box::new(|d| d.time_zone = "Mars/Olympus".into()),
            "draft.time_zone",
        ),
        (Box::new(|d| d.ends_at = Some(ts(1))), "draft.ends_at"),
        (Box::new(|d| d.starts_at = None), "draft.starts_at"),
        (Box::new(|d| d.location = None), "draft.location"),
        (Box::new(|d| d.capacity = -1), "draft.capacity"),
        (Box::new(|d| d.waitlist_cap = -1), "draft.waitlist_cap"),
        (
            Box::new(|d| d.starts_at.as_mut().unwrap().nanos = -1),
            "draft.starts_at",
        ),
        (
            Box::new(|d| d.ends_at.as_mut().unwrap().seconds = i64::MAX),
            "draft.ends_at",
        ),
        // Two tiers whose capacities overflow a 32-bit sum (panicked before).
        (
            Box::new(|d| d.tiers = vec![tier("a", i32::MAX), tier("b", i32::MAX)]),
            "draft.tiers",
        ),
        (
            Box::new(|d| d.tiers = vec![tier(&"x".repeat(100_000), 1)]),
            "draft.tiers.id",
        ),
        (
            Box::new(|d| {
                d.questions = vec![pb::Question {
                    label: "Size?".into(),
                    kind: pb::QuestionKind::Choice.into(),
                    choices: vec!["S".into(); 10_000],
                    ..Default::default()
                }]
            }),
            "draft.questions.choices",
        ),
        (
            Box::new(|d| d.cover_image_ids = vec!["y".repeat(1_000)]),
            "draft.cover_image_ids",
        ),
        (
            Box::new(|d| d.location = Some(pb::event_draft::Location::OnlineUrl("ftp://x".into()))),
            "draft.online_url",
        ),
        (
            Box::new(|d| {
                d.questions = vec![pb::Question {
                    label: "Size?".into(),
                    kind: pb::QuestionKind::Choice.into(),
                    ..Default::default()
                }]
            }),
            "draft.questions.choices",
        ),
    ];
    for (break_it, field) in cases {
        let mut d = draft(10);
        break_it(&mut d);
        let err = app.create(&token, d).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}");
        assert!(
            err.message().starts_with(field),
            "{field}: {}",
            err.message()
        );
        assert!(
            err.message().len() < 200,
            "{field}: the input is not echoed"
        );
    }
}

#[tokio::test]
async fn tiers_and_questions_get_ids_and_tiers_set_the_capacity() {
    let app = spawn_app().await;
    let (_, token) = app.world.user();
    let mut d = draft(0);
    d.tiers = vec![
        pb::TicketTier {
            name: "Early".into(),
            capacity: 10,
            ..Default::default()
        },
        pb::TicketTier {
            name: "Regular".into(),
            capacity: 30,
            ..Default::default()
        },
    ];
    d.questions = vec![pb::Question {
        label: "Diet".into(),
        kind: pb::QuestionKind::Text.into(),
        ..Default::default()
    }];
    let e = app.create(&token, d).await.unwrap().draft.unwrap();
    assert_eq!(e.capacity, 40);
    assert!(e.tiers.iter().all(|t| !t.id.is_empty()));
    assert!(!e.questions[0].id.is_empty());
    assert_eq!(e.tags, ["rust"]);
}

#[tokio::test]
async fn covers_are_refused_where_no_media_service_keeps_images() {
    let app = spawn_app().await;
    let (_, token) = app.world.user();
    let mut d = draft(10);
    d.cover_image_ids = vec![uuid::Uuid::now_v7().to_string()];
    let err = app.create(&token, d).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().starts_with("draft.cover_image_ids"),
        "{}",
        err.message()
    );
}
