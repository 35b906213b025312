//! Test support shared by the services' integration tests: real PostgreSQL,
//! Redis and NATS (URLs from `TEST_POSTGRES_URL`, `TEST_REDIS_URL`,
//! `TEST_NATS_URL`), a fresh database per test, unique key and stream
//! prefixes, and a running auth service whose key mints tokens for any user.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod s3;
pub mod smtp;

use std::net::SocketAddr;

use sqlx::{Connection, PgConnection};
use tonic::Request;
use tonic::metadata::MetadataValue;
use uuid::Uuid;

use auth::tokens::{Issuer, Subject};
use cityevents_authn::{Role, SigningKey, VerifierConfig};
use cityevents_messaging::NatsConfig;
use cityevents_proto::cityevents::event::v1 as ev;
use cityevents_runtime::CancellationToken;
use cityevents_runtime::config::{RedisConfig, Secret, ServerConfig};
use cityevents_runtime::grpc::client::ClientConfig;

pub fn pg_base() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432".into())
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub fn nats_url() -> String {
    std::env::var("TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// Creates an empty database named `<prefix>_<uuid>` and returns its URL.
pub async fn fresh_database(prefix: &str) -> String {
    let db = format!("{prefix}_{}", Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&format!("{}/postgres", pg_base()))
        .await
        .expect("postgres is running");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .execute(&mut admin)
        .await
        .expect("create test database");
    // Loopback in tests and benches: no TLS to PostgreSQL (sqlx would
    // otherwise negotiate it with Debian's snakeoil certificate).
    format!("{}/{db}?sslmode=disable", pg_base())
}

/// Polls (every 25 ms, for up to 10 s) until `check` holds; panics naming
/// `what` if it never does. For what a service finishes after it answers.
pub async fn eventually<F: AsyncFn() -> bool>(what: &str, check: F) {
    for _ in 0..400 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("never happened: {what}");
}

/// Drops what earlier test and bench runs left behind: `*_test_<uuid>`
/// databases and `T<uuid>_*` streams created more than `older_than` ago.
/// Every test makes its own and none drops it, so thousands pile up: they keep
/// autovacuum and NATS busy (NATS spent 3% of a core idling over 3,000
/// streams), which a benchmark would measure, and PostgreSQL's crash recovery
/// syncs every file of them before it opens (over a minute for 3,000). With
/// `Duration::ZERO` run it only while no test is running; `make test` keeps
/// an hour's (those of a test run beside it).
pub async fn sweep_leftovers(older_than: std::time::Duration) -> Sweep {
    use futures::StreamExt;
    let mut admin = PgConnection::connect(&format!("{}/postgres", pg_base()))
        .await
        .expect("postgres is running");
    // A database's PG_VERSION file is written once, when it is created.
    let dbs: Vec<String> = sqlx::query_scalar(
        "SELECT datname FROM pg_database
          WHERE datname ~ '_test_[0-9a-f]{32}$'
            AND (pg_stat_file('base/' || oid || '/PG_VERSION')).modification
                < now() - make_interval(secs => $1)",
    )
    .bind(older_than.as_secs_f64())
    .fetch_all(&mut admin)
    .await
    .unwrap();
    let mut swept = Sweep::default();
    for db in dbs {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE \"{db}\" WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await
        .unwrap();
        swept.databases += 1;
    }
    let js = async_nats::jetstream::new(async_nats::connect(nats_url()).await.unwrap());
    let before = chrono::Utc::now().timestamp() - older_than.as_secs() as i64;
    let streams: Vec<_> = js
        .streams()
        .filter_map(|s| async move { s.ok() })
        .collect()
        .await;
    for info in streams {
        let name = &info.config.name;
        let test_prefix = name.split_once('_').is_some_and(|(p, _)| {
            p.len() == 33 && p.starts_with('T') && p[1..].bytes().all(|b| b.is_ascii_hexdigit())
        });
        if test_prefix
            && info.created.unix_timestamp() <= before
            && js.delete_stream(name).await.is_ok()
        {
            swept.streams += 1;
        }
    }
    swept
}

/// What [`sweep_leftovers`] dropped.
#[derive(Debug, Default)]
pub struct Sweep {
    pub databases: usize,
    pub streams: usize,
}

/// Settings one test's services share so they see each other and nobody else.
#[derive(Clone)]
pub struct World {
    pub redis: RedisConfig,
    pub nats: NatsConfig,
    pub verifier: VerifierConfig,
    pub key: SigningKey,
    pub auth: ClientConfig,
    /// The key auth seals one-time links with (the mail service's copy).
    pub link_seal: cityevents_authn::sealed::SealConfig,
    issuer: Issuer,
    _auth_stop: CancelOnDrop,
}

#[derive(Clone)]
struct CancelOnDrop(std::sync::Arc<CancellationToken>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if std::sync::Arc::strong_count(&self.0) == 1 {
            self.0.cancel();
        }
    }
}

impl World {
    /// Starts an auth service with a fresh key and database.
    pub async fn start() -> Self {
        // Warnings and errors of every service show in a failing test's output.
        let logs = cityevents_runtime::config::TelemetryConfig {
            log_filter: "warn".into(),
            ..Default::default()
        };
        cityevents_runtime::telemetry::init("test", &logs).unwrap();
        let id = Uuid::new_v4().simple().to_string();
        let redis = RedisConfig {
            url: Secret::new(redis_url()),
            key_prefix: format!("test:{id}:"),
            ..RedisConfig::default()
        };
        let nats = NatsConfig {
            url: nats_url(),
            stream_prefix: format!("T{id}"),
        };
        let verifier = VerifierConfig {
            revocation_prefix: format!("test:{id}:auth:"),
            ..VerifierConfig::default()
        };
        let key = SigningKey::generate().unwrap();

        let mut cfg = auth::Config {
            server: ServerConfig::ephemeral(),
            ..auth::Config::default()
        };
        cfg.database.url = Secret::new(fresh_database("auth_test").await);
        cfg.redis = redis.clone();
        cfg.nats = nats.clone();
        cfg.tokens.verifier = verifier.clone();
        cfg.tokens.signing_keys = vec![Secret::new(key.to_pem().unwrap())];
        cfg.tokens.link_seal.keys = vec![Secret::new(
            cityevents_authn::sealed::generate_key().unwrap(),
        )];
        let link_seal = cfg.tokens.link_seal.clone();
        let host = auth::build(cfg.clone()).await.expect("auth builds");
        let addr: SocketAddr = host.grpc_addr();
        let stop = CancellationToken::new();
        tokio::spawn(host.run(stop.clone()));

        let issuer = Issuer::new(vec![key.clone()], &verifier, 900).unwrap();
        let auth = ClientConfig {
            endpoint: format!("http://{addr}"),
            ..ClientConfig::default()
        };
        Self {
            redis,
            nats,
            verifier,
            key,
            auth,
            link_seal,
            issuer,
            _auth_stop: CancelOnDrop(std::sync::Arc::new(stop)),
        }
    }

    /// A valid access token for `user` (signed with auth's key).
    pub fn token(&self, user: Uuid, role: Role, email_verified: bool) -> String {
        let subject = Subject {
            user_id: user,
            role,
            token_version: 0,
            email_verified,
            session_id: Uuid::new_v4(),
        };
        self.issuer.access_token(&subject).unwrap().0
    }

    /// A new verified user and their token.
    pub fn user(&self) -> (Uuid, String) {
        let id = Uuid::now_v7();
        (id, self.token(id, Role::User, true))
    }
}

/// Wraps `msg` with `authorization: Bearer <token>`.
pub fn authed<T>(msg: T, token: &str) -> Request<T> {
    let mut req = Request::new(msg);
    let v: MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    req.metadata_mut().insert("authorization", v);
    req
}

/// The whole HTTP/1.1 response to a GET of `url` (`http://host:port/path`),
/// for the admin endpoints (`/metrics`).
pub async fn http_get(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    s.write_all(
        format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

/// The status code of a call's outcome.
pub fn code<T>(r: Result<T, tonic::Status>) -> tonic::Code {
    r.map_or_else(|s| s.code(), |_| tonic::Code::Ok)
}

/// Every domain event `producer` has published so far, oldest first. Waits
/// until the relay has emptied the outbox at `pool` (it deletes a row only
/// once the stream has acknowledged it), then reads the whole stream.
pub async fn published(
    pool: &sqlx::PgPool,
    nats: &NatsConfig,
    producer: &str,
) -> Vec<cityevents_messaging::Envelope> {
    use prost::Message;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (left,): (i64,) = sqlx::query_as("SELECT count(*) FROM outbox")
            .fetch_one(pool)
            .await
            .unwrap();
        if left == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{left} outbox rows of {producer} still unpublished after 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let js = cityevents_messaging::connect(nats).await.unwrap();
    let mut stream =
        cityevents_messaging::streams::ensure_stream(&js, &nats.stream_prefix, producer)
            .await
            .unwrap();
    let (count, first, last) = {
        let state = &stream.info().await.unwrap().state;
        (state.messages, state.first_sequence, state.last_sequence)
    };
    let mut out = Vec::with_capacity(count as usize);
    if count > 0 {
        for seq in first..=last {
            let msg = stream.get_raw_message(seq).await.unwrap();
            out.push(cityevents_messaging::Envelope::decode(msg.payload).unwrap());
        }
    }
    out
}

/// A time `hours` from now (negative: ago), as a protobuf timestamp.
pub fn in_hours(hours: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: chrono::Utc::now().timestamp() + hours * 3600,
        nanos: 0,
    }
}

/// An online event draft, "Concert", starting in 24 hours for two hours.
pub fn draft(capacity: i32, waitlist_cap: i32) -> ev::EventDraft {
    ev::EventDraft {
        title: "Concert".into(),
        starts_at: Some(in_hours(24)),
        ends_at: Some(in_hours(26)),
        time_zone: "Europe/Paris".into(),
        location: Some(ev::event_draft::Location::OnlineUrl(
            "https://example.org/live".into(),
        )),
        capacity,
        waitlist_cap,
        ..ev::EventDraft::default()
    }
}

/// The reason an error answer carries (`x-cityevents-error`), or "".
pub fn reason(s: &tonic::Status) -> String {
    s.metadata()
        .get("x-cityevents-error")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}
