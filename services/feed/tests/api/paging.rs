use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cityevents_proto::cityevents::event::v1 as ev;
use cityevents_proto::cityevents::feed::v1 as pb;
use cityevents_runtime::config::Secret;
use cityevents_testkit::authed;

use crate::helpers::*;

fn ids(r: &pb::SearchResponse) -> Vec<String> {
    r.events.iter().map(|c| c.event_id.clone()).collect()
}

#[tokio::test]
async fn pages_neither_skip_nor_repeat_while_events_are_added_and_changed() {
    let d = discovery().await;
    let mut originals = Vec::new();
    for i in 0..12 {
        originals.push(d.publish(berlin(&format!("Session {i}"), 24 + i)).await);
    }
    let r = pb::SearchRequest {
        page_size: 5,
        read_after: after(&originals[11]),
        ..Default::default()
    };
    let first = d.search(r.clone()).await.unwrap();
    assert_eq!(first.events.len(), 5);
    // Between pages: sooner and later events arrive, one on page two moves
    // in its title, one on page one is edited too.
    let sooner = d.publish(berlin("Sooner", 12)).await;
    let later = d.publish(berlin("Later", 100)).await;
    d.update(&originals[6], |draft| {
        draft.title = "Session six, renamed".into()
    })
    .await;
    d.update(&originals[1], |draft| {
        draft.title = "Session one, renamed".into()
    })
    .await;
    d.titles(pb::SearchRequest {
        read_after: after(&later),
        ..query("later")
    })
    .await;
    let mut seen: Vec<String> = ids(&first);
    let mut token = first.next_page_token;
    while !token.is_empty() {
        let page = d
            .search(pb::SearchRequest {
                page_token: token,
                read_after: None,
                ..r.clone()
            })
            .await
            .unwrap();
        seen.extend(ids(&page));
        token = page.next_page_token;
    }
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "an event was repeated");
    for e in &originals {
        assert!(unique.contains(&e.id), "an event was skipped");
    }
    assert!(
        unique.contains(&later.id),
        "an event after the cursor shows"
    );
    assert!(
        !unique.contains(&sooner.id),
        "an event before the cursor stays behind it"
    );
    // A token is bound to its search.
    let other = pb::SearchRequest {
        page_token: d.search(r.clone()).await.unwrap().next_page_token,
        city: "Paris".into(),
        ..r
    };
    assert_eq!(
        d.search(other).await.unwrap_err().code(),
        tonic::Code::InvalidArgument
    );
}

