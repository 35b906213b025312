//! Spawns the real service (the same `App::build` as `main.rs`) on port 0.

use prost::Message;
use sqlx::PgPool;
use tonic::Request;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use uuid::Uuid;

use auth::Config;
use auth::config::{Limit, RateLimits};
use cityevents_authn::SigningKey;
use cityevents_proto::cityevents::auth::v1::{self as pb, auth_service_client::AuthServiceClient};
use cityevents_runtime::CancellationToken;
use cityevents_runtime::config::{Secret, ServerConfig};

pub const PASSWORD: &str = "correct horse battery";

pub use cityevents_testkit::{http_get, nats_url, redis_url};

/// A running auth service and what a test needs to poke at it.
pub struct TestApp {
    pub client: AuthServiceClient<Channel>,
    pub pool: PgPool,
    pub admin_addr: std::net::SocketAddr,
    pub grpc_addr: std::net::SocketAddr,
    pub stream_prefix: String,
    pub sealer: cityevents_authn::Sealer,
    /// Where the revocation keys live in Redis.
    pub revocation_prefix: String,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Generous limits, so only the rate-limit tests meet them.
pub fn test_config() -> Config {
    let prefix = format!("test:{}:", Uuid::new_v4().simple());
    let mut cfg = Config {
        server: ServerConfig::ephemeral(),
        ..Config::default()
    };
    cfg.telemetry.log_filter = "warn".into();
    cfg.redis.url = Secret::new(redis_url());
    cfg.redis.key_prefix = prefix.clone();
    cfg.nats.stream_prefix = format!("T{}", Uuid::new_v4().simple());
    cfg.nats.url = nats_url();
    cfg.tokens.verifier.revocation_prefix = format!("{prefix}auth:");
    cfg.tokens.signing_keys = vec![Secret::new(
        SigningKey::generate().unwrap().to_pem().unwrap(),
    )];
    cfg.tokens.link_seal.keys = vec![Secret::new(
        cityevents_authn::sealed::generate_key().unwrap(),
    )];
    let lots = Limit {
        per_minute: 10_000,
        burst: 10_000,
    };
    cfg.rate_limits = RateLimits {
        login_per_account: lots,
        login_per_address: lots,
        register_per_address: lots,
        mail_per_account: lots,
    };
    cfg
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(test_config()).await
}

/// An empty database for one test.
pub async fn fresh_database() -> String {
    cityevents_testkit::fresh_database("auth_test").await
}

pub async fn spawn_app_with(mut cfg: Config) -> TestApp {
    cfg.database.url = Secret::new(fresh_database().await);
    cfg.database.max_connections = 20;

    let stream_prefix = cfg.nats.stream_prefix.clone();
    // What the mail service holds: the keys that open link tokens.
    let sealer = cfg.tokens.link_seal.load().expect("seal keys");
    let app = auth::build(cfg.clone()).await.expect("app builds");
    let (grpc_addr, admin_addr) = (app.grpc_addr(), app.admin_addr());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(app.run(shutdown.clone()));
    let channel = Channel::from_shared(format!("http://{grpc_addr}"))
        .unwrap()
        .connect()
        .await
        .expect("connects");
    let pool = PgPool::connect(cfg.database.url.expose())
        .await
        .expect("test pool");
    TestApp {
        client: AuthServiceClient::new(channel),
        pool,
        admin_addr,
        grpc_addr,
        stream_prefix,
        sealer,
        revocation_prefix: cfg.tokens.verifier.revocation_prefix.clone(),
        shutdown,
        task,
    }
}

/// Wraps a message with `authorization: Bearer <token>`.
pub fn authed<T>(msg: T, access_token: &str) -> Request<T> {
    let mut req = Request::new(msg);
    let v: MetadataValue<_> = format!("Bearer {access_token}").parse().unwrap();
    req.metadata_mut().insert("authorization", v);
    req
}

pub fn unique_email() -> String {
    format!("user-{}@example.org", Uuid::new_v4().simple())
}

impl TestApp {
    /// The verification tokens mailed to `user_id`, oldest first, opened as
    /// the mail service opens them.
    pub async fn verification_tokens(&self, user_id: &str) -> Vec<String> {
        self.published::<pb::EmailVerificationRequested>(
            "auth.email_verification_requested",
            user_id,
        )
        .await
        .into_iter()
        .map(|m| self.unseal("verify_email", user_id, &m.sealed_token))
        .collect()
    }

