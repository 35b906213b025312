#![allow(dead_code)]

use std::time::Duration;

use mail_parser::{MessageParser, MimeHeaders};
use sqlx::PgPool;
use tonic::transport::Channel;
use uuid::Uuid;

use cityevents_proto::cityevents::auth::v1::{self as au, auth_service_client::AuthServiceClient};
use cityevents_proto::cityevents::event::v1::{
    self as ev, event_service_client::EventServiceClient,
};
use cityevents_proto::cityevents::join::v1::{self as jn, join_service_client::JoinServiceClient};
use cityevents_proto::cityevents::mail::v1::mail_service_client::MailServiceClient;
use cityevents_runtime::CancellationToken;
use cityevents_runtime::config::{Secret, ServerConfig};
use cityevents_runtime::grpc::client::ClientConfig;
use cityevents_testkit::smtp::SmtpCatcher;
use cityevents_testkit::{World, authed, fresh_database, in_hours};

pub struct StopOnDrop(pub CancellationToken);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Auth, event, join and (`replicas`) mail services, and an SMTP server.
pub struct Post {
    pub world: World,
    pub smtp: SmtpCatcher,
    pub auth: AuthServiceClient<Channel>,
    pub events: EventServiceClient<Channel>,
    pub joins: JoinServiceClient<Channel>,
    pub mail: MailServiceClient<Channel>,
    /// The mail database.
    pub pool: PgPool,
    pub cfg: mail::Config,
    _stop: StopOnDrop,
}

