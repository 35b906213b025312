//! The public API (`cityevents.api.v1`), one module per service: each
//! handler admits the caller at the [`Edge`], asks the services, and passes
//! their answers and errors on. REST/JSON and gRPC-web reach the same
//! handlers (see [`crate::rest`] and [`crate::app`]).

mod account;
mod discovery;
mod events;
mod images;
mod live;
mod registrations;

use std::sync::Arc;

use cityevents_proto::cityevents::auth::v1::auth_service_client::AuthServiceClient;
use cityevents_proto::cityevents::event::v1::event_service_client::EventServiceClient;
use cityevents_proto::cityevents::feed::v1::feed_service_client::FeedServiceClient;
use cityevents_proto::cityevents::join::v1::join_service_client::JoinServiceClient;
use cityevents_proto::cityevents::mail::v1::mail_service_client::MailServiceClient;
use cityevents_proto::cityevents::media::v1::media_service_client::MediaServiceClient;
use cityevents_runtime::grpc::client::GrpcChannel;

use crate::edge::{Edge, relay};
use crate::live::Hub;

pub use live::WatchStream;

/// The services behind the edge.
#[derive(Clone)]
pub struct Backends {
    pub auth: AuthServiceClient<GrpcChannel>,
    pub events: EventServiceClient<GrpcChannel>,
    pub join: JoinServiceClient<GrpcChannel>,
    pub feed: FeedServiceClient<GrpcChannel>,
    pub mail: MailServiceClient<GrpcChannel>,
    pub media: MediaServiceClient<GrpcChannel>,
}

/// Implements every public service; cheap to clone.
#[derive(Clone)]
pub struct Api {
    edge: Arc<Edge>,
    backends: Backends,
    hub: Hub,
}

impl Api {
    pub fn new(edge: Arc<Edge>, backends: Backends, hub: Hub) -> Self {
        Self {
            edge,
            backends,
            hub,
        }
    }
}

type Status = tonic::Status;
type Reply<T> = Result<tonic::Response<T>, Status>;

/// The message of a service's answer, or its error relayed.
async fn answer<T>(
    call: impl Future<Output = Result<tonic::Response<T>, Status>>,
) -> Result<T, Status> {
    call.await.map(tonic::Response::into_inner).map_err(relay)
}

fn ok<T>(msg: T) -> Reply<T> {
    Ok(tonic::Response::new(msg))
}