    /// The reset tokens mailed to `user_id`, oldest first.
    pub async fn reset_tokens(&self, user_id: &str) -> Vec<String> {
        self.published::<pb::PasswordResetRequested>("auth.password_reset_requested", user_id)
            .await
            .into_iter()
            .map(|m| self.unseal("reset_password", user_id, &m.sealed_token))
            .collect()
    }

    fn unseal(&self, purpose: &str, user_id: &str, sealed: &str) -> String {
        self.sealer
            .open(purpose, user_id, sealed)
            .expect("a link token sealed for this user and purpose")
    }

    pub async fn register(&self, email: &str) -> pb::RegisterResponse {
        self.client
            .clone()
            .register(pb::RegisterRequest {
                email: email.into(),
                password: PASSWORD.into(),
                display_name: "Ada".into(),
            })
            .await
            .expect("register succeeds")
            .into_inner()
    }

    pub async fn login(
        &self,
        email: &str,
        password: &str,
    ) -> Result<pb::LoginResponse, tonic::Status> {
        self.client
            .clone()
            .login(pb::LoginRequest {
                email: email.into(),
                password: password.into(),
            })
            .await
            .map(|r| r.into_inner())
    }

    /// A registered user's access token and id.
    pub async fn user(&self) -> (String, pb::RegisterResponse) {
        let email = unique_email();
        let r = self.register(&email).await;
        (email, r)
    }

    /// Makes the user an admin directly in the database and logs in again.
    pub async fn admin(&self) -> (String, String) {
        let (email, r) = self.user().await;
        let id: Uuid = r.user.unwrap().id.parse().unwrap();
        sqlx::query("UPDATE users SET role = 'admin' WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .unwrap();
        let token = self
            .login(&email, PASSWORD)
            .await
            .unwrap()
            .session
            .unwrap()
            .access_token;
        (id.to_string(), token)
    }

    pub async fn me(&self, access_token: &str) -> Result<pb::User, tonic::Status> {
        let r = self
            .client
            .clone()
            .get_me(authed(pb::GetMeRequest {}, access_token))
            .await?;
        Ok(r.into_inner().user.unwrap())
    }

    /// Payloads of the `event_type` events published for `user_id`, oldest
    /// first (read from the auth stream once the relay has caught up).
    pub async fn published<M: Message + Default>(&self, event_type: &str, user_id: &str) -> Vec<M> {
        self.envelopes()
            .await
            .into_iter()
            .filter(|e| e.r#type == event_type && e.aggregate_id == user_id)
            .map(|e| M::decode(e.payload.as_slice()).unwrap())
            .collect()
    }

    /// Every event the auth service has published, oldest first.
    pub async fn envelopes(&self) -> Vec<cityevents_messaging::Envelope> {
        let nats = cityevents_messaging::NatsConfig {
            url: nats_url(),
            stream_prefix: self.stream_prefix.clone(),
        };
        cityevents_testkit::published(&self.pool, &nats, "auth").await
    }

    pub async fn metrics_text(&self) -> String {
        let url = format!("http://{}/metrics", self.admin_addr);
        http_get(&url).await
    }
}

/// A minimal HTTP/1.1 GET over a TCP stream (no client library needed).
pub fn code(r: Result<impl Sized, tonic::Status>) -> tonic::Code {
    match r {
        Ok(_) => tonic::Code::Ok,
        Err(s) => s.code(),
    }
}
