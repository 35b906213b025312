//! The outbox → JetStream → inbox path against real PostgreSQL and NATS.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use cityevents_messaging::consumer::{Consumer, ConsumerSpec, Handler};
use cityevents_messaging::metrics::MessagingMetrics;
use cityevents_messaging::relay::Relay;
use cityevents_messaging::{Envelope, NatsConfig, outbox, streams};
use cityevents_proto::cityevents::auth::v1::EmailVerified;
use cityevents_runtime::CancellationToken;
use cityevents_runtime::metrics::Metrics;

struct Bus {
    pool: PgPool,
    js: async_nats::jetstream::Context,
    prefix: String,
    metrics: Metrics,
    messaging: MessagingMetrics,
}

/// A fresh database and stream prefix, with the "test" producer's stream
/// created (as a relay creates it at start-up).
async fn bus() -> Bus {
    let pool = PgPool::connect(&cityevents_testkit::fresh_database("messaging_test").await)
        .await
        .unwrap();
    cityevents_messaging::migrate(&pool).await.unwrap();
    sqlx::query("CREATE TABLE effects (message_id text NOT NULL, event_type text NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    let nats = NatsConfig {
        url: cityevents_testkit::nats_url(),
        ..NatsConfig::default()
    };
    let js = cityevents_messaging::connect(&nats).await.unwrap();
    let prefix = format!("T{}", Uuid::new_v4().simple());
    streams::ensure_stream(&js, &prefix, "test").await.unwrap();
    let metrics = Metrics::new().unwrap();
    let messaging = MessagingMetrics::register(&metrics).unwrap();
    Bus {
        pool,
        js,
        prefix,
        metrics,
        messaging,
    }
}

/// Records each handled message; fails on type "test.poison".
struct RecordEffect;

impl Handler for RecordEffect {
    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        env: &'a Envelope,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            anyhow::ensure!(env.r#type != "test.poison", "cannot handle poison");
            sqlx::query("INSERT INTO effects VALUES ($1, $2)")
                .bind(&env.id)
                .bind(&env.r#type)
                .execute(conn)
                .await?;
            Ok(())
        })
    }
}

impl Bus {
    fn relay(&self) -> Relay {
        Relay::new(
            self.pool.clone(),
            self.js.clone(),
            "test",
            &self.prefix,
            self.messaging.clone(),
        )
    }

