//! Live updates: one NATS subscription per BFF replica to the `event.*` and
//! `join.*` subjects, fanned out in memory to every watcher of an event.
//!
//! Each watched event has one `watch` channel holding its latest state, so a
//! slow watcher never slows the others and never queues: it skips to the
//! newest counts when it reads again (latest wins). Events nobody watches
//! cost a map lookup per message.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use prost::Message;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use cityevents_messaging::Envelope;
use cityevents_proto::cityevents::event::v1::{Event, EventChanged};
use cityevents_proto::cityevents::join::v1::{
    CountsChanged, GetCountsResponse, RegistrationChanged,
};
use cityevents_runtime::{Error, ErrorCode, Result};

/// What a watcher is shown of one event.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct State {
    pub event: Option<Event>,
    pub counts: Option<GetCountsResponse>,
}

/// A change read from the stream (or fetched for a new watcher).
#[derive(Debug)]
pub enum Update {
    Event(Box<Event>),
    Counts(GetCountsResponse),
}

/// The watchers of this replica, by event id.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    topics: Mutex<HashMap<String, Topic>>,
    watchers: AtomicUsize,
    max_watchers: usize,
    pace: Pace,
    gauge: prometheus::IntGauge,
}

/// How each watcher's stream is paced.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pace {
    /// Quiet time after which a heartbeat is sent.
    pub heartbeat: Duration,
    /// How long a watcher may leave a ready message unread (its client not
    /// reading, the connection's window full) before it is told it fell
    /// behind and closed, freeing its place.
    pub stall: Duration,
}

impl Default for Pace {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(15),
            stall: Duration::from_secs(30),
        }
    }
}

struct Topic {
    tx: watch::Sender<State>,
    watchers: usize,
}

/// One watcher's view; leaving drops it.
pub struct Watch {
    pub rx: watch::Receiver<State>,
    hub: Hub,
    event_id: String,
}

impl Hub {
    /// A hub holding at most `max_watchers`, paced by `pace`; its gauge is
    /// `live_watchers`.
    pub fn new(
        max_watchers: usize,
        pace: Pace,
        registry: &prometheus::Registry,
    ) -> anyhow::Result<Self> {
        let gauge =
            prometheus::IntGauge::new("live_watchers", "Live-update streams open on this replica")?;
        registry.register(Box::new(gauge.clone()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                topics: Mutex::default(),
                watchers: AtomicUsize::new(0),
                max_watchers,
                pace,
                gauge,
            }),
        })
    }

    /// How each watcher's stream is paced.
    pub fn pace(&self) -> Pace {
        self.inner.pace
    }

    /// Starts watching `event_id`, or refuses when the replica is full.
    pub fn watch(&self, event_id: &str) -> Result<Watch> {
        let n = self.inner.watchers.fetch_add(1, Ordering::SeqCst);
        if n >= self.inner.max_watchers {
            self.inner.watchers.fetch_sub(1, Ordering::SeqCst);
            return Err(Error::new(
                ErrorCode::ResourceExhausted,
                "too many live watchers on this server; retry shortly",
            )
            .with_reason("TOO_MANY_WATCHERS")
            .with_retry_after(std::time::Duration::from_secs(5)));
        }
        self.inner.gauge.inc();
        let mut topics = self.topics();
        let topic = topics.entry(event_id.to_owned()).or_insert_with(|| Topic {
            tx: watch::Sender::new(State::default()),
            watchers: 0,
        });
        topic.watchers += 1;
        Ok(Watch {
            rx: topic.tx.subscribe(),
            hub: self.clone(),
            event_id: event_id.to_owned(),
        })
    }

    /// Applies `update` to `event_id`'s watchers, if it has any. An event
    /// older than the one held (by version) is ignored; counts replace.
    pub fn apply(&self, event_id: &str, update: Update) {
        let topics = self.topics();
        let Some(topic) = topics.get(event_id) else {
            return;
        };
        topic.tx.send_if_modified(|state| match update {
            Update::Event(e) => {
                let e = *e;
                let newer = state
                    .event
                    .as_ref()
                    .is_none_or(|old| e.version > old.version);
                if newer {
                    state.event = Some(e);
                }
                newer
            }
            Update::Counts(c) => {
                let changed = state.counts.as_ref() != Some(&c);
                state.counts = Some(c);
                changed
            }
        });
    }

    /// Watchers open now.
    pub fn watchers(&self) -> usize {
        self.inner.watchers.load(Ordering::SeqCst)
    }

    fn topics(&self) -> std::sync::MutexGuard<'_, HashMap<String, Topic>> {
        // A panic while holding the lock leaves the map consistent.
        self.inner.topics.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Follows the domain events under `prefix` until `shutdown`.
    pub async fn follow(
        self,
        nats: async_nats::Client,
        prefix: String,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let subscribe = |what: &str| {
            let (nats, subject) = (nats.clone(), format!("{prefix}.{what}.>"));
            async move {
                nats.subscribe(subject.clone())
                    .await
                    .map_err(|e| anyhow::anyhow!("subscribe {subject}: {e}"))
            }
        };
        let mut messages =
            futures::stream::select(subscribe("event").await?, subscribe("join").await?);
        loop {
            let msg = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                m = messages.next() => m,
            };
            let Some(msg) = msg else {
                anyhow::bail!("the live-update subscription ended");
            };
            match decode(&msg.payload) {
                Some((event_id, update)) => self.apply(&event_id, update),
                None => tracing::debug!(subject = %msg.subject, "not a live update"),
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let inner = &self.hub.inner;
        inner.watchers.fetch_sub(1, Ordering::SeqCst);
        inner.gauge.dec();
        let mut topics = self.hub.topics();
        if let Some(topic) = topics.get_mut(&self.event_id) {
            topic.watchers -= 1;
            if topic.watchers == 0 {
                topics.remove(&self.event_id);
            }
        }
    }
}

