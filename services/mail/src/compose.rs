//! Templates in files (`templates/`, each a plain-text part whose first line
//! is `Subject: …` and an HTML part), rendered with minijinja; and the MIME
//! message of a delivery: text and HTML alternatives, the invitation
//! (`invitation.ics`) when there is one, and for everything but security
//! mail a one-click unsubscribe (`List-Unsubscribe`,
//! `List-Unsubscribe-Post`, RFC 8058).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use lettre::Message;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart};
use minijinja::Environment;
use sha2::Sha256;
use uuid::Uuid;

/// A template's parts and their names (`<template>.txt`, `<template>.html`).
struct Template {
    text_name: &'static str,
    text: &'static str,
    html_name: &'static str,
    html: &'static str,
}

macro_rules! template {
    ($name:literal) => {
        Template {
            text_name: concat!($name, ".txt"),
            text: include_str!(concat!("../templates/", $name, ".txt")),
            html_name: concat!($name, ".html"),
            html: include_str!(concat!("../templates/", $name, ".html")),
        }
    };
}

/// Every template.
const TEMPLATES: &[Template] = &[
    template!("verify_email"),
    template!("reset_password"),
    template!("join_confirmed"),
    template!("promoted"),
    template!("event_updated"),
    template!("event_cancelled"),
    template!("reminder"),
    template!("test"),
];

/// A mail ready to be logged and sent.
#[derive(Debug, Clone)]
pub struct Mail {
    pub template: &'static str,
    pub recipient: String,
    pub user_id: Option<Uuid>,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub ics: Option<String>,
    pub security: bool,
}

/// Renders mails and builds their messages.
pub struct Composer {
    env: Environment<'static>,
    from: Mailbox,
    base_url: String,
    /// Where mail clients reach the API (one-click unsubscribe).
    api_base_url: String,
    unsubscribe_key: Vec<u8>,
}

impl Composer {
    pub fn new(from: &str, base_url: &str, unsubscribe_key: &str) -> anyhow::Result<Self> {
        let mut env = Environment::new();
        env.add_template("base.html", include_str!("../templates/base.html"))?;
        for t in TEMPLATES {
            env.add_template(t.text_name, t.text)?;
            env.add_template(t.html_name, t.html)?;
        }
        anyhow::ensure!(
            !unsubscribe_key.is_empty(),
            "mail.unsubscribe_key is required (any long random string, the same on every replica)"
        );
        Ok(Self {
            env,
            from: from
                .parse()
                .map_err(|e| anyhow::anyhow!("mail.from {from:?}: {e}"))?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_base_url: base_url.trim_end_matches('/').to_owned(),
            unsubscribe_key: unsubscribe_key.as_bytes().to_vec(),
        })
    }

    /// The API's own base URL for links mail clients follow themselves
    /// (one-click unsubscribe), when it is not `base_url` (the web app);
    /// empty keeps `base_url`.
    pub fn with_api_base(mut self, api_base_url: &str) -> Self {
        if !api_base_url.is_empty() {
            self.api_base_url = api_base_url.trim_end_matches('/').to_owned();
        }
        self
    }

    /// `path` under the public base URL.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Renders `template` for `recipient` with `ctx` (a serialisable map).
    pub fn render(
        &self,
        template: &'static str,
        recipient: &str,
        user_id: Option<Uuid>,
        security: bool,
        ctx: minijinja::Value,
        ics: Option<String>,
    ) -> anyhow::Result<Mail> {
        let unsubscribe = match (security, user_id) {
            (false, Some(u)) => Some(self.unsubscribe_url(u)),
            _ => None,
        };
        let ctx = minijinja::context! { unsubscribe_url => unsubscribe, ..ctx };
        let text = self
            .env
            .get_template(&format!("{template}.txt"))?
            .render(&ctx)?;
        let (first, body) = text.split_once('\n').unwrap_or((&text, ""));
        let subject = first
            .strip_prefix("Subject: ")
            .ok_or_else(|| anyhow::anyhow!("{template}.txt must start with `Subject: `"))?
            .trim()
            .to_owned();
        let mut text = body.trim_start_matches('\n').to_owned();
        if let Some(url) = &unsubscribe {
            text.push_str(&format!(
                "\n--\nYou get this because you joined an event on CityEvents.\nUnsubscribe from everything but security mail: {url}\n"
            ));
        }
        let html = self
            .env
            .get_template(&format!("{template}.html"))?
            .render(&ctx)?;
        Ok(Mail {
            template,
            recipient: recipient.to_owned(),
            user_id,
            subject,
            text,
            html,
            ics,
            security,
        })
    }

