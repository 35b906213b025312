#![allow(dead_code)]

use std::time::Duration;

use sqlx::PgPool;
use tonic::transport::Channel;
use uuid::Uuid;

use cityevents_authn::Role;
use cityevents_proto::cityevents::event::v1::{
    self as ev, event_service_client::EventServiceClient,
};
use cityevents_proto::cityevents::feed::v1::{self as pb, feed_service_client::FeedServiceClient};
use cityevents_proto::cityevents::join::v1::{self as jn, join_service_client::JoinServiceClient};
use cityevents_runtime::CancellationToken;
use cityevents_runtime::config::{Secret, ServerConfig};
use cityevents_runtime::grpc::client::ClientConfig;
use cityevents_testkit::{World, authed, fresh_database, in_hours};

pub use cityevents_testkit::reason;

pub struct StopOnDrop(pub CancellationToken);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Event, join and feed services on one world.
pub struct Discovery {
    pub world: World,
    pub events: EventServiceClient<Channel>,
    pub joins: JoinServiceClient<Channel>,
    pub feed: FeedServiceClient<Channel>,
    /// The feed's database.
    pub pool: PgPool,
    pub cfg: feed::Config,
    pub organizer: (Uuid, String),
    pub stop: CancellationToken,
    _stop: StopOnDrop,
}

async fn connect(addr: std::net::SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

pub async fn discovery() -> Discovery {
    discovery_with(|_| {}).await
}

pub async fn discovery_with(tune: impl FnOnce(&mut feed::Config)) -> Discovery {
    let world = World::start().await;
    let stop = CancellationToken::new();
    let mut ecfg = event::Config {
        server: ServerConfig::ephemeral(),
        ..Default::default()
    };
    ecfg.database.url = Secret::new(fresh_database("event_test").await);
    (ecfg.redis, ecfg.nats, ecfg.verifier, ecfg.auth) = (
        world.redis.clone(),
        world.nats.clone(),
        world.verifier.clone(),
        world.auth.clone(),
    );
    let host = event::build(ecfg).await.unwrap();
    let event_addr = host.grpc_addr();
    tokio::spawn(host.run(stop.clone()));

    let mut jcfg = join::Config {
        server: ServerConfig::ephemeral(),
        ..Default::default()
    };
    jcfg.database.url = Secret::new(fresh_database("join_test").await);
    (jcfg.redis, jcfg.nats, jcfg.verifier, jcfg.auth) = (
        world.redis.clone(),
        world.nats.clone(),
        world.verifier.clone(),
        world.auth.clone(),
    );
    jcfg.event = ClientConfig {
        endpoint: format!("http://{event_addr}"),
        ..Default::default()
    };
    jcfg.tickets.signing_key = Some(Secret::new(
        cityevents_authn::SigningKey::generate()
            .unwrap()
            .to_pem()
            .unwrap(),
    ));
    let host = join::build(jcfg).await.unwrap();
    let join_addr = host.grpc_addr();
    tokio::spawn(host.run(stop.clone()));

    let mut cfg = feed::Config {
        server: ServerConfig::ephemeral(),
        ..Default::default()
    };
    let db = fresh_database("feed_test").await;
    cfg.database.url = Secret::new(db.clone());
    (cfg.redis, cfg.nats, cfg.verifier, cfg.auth) = (
        world.redis.clone(),
        world.nats.clone(),
        world.verifier.clone(),
        world.auth.clone(),
    );
    cfg.feed.cursor_key = Secret::new("test cursor key");
    tune(&mut cfg);
    let host = feed::build(cfg.clone()).await.unwrap();
    let feed_addr = host.grpc_addr();
    tokio::spawn(host.run(stop.clone()));

    let organizer = world.user();
    Discovery {
        events: EventServiceClient::new(connect(event_addr).await),
        joins: JoinServiceClient::new(connect(join_addr).await),
        feed: FeedServiceClient::new(connect(feed_addr).await),
        pool: PgPool::connect(&db).await.unwrap(),
        cfg,
        organizer,
        world,
        stop: stop.clone(),
        _stop: StopOnDrop(stop),
    }
}

/// An in-person event `hours` from now for two hours.
pub fn at(title: &str, city: &str, lat: f64, lon: f64, hours: i64) -> ev::EventDraft {
    ev::EventDraft {
        title: title.into(),
        description: format!("{title}, described at length"),
        category: "music".into(),
        starts_at: Some(in_hours(hours)),
        ends_at: Some(in_hours(hours + 2)),
        time_zone: "Europe/Berlin".into(),
        location: Some(ev::event_draft::Location::Venue(ev::Venue {
            name: "Hall".into(),
            address: "Main St 1".into(),
            city: city.into(),
            latitude: lat,
            longitude: lon,
        })),
        capacity: 10,
        visibility: ev::Visibility::Public as i32,
        ..Default::default()
    }
}

/// A Berlin event `hours` from now.
pub fn berlin(title: &str, hours: i64) -> ev::EventDraft {
    at(title, "Berlin", 52.52, 13.405, hours)
}

pub fn ts(seconds: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds, nanos: 0 }
}