/// The event id and update a domain event carries, if any.
fn decode(payload: &[u8]) -> Option<(String, Update)> {
    let env = Envelope::decode(payload).ok()?;
    let counts = |c: Option<GetCountsResponse>| c.map(|c| (c.event_id.clone(), Update::Counts(c)));
    match env.r#type.split_once('.')? {
        ("join", "counts_changed") => {
            counts(CountsChanged::decode(env.payload.as_slice()).ok()?.counts)
        }
        ("join", _) => counts(
            RegistrationChanged::decode(env.payload.as_slice())
                .ok()?
                .counts,
        ),
        // Every event.* payload carries the whole event as field 1.
        ("event", _) => {
            let e = EventChanged::decode(env.payload.as_slice()).ok()?.event?;
            Some((e.id.clone(), Update::Event(Box::new(e))))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(event: &str, confirmed: i32) -> Update {
        Update::Counts(GetCountsResponse {
            event_id: event.into(),
            confirmed,
            ..Default::default()
        })
    }

    #[tokio::test]
    async fn a_slow_watcher_skips_to_the_latest_counts_and_never_queues() {
        let hub = Hub::new(10, Pace::default(), &prometheus::Registry::new()).unwrap();
        let mut slow = hub.watch("e1").unwrap();
        for n in 1..=1_000 {
            hub.apply("e1", counts("e1", n));
        }
        slow.rx.changed().await.unwrap();
        assert_eq!(
            slow.rx
                .borrow_and_update()
                .counts
                .as_ref()
                .unwrap()
                .confirmed,
            1_000
        );
        assert!(
            !slow.rx.has_changed().unwrap(),
            "one read catches up entirely"
        );
    }

    #[tokio::test]
    async fn an_older_event_version_never_replaces_a_newer_one() {
        let hub = Hub::new(10, Pace::default(), &prometheus::Registry::new()).unwrap();
        let w = hub.watch("e1").unwrap();
        let event = |version| {
            Update::Event(Box::new(Event {
                id: "e1".into(),
                version,
                ..Default::default()
            }))
        };
        hub.apply("e1", event(3));
        hub.apply("e1", event(2));
        assert_eq!(w.rx.borrow().event.as_ref().unwrap().version, 3);
    }

    #[test]
    fn watchers_beyond_the_cap_are_refused_and_leaving_frees_the_place() {
        let hub = Hub::new(2, Pace::default(), &prometheus::Registry::new()).unwrap();
        let a = hub.watch("e1").unwrap();
        let _b = hub.watch("e2").unwrap();
        let refused = hub.watch("e1").err().unwrap();
        assert_eq!(refused.reason(), "TOO_MANY_WATCHERS");
        drop(a);
        assert!(hub.watch("e1").is_ok());
        assert_eq!(
            hub.topics().len(),
            1,
            "an event nobody watches is forgotten"
        );
    }
}