    async fn enqueue(&self, event_type: &str, n: usize) {
        let mut tx = self.pool.begin().await.unwrap();
        for _ in 0..n {
            outbox::enqueue(
                &mut tx,
                event_type,
                Uuid::new_v4(),
                &EmailVerified {
                    user_id: "u".into(),
                },
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }

    fn consumer(&self, max_deliver: i64) -> Consumer {
        let mut spec = ConsumerSpec::new("test-consumer", "test", &["test.>"]);
        spec.max_deliver = max_deliver;
        spec.backoff = vec![Duration::from_millis(20)];
        Consumer {
            pool: self.pool.clone(),
            js: self.js.clone(),
            prefix: self.prefix.clone(),
            spec,
            handler: Arc::new(RecordEffect),
            metrics: self.messaging.clone(),
        }
    }

    fn consume(
        &self,
        max_deliver: i64,
    ) -> (
        CancellationToken,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    ) {
        let consumer = self.consumer(max_deliver);
        let stop = CancellationToken::new();
        (stop.clone(), tokio::spawn(consumer.run(stop)))
    }

    async fn enqueue_for(&self, event_type: &str, aggregate: Uuid) {
        let mut tx = self.pool.begin().await.unwrap();
        let payload = EmailVerified {
            user_id: "u".into(),
        };
        outbox::enqueue(&mut tx, event_type, aggregate, &payload)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    async fn backlog(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// `(aggregate, type)` of every message of `producer`'s stream, in
    /// stream order.
    async fn stream_in_order(&self, producer: &str) -> Vec<(String, String)> {
        let stream = self
            .js
            .get_stream(streams::stream_name(&self.prefix, producer))
            .await
            .unwrap();
        let n = stream.clone().info().await.unwrap().state.messages;
        let mut out = Vec::new();
        for seq in 1..=n {
            let msg = stream.get_raw_message(seq).await.unwrap();
            let env = <Envelope as prost::Message>::decode(msg.payload.as_ref()).unwrap();
            out.push((env.aggregate_id, env.r#type));
        }
        out
    }

    async fn effects(&self, event_type: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM effects WHERE event_type = $1")
            .bind(event_type)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Waits (polling, bounded) until `event_type` has `n` effects.
    async fn await_effects(&self, event_type: &str, n: i64) {
        for _ in 0..200 {
            if self.effects(event_type).await >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "{event_type}: expected {n} effects, have {}",
            self.effects(event_type).await
        );
    }

    async fn stream_messages(&self, producer: &str) -> u64 {
        let mut s = self
            .js
            .get_stream(streams::stream_name(&self.prefix, producer))
            .await
            .unwrap();
        s.info().await.unwrap().state.messages
    }
}

#[tokio::test]
async fn a_relay_killed_between_publish_and_mark_causes_each_effect_exactly_once() {
    let bus = bus().await;
    bus.enqueue("test.happened", 3).await;

    assert_eq!(bus.relay().publish_without_deleting().await.unwrap(), 3);
    // The restarted relay finds the rows still there and publishes them again.
    assert_eq!(bus.relay().publish_once().await.unwrap(), 3);
    assert_eq!(
        bus.relay().publish_once().await.unwrap(),
        0,
        "deleted after the second publish"
    );
    assert_eq!(
        bus.stream_messages("test").await,
        3,
        "JetStream dropped the copies"
    );

    let (stop, task) = bus.consume(5);
    bus.await_effects("test.happened", 3).await;
    stop.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(bus.effects("test.happened").await, 3);
}

#[tokio::test]
async fn a_message_delivered_twice_is_applied_once() {
    let bus = bus().await;
    // Publish the same envelope twice under different Nats-Msg-Ids, past
    // publisher dedup: only the inbox stands between it and a double effect.
    let env = Envelope {
        id: Uuid::now_v7().to_string(),
        r#type: "test.twice".into(),
        ..Envelope::default()
    };
    for copy in 0..2 {
        let msg = async_nats::jetstream::message::PublishMessage::build()
            .payload(prost::Message::encode_to_vec(&env).into())
            .message_id(format!("{}-{copy}", env.id));
        bus.js
            .send_publish(streams::subject(&bus.prefix, "test.twice"), msg)
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let (stop, task) = bus.consume(5);
    bus.enqueue("test.after", 1).await;
    bus.relay().publish_once().await.unwrap();
    bus.await_effects("test.after", 1).await;
    stop.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(bus.effects("test.twice").await, 1);
    assert!(
        bus.metrics
            .render()
            .contains(r#"consumer_handled_total{consumer="test-consumer",result="duplicate"} 1"#)
    );
}

#[tokio::test]
async fn a_poison_message_lands_in_the_dead_letter_stream_after_the_retry_bound() {
    let bus = bus().await;
    bus.enqueue("test.poison", 1).await;
    bus.enqueue("test.fine", 2).await;
    let (stop, task) = bus.consume(3);
    bus.relay().publish_once().await.unwrap();
    bus.await_effects("test.fine", 2).await;
    for _ in 0..200 {
        if bus
            .metrics
            .render()
            .contains(r#"consumer_dead_letters_total{consumer="test-consumer"} 1"#)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    stop.cancel();
    task.await.unwrap().unwrap();

    let text = bus.metrics.render();
    assert!(
        text.contains(r#"consumer_dead_letters_total{consumer="test-consumer"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"consumer_redeliveries_total{consumer="test-consumer"} 2"#),
        "{text}"
    );
    let mut dlq = bus
        .js
        .get_stream(format!("{}_DLQ", bus.prefix))
        .await
        .unwrap();
    assert_eq!(dlq.info().await.unwrap().state.messages, 1);
    let parked = dlq.get_raw_message(1).await.unwrap();
    let error = parked
        .headers
        .get("CityEvents-Error")
        .unwrap()
        .as_str()
        .to_owned();
    assert!(error.contains("cannot handle poison"), "{error}");
    assert_eq!(bus.effects("test.poison").await, 0);
}

#[tokio::test]
async fn four_relays_publish_each_row_once_and_the_events_of_an_aggregate_in_order() {
    let bus = bus().await;
    // Each aggregate gets a "first" and then a "second", in separate
    // transactions, as a registration is confirmed and then cancelled.
    let aggregates: Vec<Uuid> = (0..300).map(|_| Uuid::new_v4()).collect();
    for kind in ["test.first", "test.second"] {
        for a in &aggregates {
            bus.enqueue_for(kind, *a).await;
        }
    }
    let relays: Vec<_> = (0..4).map(|_| bus.relay()).collect();
    let mut total = 0;
    loop {
        let counts = futures::future::join_all(relays.iter().map(|r| r.publish_once())).await;
        let round: usize = counts.into_iter().map(Result::unwrap).sum();
        total += round;
        if round == 0 && bus.backlog().await == 0 {
            break;
        }
    }
    assert_eq!(total, 600, "each row published by exactly one relay");
    let order = bus.stream_in_order("test").await;
    assert_eq!(order.len(), 600);
    let mut seen_first = std::collections::HashSet::new();
    for (aggregate, kind) in &order {
        match kind.as_str() {
            "test.first" => assert!(seen_first.insert(aggregate.clone())),
            _ => assert!(
                seen_first.contains(aggregate),
                "second before first for {aggregate}"
            ),
        }
    }
    relays[0].refresh_gauges().await.unwrap();
    let text = bus.metrics.render();
    assert!(
        text.contains(r#"outbox_backlog{producer="test"} 0"#),
        "{text}"
    );
}

#[tokio::test]
async fn a_row_too_large_to_publish_is_parked_and_the_rows_behind_it_flow() {
    let bus = bus().await;
    bus.enqueue("test.before", 2).await;
    let mut tx = bus.pool.begin().await.unwrap();
    let huge = EmailVerified {
        user_id: "x".repeat(2 * 1024 * 1024),
    };
    outbox::enqueue(&mut tx, "test.huge", Uuid::new_v4(), &huge)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    bus.enqueue("test.after", 3).await;

    let relay = bus.relay();
    assert_eq!(relay.publish_once().await.unwrap(), 6);
    assert_eq!(bus.stream_messages("test").await, 5);
    assert_eq!(bus.backlog().await, 0);
    let parked: Vec<(String, String)> =
        sqlx::query_as("SELECT event_type, error FROM outbox_parked")
            .fetch_all(&bus.pool)
            .await
            .unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].0, "test.huge");
    relay.refresh_gauges().await.unwrap();
    let text = bus.metrics.render();
    assert!(
        text.contains(r#"outbox_parked_rows{producer="test"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"outbox_parked_total{producer="test"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn inbox_rows_older_than_the_stream_keeps_are_purged() {
    let bus = bus().await;
    sqlx::query(
        "INSERT INTO inbox (consumer, message_id, handled_at)
         SELECT 'test-consumer', gen_random_uuid(), now() - interval '9 days' FROM generate_series(1, 2500)",
    )
    .execute(&bus.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO inbox (consumer, message_id) VALUES ('test-consumer', gen_random_uuid())",
    )
    .execute(&bus.pool)
    .await
    .unwrap();
    let consumer = bus.consumer(5);
    let purged = consumer
        .purge_inbox(cityevents_messaging::consumer::INBOX_RETENTION)
        .await
        .unwrap();
    assert_eq!(purged, 2_500);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox")
        .fetch_one(&bus.pool)
        .await
        .unwrap();
    assert_eq!(left, 1, "recent rows stay");
}

#[tokio::test]
async fn published_rows_are_deleted_and_rows_written_meanwhile_wait_for_the_next_round() {
    let bus = bus().await;
    let relay = bus.relay();
    let left = || async {
        sqlx::query_scalar::<_, String>("SELECT event_type FROM outbox ORDER BY id")
            .fetch_all(&bus.pool)
            .await
            .unwrap()
    };
    bus.enqueue("test.first", 3).await;
    assert_eq!(relay.publish_once().await.unwrap(), 3);
    assert!(left().await.is_empty(), "acknowledged rows are deleted");
    bus.enqueue("test.waiting", 2).await;
    assert_eq!(left().await, ["test.waiting", "test.waiting"]);
    assert_eq!(relay.publish_once().await.unwrap(), 2);
    assert!(left().await.is_empty());
    assert_eq!(bus.stream_messages("test").await, 5);
}

#[tokio::test]
async fn a_relay_whose_nats_is_away_at_start_up_keeps_retrying_until_stopped() {
    let b = bus().await;
    // Nothing listens on port 1: every stream creation fails.
    let away = NatsConfig {
        url: "nats://127.0.0.1:1".into(),
        ..NatsConfig::default()
    };
    let js = cityevents_messaging::connect(&away).await.unwrap();
    let relay = Relay::new(b.pool.clone(), js, "test", &b.prefix, b.messaging.clone());
    let stop = CancellationToken::new();
    let running = tokio::spawn(relay.run(stop.clone()));
    // Longer than a JetStream request's timeout: the first try has failed.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert!(
        !running.is_finished(),
        "the relay gave up instead of waiting for NATS"
    );
    stop.cancel();
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn an_operator_lists_a_parked_message_and_replays_it_to_its_subject() {
    use cityevents_messaging::dead_letters;
    let bus = bus().await;
    bus.enqueue("test.poison", 1).await;
    let (stop, task) = bus.consume(2);
    bus.relay().publish_once().await.unwrap();
    let mut parked = Vec::new();
    for _ in 0..200 {
        parked = dead_letters::list(&bus.js, &bus.prefix, Some("test-consumer"))
            .await
            .unwrap();
        if !parked.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    stop.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].envelope.r#type, "test.poison");
    assert!(
        parked[0].error.contains("cannot handle poison"),
        "{}",
        parked[0].error
    );
    assert!(parked[0].subject.ends_with(".test.poison"));
    assert!(
        dead_letters::list(&bus.js, &bus.prefix, Some("another"))
            .await
            .unwrap()
            .is_empty()
    );

    let before = bus.stream_messages("test").await;
    dead_letters::replay(&bus.js, &bus.prefix, &parked[0])
        .await
        .unwrap();
    assert_eq!(
        bus.stream_messages("test").await,
        before + 1,
        "back on its subject"
    );
    assert!(
        dead_letters::list(&bus.js, &bus.prefix, None)
            .await
            .unwrap()
            .is_empty()
    );
    let order = bus.stream_in_order("test").await;
    assert_eq!(order.last().unwrap().1, "test.poison");
}
