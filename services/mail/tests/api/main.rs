//! Integration tests of the mail service: real PostgreSQL, Redis, NATS and
//! a real SMTP server (aiosmtpd), fed by running auth, event and join
//! services; mails read back with a MIME parser.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod delivery;
mod helpers;
mod notifications;