#[tokio::test]
async fn for_you_ranks_what_you_liked_mixes_organizers_and_starts_new_users_on_trending() {
    let d = discovery().await;
    let other = d.world.user();
    let mut liked = Vec::new();
    for i in 0..2 {
        let draft = ev::EventDraft {
            category: "jazz".into(),
            tags: vec!["sax".into()],
            ..berlin(&format!("Past jazz {i}"), 24)
        };
        liked.push(d.publish(draft).await);
    }
    for i in 0..4 {
        let draft = ev::EventDraft {
            category: "jazz".into(),
            ..berlin(&format!("Jazz {i}"), 30 + i)
        };
        d.publish(draft).await;
    }
    let popular = d
        .publish_as(
            &other.1,
            ev::EventDraft {
                category: "food".into(),
                ..berlin("Street food", 40)
            },
        )
        .await;
    let (_, me) = d.world.user();
    for e in &liked {
        d.join(&me, e).await;
    }
    for _ in 0..3 {
        let (_, fan) = d.world.user();
        d.join(&fan, &popular).await;
    }
    // Wait until the projection saw every join.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sqlx::query_scalar::<_, i64>("SELECT count(*) FROM registrations")
        .fetch_one(&d.pool)
        .await
        .unwrap()
        < 5
    {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let for_you = |token: &str, page_token: String| {
        let mut feed = d.feed.clone();
        let req = authed(
            pb::PersonalFeedRequest {
                page_size: 3,
                page_token,
                ..Default::default()
            },
            token,
        );
        async move { feed.personal_feed(req).await.unwrap().into_inner() }
    };
    let first = for_you(&me, String::new()).await;
    let titles: Vec<_> = first.events.iter().map(|c| c.title.as_str()).collect();
    // Joined events are left out; at most two of one organizer in a row
    // of ten, so the other organizer's popular event comes third.
    assert!(
        titles[0].starts_with("Jazz") && titles[1].starts_with("Jazz"),
        "{titles:?}"
    );
    assert_eq!(titles[2], "Street food", "{titles:?}");
    let mut seen: Vec<String> = first.events.iter().map(|c| c.event_id.clone()).collect();
    let mut token = first.next_page_token;
    while !token.is_empty() {
        let page = for_you(&me, token).await;
        seen.extend(page.events.iter().map(|c| c.event_id.clone()));
        token = page.next_page_token;
    }
    assert_eq!(
        seen.len(),
        5,
        "four jazz events and the popular one, each once"
    );
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 5);

    let (_, newcomer) = d.world.user();
    let fresh = for_you(&newcomer, String::new()).await;
    assert_eq!(
        fresh.events[0].title, "Street food",
        "trending first for someone new"
    );
    let trending = d
        .feed
        .clone()
        .trending(pb::TrendingRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(trending.events[0].title, "Street food");
    let unauthenticated = d
        .feed
        .clone()
        .personal_feed(pb::PersonalFeedRequest::default())
        .await
        .unwrap_err();
    assert_eq!(unauthenticated.code(), tonic::Code::Unauthenticated);
}

#[tokio::test]
async fn read_after_waits_for_the_projection_and_says_when_it_is_behind() {
    let d = discovery_with(|c| c.feed.read_after_wait_ms = 300).await;
    let e = d.publish(berlin("Fresh off the press", 24)).await;
    // No waiting loop: the first answer already holds it.
    assert_eq!(
        d.titles(pb::SearchRequest {
            read_after: after(&e),
            ..query("press")
        })
        .await
        .len(),
        1
    );
    let ahead = pb::ReadAfter {
        event_id: e.id.clone(),
        version: e.version + 10,
    };
    let err = d
        .search(pb::SearchRequest {
            read_after: Some(ahead),
            ..query("press")
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    assert_eq!(reason(&err), "FEED_BEHIND");
}

#[tokio::test]
async fn a_cached_page_is_dropped_as_soon_as_a_listing_changes() {
    let d = discovery_with(|c| c.feed.cache_ttl_ms = 600_000).await;
    let e = d.publish(berlin("Cached gig", 24)).await;
    d.titles(pb::SearchRequest {
        read_after: after(&e),
        ..query("gig")
    })
    .await;
    assert_eq!(d.titles(query("gig")).await, ["Cached gig"]);
    assert_eq!(
        d.titles(query("gig")).await,
        ["Cached gig"],
        "from the cache"
    );
    d.cancel(&e).await;
    // With a ten-minute TTL only the invalidation can make this pass.
    d.eventually(query("gig"), |c| c.is_empty()).await;
}

/// A Redis of this test's own, to stop.
struct OwnRedis(Child, u16);

impl OwnRedis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        Self(child, port)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn with_redis_stopped_mid_test_the_feed_answers_from_the_database() {
    let redis = OwnRedis::start();
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", redis.1)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let url = format!("redis://127.0.0.1:{}", redis.1);
    let d = discovery_with(|c| {
        c.redis.url = Secret::new(url.clone());
        c.redis.response_timeout_ms = 200;
    })
    .await;
    let e = d.publish(berlin("Resilient rave", 24)).await;
    d.titles(pb::SearchRequest {
        read_after: after(&e),
        ..query("rave")
    })
    .await;
    assert_eq!(d.titles(query("rave")).await, ["Resilient rave"]);
    drop(redis);
    for _ in 0..5 {
        assert_eq!(d.titles(query("rave")).await, ["Resilient rave"]);
    }
    let second = d.publish(berlin("Second rave", 30)).await;
    let found = d
        .titles(pb::SearchRequest {
            read_after: after(&second),
            ..query("rave")
        })
        .await;
    assert_eq!(found.len(), 2);
}