/// Read-after the event's version: the feed answers once it has it.
pub fn after(e: &ev::Event) -> Option<pb::ReadAfter> {
    Some(pb::ReadAfter {
        event_id: e.id.clone(),
        version: e.version,
    })
}

impl Discovery {
    pub fn token(&self) -> &str {
        &self.organizer.1
    }

    /// Creates `draft` as the organizer (a draft, unpublished).
    pub async fn create(&self, draft: ev::EventDraft) -> ev::Event {
        self.create_as(self.token(), draft).await
    }

    pub async fn create_as(&self, token: &str, draft: ev::EventDraft) -> ev::Event {
        let req = authed(ev::CreateEventRequest { draft: Some(draft) }, token);
        let reply = self.events.clone().create_event(req).await.unwrap();
        reply.into_inner().event.unwrap()
    }

    /// Creates and publishes `draft`.
    pub async fn publish(&self, draft: ev::EventDraft) -> ev::Event {
        self.publish_as(self.token(), draft).await
    }

    pub async fn publish_as(&self, token: &str, draft: ev::EventDraft) -> ev::Event {
        let e = self.create_as(token, draft).await;
        let req = authed(
            ev::PublishEventRequest {
                event_id: e.id,
                expected_version: e.version,
            },
            token,
        );
        let reply = self.events.clone().publish_event(req).await.unwrap();
        reply.into_inner().event.unwrap()
    }

    pub async fn update(&self, e: &ev::Event, edit: impl FnOnce(&mut ev::EventDraft)) -> ev::Event {
        let mut draft = e.draft.clone().unwrap();
        edit(&mut draft);
        let req = authed(
            ev::UpdateEventRequest {
                event_id: e.id.clone(),
                expected_version: e.version,
                draft: Some(draft),
            },
            self.token(),
        );
        self.events
            .clone()
            .update_event(req)
            .await
            .unwrap()
            .into_inner()
            .event
            .unwrap()
    }

    pub async fn cancel(&self, e: &ev::Event) -> ev::Event {
        let req = authed(
            ev::CancelEventRequest {
                event_id: e.id.clone(),
                expected_version: e.version,
                reason: "rain".into(),
            },
            self.token(),
        );
        self.events
            .clone()
            .cancel_event(req)
            .await
            .unwrap()
            .into_inner()
            .event
            .unwrap()
    }

    pub async fn moderate(&self, e: &ev::Event, hide: bool) -> ev::Event {
        let token = self.world.token(Uuid::now_v7(), Role::Moderator, true);
        let mut events = self.events.clone();
        if hide {
            let req = authed(
                ev::HideEventRequest {
                    event_id: e.id.clone(),
                    reason: "spam".into(),
                },
                &token,
            );
            events
                .hide_event(req)
                .await
                .unwrap()
                .into_inner()
                .event
                .unwrap()
        } else {
            let req = authed(
                ev::UnhideEventRequest {
                    event_id: e.id.clone(),
                    reason: "ok".into(),
                },
                &token,
            );
            events
                .unhide_event(req)
                .await
                .unwrap()
                .into_inner()
                .event
                .unwrap()
        }
    }

    pub async fn join(&self, token: &str, e: &ev::Event) -> jn::Registration {
        let req = authed(
            jn::JoinRequest {
                event_id: e.id.clone(),
                ..Default::default()
            },
            token,
        );
        self.joins
            .clone()
            .join(req)
            .await
            .unwrap()
            .into_inner()
            .registration
            .unwrap()
    }

    pub async fn search(&self, r: pb::SearchRequest) -> Result<pb::SearchResponse, tonic::Status> {
        self.feed
            .clone()
            .search(r)
            .await
            .map(tonic::Response::into_inner)
    }

    /// The titles a search finds.
    pub async fn titles(&self, r: pb::SearchRequest) -> Vec<String> {
        self.search(r)
            .await
            .unwrap()
            .events
            .into_iter()
            .map(|c| c.title)
            .collect()
    }

    /// Waits (up to 10 s) until `check` holds for the cards of `r`.
    pub async fn eventually(
        &self,
        r: pb::SearchRequest,
        check: impl Fn(&[pb::EventCard]) -> bool,
    ) -> Vec<pb::EventCard> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let cards = self.search(r.clone()).await.unwrap().events;
            if check(&cards) {
                return cards;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the feed never got there: {cards:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A search for `query`.
pub fn query(q: &str) -> pb::SearchRequest {
    pb::SearchRequest {
        query: q.into(),
        ..Default::default()
    }
}
