use sqlx::PgPool;
use tonic::transport::Channel;
use uuid::Uuid;

use cityevents_proto::cityevents::event::v1::{
    self as pb, event_service_client::EventServiceClient,
};
use cityevents_runtime::CancellationToken;
use cityevents_runtime::config::{Secret, ServerConfig};
use cityevents_testkit::{World, authed, fresh_database};

pub struct TestApp {
    pub world: World,
    pub client: EventServiceClient<Channel>,
    pub pool: PgPool,
    _stop: StopOnDrop,
}

/// Stops the service when the test ends.
pub struct StopOnDrop(pub CancellationToken);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

pub async fn spawn_app() -> TestApp {
    let world = World::start().await;
    let mut cfg = event::Config {
        server: ServerConfig::ephemeral(),
        ..event::Config::default()
    };
    let db = fresh_database("event_test").await;
    cfg.database.url = Secret::new(db.clone());
    cfg.redis = world.redis.clone();
    cfg.nats = world.nats.clone();
    cfg.verifier = world.verifier.clone();
    cfg.auth = world.auth.clone();
    let host = event::build(cfg).await.expect("event builds");
    let addr = host.grpc_addr();
    let stop = CancellationToken::new();
    tokio::spawn(host.run(stop.clone()));
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let pool = PgPool::connect(&db).await.unwrap();
    TestApp {
        world,
        client: EventServiceClient::new(channel),
        pool,
        _stop: StopOnDrop(stop),
    }
}

pub fn ts(offset_hours: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: chrono::Utc::now().timestamp() + offset_hours * 3600,
        nanos: 0,
    }
}

pub fn draft(capacity: i32) -> pb::EventDraft {
    pb::EventDraft {
        title: "Rust meetup".into(),
        description: "Talks and pizza".into(),
        category: "tech".into(),
        tags: vec!["Rust".into()],
        starts_at: Some(ts(24)),
        ends_at: Some(ts(27)),
        time_zone: "Europe/Berlin".into(),
        location: Some(pb::event_draft::Location::Venue(pb::Venue {
            name: "Hall".into(),
            address: "Main St 1".into(),
            city: "Berlin".into(),
            latitude: 52.5,
            longitude: 13.4,
        })),
        capacity,
        ..pb::EventDraft::default()
    }
}

impl TestApp {
    pub async fn create(
        &self,
        token: &str,
        draft: pb::EventDraft,
    ) -> Result<pb::Event, tonic::Status> {
        let req = authed(pb::CreateEventRequest { draft: Some(draft) }, token);
        Ok(self
            .client
            .clone()
            .create_event(req)
            .await?
            .into_inner()
            .event
            .unwrap())
    }

    pub async fn publish(&self, token: &str, e: &pb::Event) -> Result<pb::Event, tonic::Status> {
        let req = authed(
            pb::PublishEventRequest {
                event_id: e.id.clone(),
                expected_version: e.version,
            },
            token,
        );
        Ok(self
            .client
            .clone()
            .publish_event(req)
            .await?
            .into_inner()
            .event
            .unwrap())
    }

    pub async fn get(&self, token: Option<&str>, id: &str) -> Result<pb::Event, tonic::Status> {
        let msg = pb::GetEventRequest {
            event_id: id.into(),
        };
        let req = match token {
            Some(t) => authed(msg, t),
            None => tonic::Request::new(msg),
        };
        Ok(self
            .client
            .clone()
            .get_event(req)
            .await?
            .into_inner()
            .event
            .unwrap())
    }

    /// Types of the events published for `event_id`, oldest first (read
    /// from the event stream once the relay has caught up).
    pub async fn published(&self, event_id: &str) -> Vec<String> {
        cityevents_testkit::published(&self.pool, &self.world.nats, "event")
            .await
            .into_iter()
            .filter(|e| e.aggregate_id == event_id)
            .map(|e| e.r#type)
            .collect()
    }

    pub fn moderator(&self) -> String {
        self.world
            .token(Uuid::now_v7(), cityevents_authn::Role::Moderator, true)
    }
}