    /// The MIME message of a delivery.
    pub fn message(&self, d: &Delivery) -> anyhow::Result<Message> {
        let to: Mailbox = d
            .recipient
            .parse()
            .map_err(|e| anyhow::anyhow!("recipient {:?}: {e}", d.recipient))?;
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&d.subject)
            .message_id(Some(format!("<{}@cityevents>", d.id)));
        if let (false, Some(user)) = (d.security, d.user_id) {
            let url = self.one_click_url(user);
            builder = builder
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe"),
                    format!("<{url}>"),
                ))
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                    "List-Unsubscribe=One-Click".to_owned(),
                ));
        }
        let body = MultiPart::alternative_plain_html(d.text_body.clone(), d.html_body.clone());
        let message = match &d.ics {
            Some(ics) => builder.multipart(MultiPart::mixed().multipart(body).singlepart(
                Attachment::new("invitation.ics".into()).body(
                    ics.clone(),
                    ContentType::parse("text/calendar; charset=utf-8; method=PUBLISH")?,
                ),
            ))?,
            None => builder.multipart(body)?,
        };
        Ok(message)
    }

    fn tag(&self, user: Uuid) -> Vec<u8> {
        #[allow(clippy::expect_used)] // HMAC takes a key of any length
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.unsubscribe_key).expect("any key length");
        mac.update(b"unsubscribe\0");
        mac.update(user.as_bytes());
        mac.finalize().into_bytes()[..16].to_vec()
    }

    /// The signed token naming `user` in unsubscribe links.
    pub fn unsubscribe_token(&self, user: Uuid) -> String {
        let mut raw = user.as_bytes().to_vec();
        raw.extend(self.tag(user));
        B64.encode(raw)
    }

    /// The person a token names, if we signed it.
    pub fn unsubscriber(&self, token: &str) -> Option<Uuid> {
        let raw = B64.decode(token).ok()?;
        if raw.len() != 32 {
            return None;
        }
        let user = Uuid::from_slice(&raw[..16]).ok()?;
        #[allow(clippy::expect_used)]
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.unsubscribe_key).expect("any key length");
        mac.update(b"unsubscribe\0");
        mac.update(user.as_bytes());
        mac.verify_truncated_left(&raw[16..]).ok()?;
        Some(user)
    }

    /// Where a person reads what unsubscribing does (the web app's page).
    fn unsubscribe_url(&self, user: Uuid) -> String {
        self.url(&format!(
            "/unsubscribe?token={}",
            self.unsubscribe_token(user)
        ))
    }

    /// Where mail clients POST for one-click unsubscribe (the BFF).
    fn one_click_url(&self, user: Uuid) -> String {
        format!(
            "{}/v1/mail/unsubscribe/{}",
            self.api_base_url,
            self.unsubscribe_token(user)
        )
    }
}

/// A logged delivery, as the sender reads it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: Uuid,
    pub recipient: String,
    pub user_id: Option<Uuid>,
    pub template: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub ics: Option<String>,
    pub security: bool,
    pub attempts: i32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn composer() -> Composer {
        Composer::new(
            "CityEvents <no-reply@example.org>",
            "https://app.example.org/",
            "k",
        )
        .unwrap()
    }

    #[test]
    fn every_template_renders_both_parts_and_a_subject() {
        let c = composer();
        let event = minijinja::context! { title => "Jazz <night>", when => "Thu", place => "Hall", url => "u" };
        let ctx = minijinja::context! {
            name => "Ada", link => "https://x/y?token=t", expires => "soon", event => event.clone(),
            before => event, reason => "rain", sent => "now"
        };
        for t in TEMPLATES {
            let name = t.text_name.trim_end_matches(".txt");
            let m = c
                .render(
                    name,
                    "ada@example.org",
                    Some(Uuid::nil()),
                    false,
                    ctx.clone(),
                    None,
                )
                .unwrap();
            assert!(!m.subject.is_empty() && !m.text.is_empty(), "{name}");
            assert!(m.html.contains("<html"), "{name}");
            assert!(!m.html.contains("<night>"), "{name}: HTML is escaped");
        }
    }

    #[test]
    fn unsubscribe_tokens_name_one_person_and_cannot_be_forged() {
        let c = composer();
        let user = Uuid::now_v7();
        let token = c.unsubscribe_token(user);
        assert_eq!(c.unsubscriber(&token), Some(user));
        let other = Composer::new("a@b.c", "x", "another key").unwrap();
        assert_eq!(other.unsubscriber(&token), None);
        let mut raw = B64.decode(&token).unwrap();
        raw[0] ^= 1;
        assert_eq!(c.unsubscriber(&B64.encode(raw)), None);
    }

    #[test]
    fn page_links_go_to_the_web_app_and_one_click_unsubscribe_to_the_api() {
        let c = Composer::new("a@b.c", "https://events.example.org/#", "k")
            .unwrap()
            .with_api_base("https://api.events.example.org/");
        let user = Uuid::now_v7();
        assert!(
            c.unsubscribe_url(user)
                .starts_with("https://events.example.org/#/unsubscribe?token=")
        );
        assert!(
            c.one_click_url(user)
                .starts_with("https://api.events.example.org/v1/mail/unsubscribe/")
        );
        assert!(
            composer()
                .one_click_url(user)
                .starts_with("https://app.example.org/v1/mail/unsubscribe/")
        );
    }
}
