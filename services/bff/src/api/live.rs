//! `LiveService.WatchEvent`: the event and its counts as this caller may
//! see them now, then every change from the replica's [`Hub`] (the latest
//! counts win for a slow reader), with heartbeats while nothing changes.

use std::pin::Pin;
use std::time::Duration;

use futures::Stream;
use tonic::Request;

use cityevents_proto::cityevents::api::v1::{
    self as api, live_service_server::LiveService, watch_event_response::Update as Out,
};
use cityevents_proto::cityevents::event::v1 as ev;
use cityevents_proto::cityevents::join::v1 as jn;

use super::{Api, Reply, Status, answer, ok};
use crate::live::{State, Update, Watch};

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
        let get = ev::GetEventRequest {
            event_id: event_id.clone(),
        };
        let event = answer(
            self.backends
                .events
                .clone()
                .get_event(caller.outbound(&req, get)),
        )
        .await?
        .event;
        let count = jn::GetCountsRequest {
            event_id: event_id.clone(),
        };
        let counts = answer(
            self.backends
                .join
                .clone()
                .get_counts(caller.outbound(&req, count)),
        )
        .await;
        if let Some(e) = event {
            self.hub.apply(&event_id, Update::Event(Box::new(e)));
        }
        if let Ok(c) = counts {
            self.hub.apply(&event_id, Update::Counts(c));
        }
        ok(Box::pin(updates(watch, self.hub.heartbeat())))
    }
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

/// The current state, then each change, and a heartbeat after every quiet
/// `every`; ends when the hub goes away.
fn updates(
    watch: Watch,
    every: Duration,
) -> impl Stream<Item = Result<api::WatchEventResponse, Status>> + Send {
    let start = (watch, State::default(), Vec::new());
    futures::stream::unfold(start, move |(mut watch, mut sent, mut queue)| async move {
        loop {
            if let Some(msg) = queue.pop() {
                return Some((Ok(msg), (watch, sent, queue)));
            }
            let now = watch.rx.borrow_and_update().clone();
            queue = changes(&sent, &now);
            queue.reverse();
            sent = now;
            if queue.is_empty() {
                tokio::select! {
                    changed = watch.rx.changed() => changed.ok()?,
                    () = tokio::time::sleep(every) => queue.push(heartbeat()),
                }
            }
        }
    })
}
