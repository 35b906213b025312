use prost::Message;
use sqlx::PgPool;
use tonic::transport::Channel;
use uuid::Uuid;

use cityevents_authn::SigningKey;
use cityevents_proto::cityevents::event::v1::{
    self as ev, event_service_client::EventServiceClient,
};
use cityevents_proto::cityevents::join::v1::{self as pb, join_service_client::JoinServiceClient};
use cityevents_runtime::CancellationToken;
use cityevents_runtime::config::{Secret, ServerConfig};
use cityevents_runtime::grpc::client::ClientConfig;
use cityevents_testkit::{World, authed, fresh_database};
pub use cityevents_testkit::{draft, in_hours as ts, reason};

/// Stops the services when the test ends.
pub struct StopOnDrop(CancellationToken);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

pub struct TestApp {
    pub world: World,
    pub events: EventServiceClient<Channel>,
    pub join: JoinServiceClient<Channel>,
    pub pool: PgPool,
    pub organizer: String,
    event_config: event::Config,
    join_config: join::Config,
    pub join_addr: std::net::SocketAddr,
    pub join_admin: std::net::SocketAddr,
    stop: CancellationToken,
    _stop: StopOnDrop,
}

async fn channel(addr: std::net::SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tune: impl FnOnce(&mut join::Config)) -> TestApp {
    let world = World::start().await;
    let stop = CancellationToken::new();

    let mut ecfg = event::Config {
        server: ServerConfig::ephemeral(),
        ..event::Config::default()
    };
    ecfg.database.url = Secret::new(fresh_database("event_test").await);
    (ecfg.redis, ecfg.nats, ecfg.verifier, ecfg.auth) = (
        world.redis.clone(),
        world.nats.clone(),
        world.verifier.clone(),
        world.auth.clone(),
    );
    let event_config = ecfg.clone();
    let event_host = event::build(ecfg).await.unwrap();
    let event_addr = event_host.grpc_addr();
    tokio::spawn(event_host.run(stop.clone()));

    let mut jcfg = join::Config {
        server: ServerConfig::ephemeral(),
        ..join::Config::default()
    };
    let db = fresh_database("join_test").await;
    jcfg.database.url = Secret::new(db.clone());
    jcfg.database.max_connections = 20;
    (jcfg.redis, jcfg.nats, jcfg.verifier, jcfg.auth) = (
        world.redis.clone(),
        world.nats.clone(),
        world.verifier.clone(),
        world.auth.clone(),
    );
    jcfg.event = ClientConfig {
        endpoint: format!("http://{event_addr}"),
        ..ClientConfig::default()
    };
    jcfg.tickets.signing_key = Some(Secret::new(
        SigningKey::generate().unwrap().to_pem().unwrap(),
    ));
    jcfg.server.concurrency_limit = 4_096;
    tune(&mut jcfg);
    let join_config = jcfg.clone();
    let join_host = join::build(jcfg).await.unwrap();
    let (join_addr, join_admin) = (join_host.grpc_addr(), join_host.admin_addr());
    tokio::spawn(join_host.run(stop.clone()));

    let organizer = world.user().1;
    TestApp {
        events: EventServiceClient::new(channel(event_addr).await),
        join: JoinServiceClient::new(channel(join_addr).await),
        pool: PgPool::connect(&db).await.unwrap(),
        world,
        organizer,
        event_config,
        join_config,
        join_addr,
        join_admin,
        stop: stop.clone(),
        _stop: StopOnDrop(stop),
    }
}

impl TestApp {
    /// A second event-service replica on the same database that also knows
    /// the join service (for the capacity floor).
    pub async fn event_replica_with_join(&self) -> EventServiceClient<Channel> {
        let mut cfg = self.event_config.clone();
        cfg.join = ClientConfig {
            endpoint: format!("http://{}", self.join_addr),
            ..ClientConfig::default()
        };
        let host = event::build(cfg).await.unwrap();
        let addr = host.grpc_addr();
        tokio::spawn(host.run(self.stop.clone()));
        EventServiceClient::new(channel(addr).await)
    }

    /// Another join-service replica on the same database, stopped by the
    /// returned token; the handle ends with its `run` result.
    pub async fn join_replica(
        &self,
    ) -> (
        JoinServiceClient<Channel>,
        CancellationToken,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    ) {
        let host = join::build(self.join_config.clone()).await.unwrap();
        let addr = host.grpc_addr();
        let stop = CancellationToken::new();
        let running = tokio::spawn(host.run(stop.clone()));
        (JoinServiceClient::new(channel(addr).await), stop, running)
    }

