//! `LiveService.WatchEvent`: the event and its counts as this caller may
//! see them now, then every change from the replica's [`Hub`] (the latest
//! counts win for a slow reader), with heartbeats while nothing changes; a
//! watcher whose client stops reading is told it fell behind and closed.

use std::pin::Pin;
use std::time::Duration;

use futures::Stream;
use tonic::Request;

use cityevents_proto::cityevents::api::v1::{
    self as api, live_service_server::LiveService, watch_event_response::Update as Out,
};
use cityevents_proto::cityevents::event::v1 as ev;
use cityevents_proto::cityevents::join::v1 as jn;

use cityevents_runtime::{Error, ErrorCode};
use tokio::time::Instant;

use super::{Api, Reply, Status, answer, ok};
use crate::live::{Pace, State, Update, Watch};

/// The server stream of `WatchEvent`.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<api::WatchEventResponse, Status>> + Send>>;

#[tonic::async_trait]
impl LiveService for Api {
    type WatchEventStream = WatchStream;

    async fn watch_event(&self, req: Request<api::WatchEventRequest>) -> Reply<WatchStream> {
        let caller = self.edge.admit(&req).await?;
        let event_id = req.get_ref().event_id.clone();
        // Watch first, then read: a change landing in between is not missed.
        let watch = self.hub.watch(&event_id)?;
        // Others already watch a published event anyone may see: the hub
        // holds its state, kept current from the stream; no backend call.
        if !open_to_all(&watch.rx.borrow()) {
            self.fetch_state(&req, &caller, &event_id).await?;
        }
        ok(Box::pin(updates(watch, self.hub.pace())))
    }
}

impl Api {
    /// Reads the event as this caller may see it (refusing what they may
    /// not) and its counts, into the hub.
    async fn fetch_state(
        &self,
        req: &Request<api::WatchEventRequest>,
        caller: &crate::edge::Caller,
        event_id: &str,
    ) -> Result<(), Status> {
        let get = ev::GetEventRequest {
            event_id: event_id.to_owned(),
        };
        let mut events = self.backends.events.clone();
        let event = answer(events.get_event(caller.outbound(req, get)))
            .await?
            .event;
        let count = jn::GetCountsRequest {
            event_id: event_id.to_owned(),
        };
        let counts = answer(
            self.backends
                .join
                .clone()
                .get_counts(caller.outbound(req, count)),
        )
        .await;
        if let Some(e) = event {
            self.hub.apply(event_id, Update::Event(Box::new(e)));
        }
        if let Ok(c) = counts {
            self.hub.apply(event_id, Update::Counts(c));
        }
        Ok(())
    }
}

/// Whether `state` is complete and of a published, visible event, which
/// anyone may watch.
fn open_to_all(state: &State) -> bool {
    state.counts.is_some()
        && state
            .event
            .as_ref()
            .is_some_and(|e| e.status() == ev::EventStatus::Published && !e.hidden)
}

/// What changed between two states, as messages (the event first).
fn changes(sent: &State, now: &State) -> Vec<api::WatchEventResponse> {
    let mut out = Vec::new();
    if now.event != sent.event
        && let Some(e) = &now.event
    {
        out.push(Out::Event(e.clone()));
    }
    if now.counts != sent.counts
        && let Some(c) = &now.counts
    {
        out.push(Out::Counts(c.clone()));
    }
    out.into_iter()
        .map(|u| api::WatchEventResponse { update: Some(u) })
        .collect()
}

/// A heartbeat message: the server's time.
fn heartbeat() -> api::WatchEventResponse {
    api::WatchEventResponse {
        update: Some(Out::Heartbeat(std::time::SystemTime::now().into())),
    }
}

/// What a watcher is told when it left an update unread too long.
fn too_slow() -> Status {
    Error::new(
        ErrorCode::ResourceExhausted,
        "this watcher fell behind and was closed; watch again to get the current state",
    )
    .with_reason("WATCHER_TOO_SLOW")
    .with_retry_after(Duration::from_secs(1))
    .into()
}

/// Where a watcher's stream stands between two reads.
struct Cursor {
    watch: Watch,
    /// What this watcher has been sent.
    sent: State,
    /// Messages ready to send, the next last.
    queue: Vec<api::WatchEventResponse>,
    /// When the last message was handed over (the next read starts the
    /// stall clock's check).
    handed: Option<Instant>,
}

