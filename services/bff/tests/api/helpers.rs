#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use tonic::transport::Channel;

use cityevents_proto::cityevents::api::v1::{
    self as api, account_service_client::AccountServiceClient,
    discovery_service_client::DiscoveryServiceClient, events_service_client::EventsServiceClient,
    live_service_client::LiveServiceClient,
    registrations_service_client::RegistrationsServiceClient,
};
use cityevents_proto::cityevents::event::v1 as ev;
use cityevents_runtime::CancellationToken;
use cityevents_runtime::config::{Secret, ServerConfig};
use cityevents_runtime::grpc::client::ClientConfig;
use cityevents_testkit::smtp::SmtpCatcher;
use cityevents_testkit::{World, authed, fresh_database};

pub use cityevents_testkit::{code, draft, reason};

pub struct StopOnDrop(CancellationToken);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// The mesh: auth, event, join, feed, mail (sending to a real SMTP server),
/// media (images on the local file system) and the BFF in front.
pub struct Mesh {
    pub world: World,
    pub bff: SocketAddr,
    /// The BFF's admin port (`/metrics`).
    pub bff_admin: SocketAddr,
    pub channel: Channel,
    /// The join service's replicas, all behind the BFF's one join backend.
    pub joins: Vec<JoinReplica>,
    /// Where the mail service sends (a real SMTP server).
    pub smtp: SmtpCatcher,
    /// Where the media service keeps images.
    pub media_dir: tempfile::TempDir,
    _stop: StopOnDrop,
}

/// One join process of several sharing a database.
pub struct JoinReplica {
    pub admin: SocketAddr,
    /// Stops this replica alone (a graceful shutdown, as on SIGTERM).
    pub stop: CancellationToken,
    pub stopped: tokio::task::JoinHandle<anyhow::Result<()>>,
}

fn client(addr: SocketAddr) -> ClientConfig {
    ClientConfig {
        endpoint: format!("http://{addr}"),
        ..ClientConfig::default()
    }
}

pub async fn mesh() -> Mesh {
    mesh_with(|_| {}).await
}

pub async fn mesh_with(tune: impl FnOnce(&mut bff::Config)) -> Mesh {
    mesh_of(1, tune).await
}