async fn connect(addr: std::net::SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

pub async fn post() -> Post {
    post_with(1, |_| {}).await
}

pub async fn post_with(replicas: usize, tune: impl FnOnce(&mut mail::Config)) -> Post {
    let world = World::start().await;
    let smtp = SmtpCatcher::start();
    let stop = CancellationToken::new();
    let shared = (
        world.redis.clone(),
        world.nats.clone(),
        world.verifier.clone(),
        world.auth.clone(),
    );

    let mut ecfg = event::Config {
        server: ServerConfig::ephemeral(),
        ..Default::default()
    };
    ecfg.database.url = Secret::new(fresh_database("event_test").await);
    (ecfg.redis, ecfg.nats, ecfg.verifier, ecfg.auth) = shared.clone();
    let host = event::build(ecfg).await.unwrap();
    let event_addr = host.grpc_addr();
    tokio::spawn(host.run(stop.clone()));

    let mut jcfg = join::Config {
        server: ServerConfig::ephemeral(),
        ..Default::default()
    };
    jcfg.database.url = Secret::new(fresh_database("join_test").await);
    (jcfg.redis, jcfg.nats, jcfg.verifier, jcfg.auth) = shared.clone();
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

    let mut cfg = mail::Config {
        server: ServerConfig::ephemeral(),
        ..Default::default()
    };
    let db = fresh_database("mail_test").await;
    cfg.database.url = Secret::new(db.clone());
    (cfg.redis, cfg.nats, cfg.verifier, cfg.auth) = shared;
    cfg.link_seal = world.link_seal.clone();
    cfg.smtp.port = smtp.port;
    cfg.mail.public_base_url = "https://app.example.org".into();
    cfg.mail.unsubscribe_key = Secret::new("test unsubscribe key");
    cfg.mail.retry_base_ms = 100;
    tune(&mut cfg);
    let mut mail_addr = None;
    for _ in 0..replicas.max(1) {
        let host = mail::build(cfg.clone()).await.unwrap();
        mail_addr.get_or_insert(host.grpc_addr());
        tokio::spawn(host.run(stop.clone()));
    }
    let auth_addr = world.auth.endpoint.clone();
    Post {
        auth: AuthServiceClient::new(
            Channel::from_shared(auth_addr)
                .unwrap()
                .connect()
                .await
                .unwrap(),
        ),
        events: EventServiceClient::new(connect(event_addr).await),
        joins: JoinServiceClient::new(connect(join_addr).await),
        mail: MailServiceClient::new(connect(mail_addr.unwrap()).await),
        pool: PgPool::connect(&db).await.unwrap(),
        cfg,
        smtp,
        world,
        _stop: StopOnDrop(stop),
    }
}

/// Someone who signed up through auth (so mail knows their address).
pub struct Someone {
    pub user_id: Uuid,
    pub email: String,
    pub token: String,
}

impl Post {
    pub async fn sign_up(&self, name: &str) -> Someone {
        // Lower case, as auth keeps addresses.
        let email = format!(
            "{}-{}@example.org",
            name.to_lowercase(),
            Uuid::new_v4().simple()
        );
        let r = self
            .auth
            .clone()
            .register(au::RegisterRequest {
                email: email.clone(),
                password: "correct horse battery staple".into(),
                display_name: name.into(),
            })
            .await
            .unwrap()
            .into_inner();
        let user_id: Uuid = r.user.unwrap().id.parse().unwrap();
        let token = self
            .world
            .token(user_id, cityevents_authn::Role::User, true);
        Someone {
            user_id,
            email,
            token,
        }
    }

    /// A published in-person event in Berlin, `hours` from now.
    pub async fn event(&self, organizer: &Someone, title: &str, hours: i64) -> ev::Event {
        let draft = ev::EventDraft {
            title: title.into(),
            starts_at: Some(in_hours(hours)),
            ends_at: Some(in_hours(hours + 2)),
            time_zone: "Europe/Berlin".into(),
            location: Some(ev::event_draft::Location::Venue(ev::Venue {
                name: "Hall".into(),
                address: "Main St 1".into(),
                city: "Berlin".into(),
                latitude: 52.5,
                longitude: 13.4,
            })),
            capacity: 10,
            ..Default::default()
        };
        let mut events = self.events.clone();
        let e = events
            .create_event(authed(
                ev::CreateEventRequest { draft: Some(draft) },
                &organizer.token,
            ))
            .await
            .unwrap()
            .into_inner()
            .event
            .unwrap();
        let req = ev::PublishEventRequest {
            event_id: e.id,
            expected_version: e.version,
        };
        events
            .publish_event(authed(req, &organizer.token))
            .await
            .unwrap()
            .into_inner()
            .event
            .unwrap()
    }

    pub async fn join(&self, who: &Someone, e: &ev::Event) {
        let req = jn::JoinRequest {
            event_id: e.id.clone(),
            ..Default::default()
        };
        self.joins
            .clone()
            .join(authed(req, &who.token))
            .await
            .unwrap();
    }

    /// The mails received so far to `email`.
    pub fn mails_to(&self, email: &str) -> Vec<Vec<u8>> {
        self.smtp
            .mails()
            .into_iter()
            .filter(|m| to(m) == email)
            .collect()
    }

    /// Waits (up to 20 s) for the `n`th mail to `email` and returns them all.
    pub async fn wait_for(&self, email: &str, n: usize) -> Vec<Vec<u8>> {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let mails = self.mails_to(email);
            if mails.len() >= n {
                return mails;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} of {n} mails to {email}",
                mails.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The envelope recipient the catcher recorded.
pub fn to(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    text.lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("X-Catcher-To: ")
        .trim()
        .to_owned()
}

/// A mail read back: subject, text part, HTML part, attachment (name,
/// content type, text), List-Unsubscribe.
pub struct Read {
    pub subject: String,
    pub text: String,
    pub html: String,
    pub attachment: Option<(String, String, String)>,
    pub unsubscribe: Option<String>,
}

pub fn read(raw: &[u8]) -> Read {
    // Past the catcher's first line.
    let start = raw.iter().position(|b| *b == b'\n').unwrap() + 1;
    let m = MessageParser::default()
        .parse(&raw[start..])
        .expect("a MIME message");
    let attachment = m.attachments().next().map(|a| {
        let ct = a
            .content_type()
            .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")))
            .unwrap_or_default();
        (
            a.attachment_name().unwrap_or("").to_owned(),
            ct,
            String::from_utf8_lossy(a.contents()).into_owned(),
        )
    });
    Read {
        subject: m.subject().unwrap_or("").to_owned(),
        text: m.body_text(0).unwrap_or_default().into_owned(),
        html: m.body_html(0).unwrap_or_default().into_owned(),
        attachment,
        unsubscribe: m
            .header_raw("List-Unsubscribe")
            .map(|s| s.trim().to_owned()),
    }
}