    /// Holds the event's snapshot row locked (as a join batch does) until
    /// the returned transaction ends: joins of the event wait behind it.
    pub async fn lock_event(&self, event: &str) -> sqlx::Transaction<'static, sqlx::Postgres> {
        let mut tx = self.pool.begin().await.unwrap();
        sqlx::query("SELECT 1 FROM event_snapshots WHERE event_id = $1::uuid FOR UPDATE")
            .bind(event)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx
    }

    /// Replaces `event`'s draft as its organizer.
    pub async fn update_event(&self, event: &ev::Event, draft: ev::EventDraft) {
        let update = ev::UpdateEventRequest {
            event_id: event.id.clone(),
            expected_version: event.version,
            draft: Some(draft),
        };
        self.events
            .clone()
            .update_event(authed(update, &self.organizer))
            .await
            .unwrap();
    }

    /// Creates and publishes an event organized by `self.organizer`.
    pub async fn event(&self, draft: ev::EventDraft) -> ev::Event {
        let mut events = self.events.clone();
        let created = events.create_event(authed(
            ev::CreateEventRequest { draft: Some(draft) },
            &self.organizer,
        ));
        let e = created.await.unwrap().into_inner().event.unwrap();
        let publish = ev::PublishEventRequest {
            event_id: e.id.clone(),
            expected_version: e.version,
        };
        self.events
            .clone()
            .publish_event(authed(publish, &self.organizer))
            .await
            .unwrap()
            .into_inner()
            .event
            .unwrap()
    }

    pub async fn join_as(
        &self,
        token: &str,
        event: &str,
    ) -> Result<pb::Registration, tonic::Status> {
        let req = authed(
            pb::JoinRequest {
                event_id: event.into(),
                ..Default::default()
            },
            token,
        );
        Ok(self
            .join
            .clone()
            .join(req)
            .await?
            .into_inner()
            .registration
            .unwrap())
    }

    pub async fn leave_as(
        &self,
        token: &str,
        event: &str,
    ) -> Result<pb::Registration, tonic::Status> {
        let req = authed(
            pb::LeaveRequest {
                event_id: event.into(),
            },
            token,
        );
        Ok(self
            .join
            .clone()
            .leave(req)
            .await?
            .into_inner()
            .registration
            .unwrap())
    }

    pub async fn counts(&self, event: &str) -> pb::GetCountsResponse {
        self.join
            .clone()
            .get_counts(pb::GetCountsRequest {
                event_id: event.into(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    pub async fn status_of(&self, token: &str, event: &str) -> pb::RegistrationStatus {
        let req = authed(
            pb::GetRegistrationRequest {
                event_id: event.into(),
            },
            token,
        );
        self.join
            .clone()
            .get_registration(req)
            .await
            .unwrap()
            .into_inner()
            .registration
            .unwrap()
            .status()
    }

    /// Polls (bounded) until `check` holds.
    pub async fn eventually<F: AsyncFn() -> bool>(&self, what: &str, check: F) {
        cityevents_testkit::eventually(what, check).await;
    }

    /// `(status, count)` of the event's registrations in the database.
    pub async fn statuses(&self, event: &str) -> Vec<(String, i64)> {
        sqlx::query_as("SELECT status, count(*) FROM registrations WHERE event_id = $1::uuid GROUP BY status ORDER BY status")
            .bind(event)
            .fetch_all(&self.pool)
            .await
            .unwrap()
    }
}

impl TestApp {
    /// The join events published so far (type and payload), oldest first.
    pub async fn published(&self) -> Vec<(String, Vec<u8>)> {
        cityevents_testkit::published(&self.pool, &self.world.nats, "join")
            .await
            .into_iter()
            .map(|e| (e.r#type, e.payload))
            .collect()
    }

    /// `(type, registration's user, confirmed, waitlisted, event title)` of
    /// every registration event written so far, oldest first.
    pub async fn registration_events(&self) -> Vec<(String, String, i32, i32, String)> {
        self.published()
            .await
            .into_iter()
            .filter(|(t, _)| t != "join.counts_changed")
            .map(|(t, payload)| {
                let m = pb::RegistrationChanged::decode(payload.as_slice()).unwrap();
                let counts = m.counts.unwrap();
                let user = m.registration.unwrap().user_id;
                (t, user, counts.confirmed, counts.waitlisted, m.event_title)
            })
            .collect()
    }
}

pub fn new_user(app: &TestApp) -> (Uuid, String) {
    app.world.user()
}