/// The mesh with `joins` join replicas on one database.
pub async fn mesh_of(joins: usize, tune: impl FnOnce(&mut bff::Config)) -> Mesh {
    let world = World::start().await;
    let stop = CancellationToken::new();
    let shared = |redis: &mut _, nats: &mut _, verifier: &mut _, auth: &mut _| {
        *redis = world.redis.clone();
        *nats = world.nats.clone();
        *verifier = world.verifier.clone();
        *auth = world.auth.clone();
    };

    let media_dir = tempfile::tempdir().unwrap();
    let mut icfg = media::Config {
        server: ServerConfig::ephemeral(),
        ..media::Config::default()
    };
    icfg.database.url = Secret::new(fresh_database("media_test").await);
    shared(
        &mut icfg.redis,
        &mut icfg.nats,
        &mut icfg.verifier,
        &mut icfg.auth,
    );
    icfg.media.storage_path = media_dir.path().to_owned();
    icfg.media.url_keys = vec![Secret::new("k1:mesh media url key")];
    let media_host = media::build(icfg).await.unwrap();
    let media_addr = media_host.grpc_addr();
    tokio::spawn(media_host.run(stop.clone()));

    let mut ecfg = event::Config {
        server: ServerConfig::ephemeral(),
        ..event::Config::default()
    };
    ecfg.media = client(media_addr);
    ecfg.database.url = Secret::new(fresh_database("event_test").await);
    shared(
        &mut ecfg.redis,
        &mut ecfg.nats,
        &mut ecfg.verifier,
        &mut ecfg.auth,
    );
    let event_host = event::build(ecfg).await.unwrap();
    let event_addr = event_host.grpc_addr();
    tokio::spawn(event_host.run(stop.clone()));

    let mut jcfg = join::Config {
        server: ServerConfig::ephemeral(),
        ..join::Config::default()
    };
    jcfg.database.url = Secret::new(fresh_database("join_test").await);
    shared(
        &mut jcfg.redis,
        &mut jcfg.nats,
        &mut jcfg.verifier,
        &mut jcfg.auth,
    );
    jcfg.event = client(event_addr);
    jcfg.tickets.signing_key = Some(Secret::new(
        cityevents_authn::SigningKey::generate()
            .unwrap()
            .to_pem()
            .unwrap(),
    ));
    let mut replicas = Vec::new();
    let mut join_addrs = Vec::new();
    for _ in 0..joins {
        let host = join::build(jcfg.clone()).await.unwrap();
        join_addrs.push(host.grpc_addr());
        let admin = host.admin_addr();
        let stop = stop.child_token();
        let stopped = tokio::spawn(host.run(stop.clone()));
        replicas.push(JoinReplica {
            admin,
            stop,
            stopped,
        });
    }

    let mut fcfg = feed::Config {
        server: ServerConfig::ephemeral(),
        ..feed::Config::default()
    };
    fcfg.database.url = Secret::new(fresh_database("feed_test").await);
    shared(
        &mut fcfg.redis,
        &mut fcfg.nats,
        &mut fcfg.verifier,
        &mut fcfg.auth,
    );
    fcfg.feed.cursor_key = Secret::new("mesh cursor key");
    let feed_host = feed::build(fcfg).await.unwrap();
    let feed_addr = feed_host.grpc_addr();
    tokio::spawn(feed_host.run(stop.clone()));

    let smtp = SmtpCatcher::start();
    let mut mcfg = mail::Config {
        server: ServerConfig::ephemeral(),
        ..mail::Config::default()
    };
    mcfg.database.url = Secret::new(fresh_database("mail_test").await);
    shared(
        &mut mcfg.redis,
        &mut mcfg.nats,
        &mut mcfg.verifier,
        &mut mcfg.auth,
    );
    mcfg.link_seal = world.link_seal.clone();
    mcfg.smtp.port = smtp.port;
    mcfg.mail.unsubscribe_key = Secret::new("mesh unsubscribe key");
    let mail_host = mail::build(mcfg).await.unwrap();
    let mail_addr = mail_host.grpc_addr();
    tokio::spawn(mail_host.run(stop.clone()));

    let mut bcfg = bff::Config {
        server: ServerConfig::ephemeral(),
        ..bff::Config::default()
    };
    shared(
        &mut bcfg.redis,
        &mut bcfg.nats,
        &mut bcfg.verifier,
        &mut bcfg.auth,
    );
    bcfg.event = client(event_addr);
    bcfg.feed = client(feed_addr);
    bcfg.mail = client(mail_addr);
    bcfg.media = client(media_addr);
    bcfg.join = ClientConfig {
        addresses: join_addrs.clone(),
        ..client(join_addrs[0])
    };
    bcfg.edge.cors_origins = vec!["https://app.example.org".into()];
    tune(&mut bcfg);
    let bff_host = bff::build(bcfg).await.unwrap();
    let bff = bff_host.grpc_addr();
    let bff_admin = bff_host.admin_addr();
    tokio::spawn(bff_host.run(stop.clone()));

    let channel = Channel::from_shared(format!("http://{bff}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    Mesh {
        world,
        bff,
        bff_admin,
        channel,
        joins: replicas,
        smtp,
        media_dir,
        _stop: StopOnDrop(stop),
    }
}

/// A signed-up person, seen from a client of the public API.
pub struct Person {
    pub user_id: String,
    pub email: String,
    pub token: String,
    pub refresh: String,
}

pub fn unique_email() -> String {
    format!("p{}@example.org", uuid::Uuid::new_v4().simple())
}

impl Mesh {
    pub fn account(&self) -> AccountServiceClient<Channel> {
        AccountServiceClient::new(self.channel.clone())
    }
    pub fn events(&self) -> EventsServiceClient<Channel> {
        EventsServiceClient::new(self.channel.clone())
    }
    pub fn registrations(&self) -> RegistrationsServiceClient<Channel> {
        RegistrationsServiceClient::new(self.channel.clone())
    }
    pub fn discovery(&self) -> DiscoveryServiceClient<Channel> {
        DiscoveryServiceClient::new(self.channel.clone())
    }
    pub fn live(&self) -> LiveServiceClient<Channel> {
        LiveServiceClient::new(self.channel.clone())
    }

    pub async fn sign_up(&self) -> Person {
        let email = unique_email();
        let r = self
            .account()
            .sign_up(api::SignUpRequest {
                email: email.clone(),
                password: "correct horse battery staple".into(),
                display_name: "Ada".into(),
            })
            .await
            .unwrap()
            .into_inner();
        let session = r.session.unwrap();
        Person {
            user_id: r.user.unwrap().id,
            email,
            token: session.access_token,
            refresh: session.refresh_token,
        }
    }

    /// The first mail to `email` whose subject has `subject` in it, read
    /// back with a MIME parser (waits up to 20 s).
    pub async fn mail_to(&self, email: &str, subject: &str) -> mail_parser::Message<'static> {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            for raw in self.smtp.mails() {
                let to = format!("X-Catcher-To: {email}\r\n");
                let Some(body) = raw.strip_prefix(to.as_bytes()) else {
                    continue;
                };
                let parsed = mail_parser::MessageParser::default()
                    .parse(body)
                    .map(|m| m.into_owned());
                if let Some(m) = parsed.filter(|m| m.subject().is_some_and(|s| s.contains(subject)))
                {
                    return m;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no mail {subject:?} to {email}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The verification link's token, from the mail the SMTP server got.
    pub async fn verification_token(&self, email: &str) -> String {
        let mail = self.mail_to(email, "Confirm your email").await;
        let text = mail.body_text(0).unwrap_or_default();
        let at = text.find("token=").expect("a link with a token") + "token=".len();
        text[at..].split_whitespace().next().unwrap().to_owned()
    }

    /// Signs up, verifies the email and refreshes, so the token says so.
    pub async fn verified(&self) -> Person {
        let mut p = self.sign_up().await;
        let token = self.verification_token(&p.email).await;
        self.account()
            .verify_email(api::VerifyEmailRequest { token })
            .await
            .unwrap();
        let s = self
            .account()
            .refresh_session(api::RefreshSessionRequest {
                refresh_token: p.refresh.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .session
            .unwrap();
        (p.token, p.refresh) = (s.access_token, s.refresh_token);
        p
    }

    /// A published event organized by `who`.
    pub async fn published(&self, who: &Person, capacity: i32, waitlist_cap: i32) -> ev::Event {
        let created = self
            .events()
            .create_event(authed(
                api::CreateEventRequest {
                    draft: Some(draft(capacity, waitlist_cap)),
                },
                &who.token,
            ))
            .await
            .unwrap()
            .into_inner()
            .event
            .unwrap();
        self.events()
            .publish_event(authed(
                api::PublishEventRequest {
                    event_id: created.id,
                    expected_version: created.version,
                },
                &who.token,
            ))
            .await
            .unwrap()
            .into_inner()
            .event
            .unwrap()
    }
}

/// One HTTP/1.1 exchange: status, headers (lower-case names), body.
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy) and as bytes.
    pub body: String,
    pub bytes: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// Sends `method path` with `headers` and `body` to `addr`, reads the whole
/// answer (the server closes: `connection: close`).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    parse(&raw)
}

fn parse(raw: &[u8]) -> HttpResponse {
    let at = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..at]).into_owned();
    let raw_body = raw.get(at + 4..).unwrap_or_default();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let bytes = if chunked {
        dechunk(raw_body)
    } else {
        raw_body.to_vec()
    };
    HttpResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
        bytes,
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = body.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&body[..eol]);
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        let rest = &body[eol + 2..];
        if n == 0 || rest.len() < n {
            break;
        }
        out.extend_from_slice(&rest[..n]);
        body = rest[n..].strip_prefix(b"\r\n").unwrap_or(&rest[n..]);
    }
    out
}

/// Reads a server-sent-events stream until `enough` holds for the `data:`
/// payloads seen so far (or 10 s pass), then hangs up.
pub async fn sse_until(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
    mut enough: impl FnMut(&[serde_json::Value]) -> bool,
    mut meanwhile: impl AsyncFnMut(),
) -> Vec<serde_json::Value> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = token
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\naccept: text/event-stream\r\n{auth}\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut acted = false;
    loop {
        let events: Vec<serde_json::Value> = String::from_utf8_lossy(&raw)
            .split("\n\n")
            .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
            .filter_map(|d| serde_json::from_str(d).ok())
            .collect();
        if !events.is_empty() && !acted {
            acted = true;
            meanwhile().await;
        }
        if enough(&events) || tokio::time::Instant::now() > deadline {
            return events;
        }
        match tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await {
            Ok(Ok(0)) => return events,
            Ok(Ok(n)) => raw.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => {}
        }
    }
}
