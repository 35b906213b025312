//! `make bench` (mail part): mails rendered per second (a join
//! confirmation with its invitation: both parts and the iCalendar
//! document), then sent per second through the sender to a real SMTP
//! server (the local catcher), from the delivery log to the catcher's disk.
//! Prints the figures; see docs/benchmarks.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use cityevents_runtime::CancellationToken;
use cityevents_runtime::config::{DatabaseConfig, Secret};
use cityevents_runtime::metrics::Metrics;
use cityevents_testkit::fresh_database;
use cityevents_testkit::smtp::SmtpCatcher;
use mail::compose::Composer;
use mail::config::{MailConfig, SmtpConfig};
use mail::send::Sender;

/// This process's CPU time (user + system) so far.
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: u64 = fields
        .get(11..13)
        .map_or(0, |f| f.iter().filter_map(|t| t.parse::<u64>().ok()).sum());
    Duration::from_millis(ticks * 10)
}

fn confirmation(c: &Composer, i: usize) -> mail::compose::Mail {
    let event = minijinja::context! {
        title => format!("Open air concert {i}"), when => "Thursday 24 December 2026, 19:00 (Europe/Berlin)",
        place => "Hall, Main St 1, Berlin", url => "https://app.example.org/events/x",
    };
    let at = chrono::Utc::now() + chrono::Duration::days(3);
    let ics = cityevents_ical::render(
        "invitation",
        &[cityevents_ical::Entry {
            event_id: uuid::Uuid::now_v7(),
            version: 2,
            title: format!("Open air concert {i}"),
            description: "Bring a blanket.".into(),
            location: "Hall, Main St 1, Berlin".into(),
            starts_at: at,
            ends_at: at + chrono::Duration::hours(2),
            time_zone: "Europe/Berlin".into(),
            cancelled: false,
        }],
        chrono::Utc::now(),
    );
    let ctx = minijinja::context! { name => "Ada", event => event };
    c.render(
        "join_confirmed",
        &format!("p{i}@example.org"),
        Some(uuid::Uuid::now_v7()),
        false,
        ctx,
        Some(ics),
    )
    .unwrap()
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("BENCH_MAILS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let composer = Arc::new(
        Composer::new(
            "CityEvents <no-reply@example.org>",
            "https://app.example.org",
            "bench",
        )
        .unwrap(),
    );

    let (t0, c0) = (Instant::now(), cpu());
    let mails: Vec<_> = (0..n).map(|i| confirmation(&composer, i)).collect();
    let (wall, used) = (t0.elapsed(), cpu() - c0);
    println!(
        "rendered {n} confirmations with invitations: {:.0}/s, {:.0} µs CPU each",
        n as f64 / wall.as_secs_f64(),
        used.as_micros() as f64 / n as f64
    );

    let db = fresh_database("mail_bench_test").await;
    let cfg = DatabaseConfig {
        url: Secret::new(db.clone()),
        ..Default::default()
    };
    let pool = cityevents_runtime::db::pool(&cfg).unwrap();
    cityevents_messaging::migrate_with(&pool, &mail::MIGRATOR)
        .await
        .unwrap();
    for (i, m) in mails.iter().enumerate() {
        let mut conn = pool.acquire().await.unwrap();
        mail::store::enqueue(&mut conn, &format!("bench:{i}"), m)
            .await
            .unwrap();
    }
    let smtp = SmtpCatcher::start();
    let smtp_cfg = SmtpConfig {
        port: smtp.port,
        ..Default::default()
    };
    let mail_cfg = MailConfig {
        unsubscribe_key: Secret::new("bench"),
        ..Default::default()
    };
    let sender = Sender::new(
        pool.clone(),
        composer,
        &smtp_cfg,
        &mail_cfg,
        &Metrics::new().unwrap(),
    )
    .unwrap();
    let stop = CancellationToken::new();
    let (t0, c0) = (Instant::now(), cpu());
    let task = tokio::spawn(sender.run(stop.clone()));
    smtp.wait_for(n).await;
    let (wall, used) = (t0.elapsed(), cpu() - c0);
    stop.cancel();
    let _ = task.await;
    println!(
        "sent {n} over SMTP to the local catcher (batches of {}): {:.0}/s, {:.0} µs of the sender's CPU each",
        mail_cfg.send_batch,
        n as f64 / wall.as_secs_f64(),
        used.as_micros() as f64 / n as f64
    );
}
