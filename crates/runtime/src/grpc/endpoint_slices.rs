//! Replicas from Kubernetes itself: the EndpointSlices of a backend's
//! Service, watched through the API server (`discovery.k8s.io/v1`), instead
//! of resolving its name again and again. A pod that turns ready is used on
//! the next event rather than after the next lookup, and one that starts
//! terminating takes no new calls from that moment.
//!
//! The set is every address, across all of the Service's slices, of an
//! endpoint that is not known unready (`ready` unset counts as ready, as
//! the API says) and not terminating, deduplicated (an endpoint may sit in
//! two slices while the controller moves it). The port is the slice's port
//! named `grpc`, else its only port, else the endpoint's.
//!
//! The pod needs to read EndpointSlices in the backend's namespace (the
//! chart's Role). The API server's client comes from the environment: the
//! pod's service account in a cluster, `KUBECONFIG` outside one.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{Stream, StreamExt};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};

use super::discovery::Discovery;

type Events = Pin<Box<dyn Stream<Item = Result<Event<EndpointSlice>, watcher::Error>> + Send>>;

/// The label EndpointSlices carry with their Service's name.
const SERVICE_LABEL: &str = "kubernetes.io/service-name";

/// Follows one Service's EndpointSlices.
pub struct EndpointSlices {
    service: String,
    /// `None`: the client's own namespace (the pod's).
    namespace: Option<String>,
    port: u16,
    events: Option<Events>,
    /// Each slice's addresses, by slice name.
    slices: BTreeMap<String, Vec<SocketAddr>>,
    /// Slices listed since the watch (re)started, swapped in when the list
    /// is complete.
    listing: Option<BTreeMap<String, Vec<SocketAddr>>>,
    last: Option<Vec<SocketAddr>>,
}

impl EndpointSlices {
    /// Watches the Service `host` names (`name`, `name.namespace`, or
    /// `name.namespace.svc.cluster.local`); `port` is the fallback when a
    /// slice names none.
    pub fn new(host: &str, port: u16) -> Self {
        let mut labels = host.split('.');
        let service = labels.next().unwrap_or_default().to_owned();
        let namespace = labels.next().map(str::to_owned);
        Self {
            service,
            namespace,
            port,
            events: None,
            slices: BTreeMap::new(),
            listing: None,
            last: None,
        }
    }