/// The current state, then each change, and a heartbeat after every quiet
/// `pace.heartbeat`; a watcher that leaves a message unread for longer than
/// `pace.stall` is told it fell behind and closed. Ends when the hub goes
/// away.
fn updates(
    watch: Watch,
    pace: Pace,
) -> impl Stream<Item = Result<api::WatchEventResponse, Status>> + Send {
    let start = Cursor {
        watch,
        sent: State::default(),
        queue: Vec::new(),
        handed: None,
    };
    futures::stream::unfold(Some(start), move |cursor| async move {
        let mut c = cursor?;
        // The transport asks for the next message as soon as the last one
        // is written, unless the client stopped reading.
        if c.handed.is_some_and(|t| t.elapsed() > pace.stall) {
            return Some((Err(too_slow()), None));
        }
        loop {
            if let Some(msg) = c.queue.pop() {
                c.handed = Some(Instant::now());
                return Some((Ok(msg), Some(c)));
            }
            let now = c.watch.rx.borrow_and_update().clone();
            c.queue = changes(&c.sent, &now);
            c.queue.reverse();
            c.sent = now;
            if c.queue.is_empty() {
                tokio::select! {
                    changed = c.watch.rx.changed() => changed.ok()?,
                    () = tokio::time::sleep(pace.heartbeat) => c.queue.push(heartbeat()),
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;
    use crate::live::Hub;

    fn pace() -> Pace {
        Pace {
            heartbeat: Duration::from_secs(15),
            stall: Duration::from_secs(30),
        }
    }

    fn counts(confirmed: i32) -> Update {
        Update::Counts(jn::GetCountsResponse {
            event_id: "e1".into(),
            confirmed,
            ..Default::default()
        })
    }

    #[test]
    fn only_the_complete_state_of_a_published_visible_event_is_shared_with_new_watchers() {
        let event = |status: ev::EventStatus, hidden: bool| ev::Event {
            status: status.into(),
            hidden,
            ..Default::default()
        };
        let state = |e: ev::Event, counts: bool| State {
            event: Some(e),
            counts: counts.then(jn::GetCountsResponse::default),
        };
        assert!(open_to_all(&state(
            event(ev::EventStatus::Published, false),
            true
        )));
        assert!(!open_to_all(&state(
            event(ev::EventStatus::Published, false),
            false
        )));
        assert!(!open_to_all(&state(
            event(ev::EventStatus::Published, true),
            true
        )));
        assert!(!open_to_all(&state(
            event(ev::EventStatus::Draft, false),
            true
        )));
        assert!(!open_to_all(&State::default()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_watcher_that_stops_reading_is_told_it_fell_behind_and_its_place_freed() {
        let hub = Hub::new(10, pace(), &prometheus::Registry::new()).unwrap();
        let mut stream = Box::pin(updates(hub.watch("e1").unwrap(), pace()));
        hub.apply("e1", counts(1));
        assert!(stream.next().await.unwrap().is_ok());
        hub.apply("e1", counts(2));
        // The client reads nothing for longer than the stall limit.
        tokio::time::advance(Duration::from_secs(31)).await;
        let told = stream.next().await.unwrap().unwrap_err();
        assert_eq!(
            told.metadata().get("x-cityevents-error").unwrap(),
            "WATCHER_TOO_SLOW"
        );
        assert!(stream.next().await.is_none(), "and the stream ends");
        drop(stream);
        assert_eq!(hub.watchers(), 0, "its place is free");
    }

    #[tokio::test(start_paused = true)]
    async fn a_watcher_that_keeps_reading_a_quiet_stream_gets_heartbeats_and_stays() {
        let hub = Hub::new(10, pace(), &prometheus::Registry::new()).unwrap();
        let mut stream = Box::pin(updates(hub.watch("e1").unwrap(), pace()));
        hub.apply("e1", counts(0));
        assert!(stream.next().await.unwrap().is_ok(), "the current counts");
        for _ in 0..5 {
            let msg = stream.next().await.unwrap().unwrap();
            assert!(matches!(msg.update, Some(Out::Heartbeat(_))), "{msg:?}");
        }
        assert_eq!(hub.watchers(), 1);
    }
}