    async fn start(&mut self) -> Events {
        let mut wait = Duration::from_millis(200);
        loop {
            match Client::try_default().await {
                Ok(client) => {
                    let ns = self
                        .namespace
                        .clone()
                        .unwrap_or_else(|| client.default_namespace().to_owned());
                    let api: Api<EndpointSlice> = Api::namespaced(client, &ns);
                    let cfg = watcher::Config::default()
                        .labels(&format!("{SERVICE_LABEL}={}", self.service));
                    return watcher::watcher(api, cfg).default_backoff().boxed();
                }
                Err(e) => {
                    tracing::warn!(service = %self.service, error = %e, "no Kubernetes API client for EndpointSlice discovery; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// Applies one event; true when the current set may have changed.
    fn apply(&mut self, event: Event<EndpointSlice>) -> bool {
        match event {
            Event::Init => {
                self.listing = Some(BTreeMap::new());
                false
            }
            Event::InitApply(slice) => {
                let name = slice.metadata.name.clone().unwrap_or_default();
                let addrs = ready_addresses(&slice, self.port);
                self.listing.get_or_insert_default().insert(name, addrs);
                false
            }
            Event::InitDone => {
                self.slices = self.listing.take().unwrap_or_default();
                true
            }
            Event::Apply(slice) => {
                let name = slice.metadata.name.clone().unwrap_or_default();
                self.slices.insert(name, ready_addresses(&slice, self.port));
                true
            }
            Event::Delete(slice) => {
                let name = slice.metadata.name.clone().unwrap_or_default();
                self.slices.remove(&name).is_some()
            }
        }
    }

    /// Every slice's addresses, sorted and deduplicated.
    fn current(&self) -> Vec<SocketAddr> {
        let set: BTreeSet<SocketAddr> = self.slices.values().flatten().copied().collect();
        set.into_iter().collect()
    }
}

impl Discovery for EndpointSlices {
    fn next(&mut self) -> BoxFuture<'_, Option<Vec<SocketAddr>>> {
        Box::pin(async move {
            loop {
                if self.events.is_none() {
                    self.events = Some(self.start().await);
                }
                let events = self.events.as_mut()?;
                match events.next().await {
                    Some(Ok(event)) => {
                        if !self.apply(event) {
                            continue;
                        }
                        let set = self.current();
                        if self.last.as_ref() != Some(&set) {
                            self.last = Some(set.clone());
                            return Some(set);
                        }
                    }
                    // The watcher retries with backoff; the last set stays.
                    Some(Err(e)) => {
                        tracing::warn!(service = %self.service, error = %e, "watching EndpointSlices failed; keeping the last addresses");
                    }
                    None => return None,
                }
            }
        })
    }
}

/// The addresses of `slice`'s endpoints that take calls, on its gRPC port.
fn ready_addresses(slice: &EndpointSlice, fallback_port: u16) -> Vec<SocketAddr> {
    let ports = slice.ports.as_deref().unwrap_or_default();
    let port = ports
        .iter()
        .find(|p| p.name.as_deref() == Some("grpc"))
        .or(if ports.len() == 1 {
            ports.first()
        } else {
            None
        })
        .and_then(|p| p.port)
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(fallback_port);
    slice
        .endpoints
        .iter()
        .filter(|e| {
            let c = e.conditions.as_ref();
            c.and_then(|c| c.ready) != Some(false) && c.and_then(|c| c.terminating) != Some(true)
        })
        .flat_map(|e| &e.addresses)
        .filter_map(|a| a.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, port))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn endpoint(ip: &str, ready: Option<bool>, terminating: Option<bool>) -> Endpoint {
        Endpoint {
            addresses: vec![ip.into()],
            conditions: Some(EndpointConditions {
                ready,
                serving: ready,
                terminating,
            }),
            ..Endpoint::default()
        }
    }

    fn slice(name: &str, ports: &[(&str, i32)], endpoints: Vec<Endpoint>) -> EndpointSlice {
        EndpointSlice {
            address_type: "IPv4".into(),
            endpoints,
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            ports: Some(
                ports
                    .iter()
                    .map(|(n, p)| EndpointPort {
                        name: Some((*n).into()),
                        port: Some(*p),
                        ..EndpointPort::default()
                    })
                    .collect(),
            ),
        }
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap_or_else(|_| panic!("{s}"))
    }

    #[test]
    fn only_ready_endpoints_that_are_not_terminating_take_calls() {
        let s = slice(
            "join-a",
            &[("grpc", 50051), ("admin", 9090)],
            vec![
                endpoint("10.0.0.1", Some(true), Some(false)),
                endpoint("10.0.0.2", None, None),
                endpoint("10.0.0.3", Some(false), Some(false)),
                endpoint("10.0.0.4", Some(false), Some(true)),
                endpoint("not an ip", Some(true), None),
            ],
        );
        assert_eq!(
            ready_addresses(&s, 1),
            vec![addr("10.0.0.1:50051"), addr("10.0.0.2:50051")]
        );
    }

    #[test]
    fn a_slice_with_one_unnamed_port_uses_it_and_one_with_none_the_endpoints_port() {
        let one = slice("a", &[("", 7000)], vec![endpoint("10.0.0.1", None, None)]);
        let none = EndpointSlice {
            ports: None,
            ..slice("b", &[], vec![endpoint("10.0.0.2", None, None)])
        };
        assert_eq!(ready_addresses(&one, 1), vec![addr("10.0.0.1:7000")]);
        assert_eq!(ready_addresses(&none, 50051), vec![addr("10.0.0.2:50051")]);
    }

    #[test]
    fn an_endpoint_in_two_slices_is_one_replica_and_a_relist_replaces_the_set() {
        let mut d = EndpointSlices::new("join.cityevents", 50051);
        assert_eq!(
            (d.service.as_str(), d.namespace.as_deref()),
            ("join", Some("cityevents"))
        );
        let a = slice(
            "a",
            &[("grpc", 50051)],
            vec![endpoint("10.0.0.1", None, None)],
        );
        let b = slice(
            "b",
            &[("grpc", 50051)],
            vec![
                endpoint("10.0.0.1", None, None),
                endpoint("10.0.0.2", None, None),
            ],
        );
        assert!(!d.apply(Event::Init));
        assert!(!d.apply(Event::InitApply(a)));
        assert!(!d.apply(Event::InitApply(b.clone())));
        assert!(d.apply(Event::InitDone));
        assert_eq!(
            d.current(),
            vec![addr("10.0.0.1:50051"), addr("10.0.0.2:50051")]
        );

        assert!(d.apply(Event::Delete(b)));
        assert_eq!(d.current(), vec![addr("10.0.0.1:50051")]);

        // A restarted watch lists again; slices missing from the new list
        // (deleted while the watch was down) are gone once it completes.
        d.apply(Event::Init);
        d.apply(Event::InitApply(slice(
            "c",
            &[("grpc", 50051)],
            vec![endpoint("10.0.0.9", None, None)],
        )));
        assert_eq!(
            d.current(),
            vec![addr("10.0.0.1:50051")],
            "the old set holds until the list is done"
        );
        d.apply(Event::InitDone);
        assert_eq!(d.current(), vec![addr("10.0.0.9:50051")]);
    }
}
