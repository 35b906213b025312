//! Where a backend's replicas are: fixed addresses, or a name resolved
//! again and again. [`super::balance::Balanced`] follows whichever it is
//! given; [`super::endpoint_slices::EndpointSlices`] is the third kind.

use std::net::SocketAddr;
use std::time::Duration;

use futures::future::BoxFuture;

/// Where a backend's replicas are: a stream of address sets.
pub trait Discovery: Send + 'static {
    /// The next set of ready addresses: the first call answers as soon as
    /// it knows, later calls wait until the set changes. `None` ends
    /// discovery (the last set stays in use).
    fn next(&mut self) -> BoxFuture<'_, Option<Vec<SocketAddr>>>;
}

/// Fixed addresses (an IP literal in the configuration).
pub struct Fixed(Option<Vec<SocketAddr>>);

impl Fixed {
    pub fn new(addrs: Vec<SocketAddr>) -> Self {
        Self(Some(addrs))
    }
}

impl Discovery for Fixed {
    fn next(&mut self) -> BoxFuture<'_, Option<Vec<SocketAddr>>> {
        let first = self.0.take();
        Box::pin(async move {
            match first {
                Some(set) => Some(set),
                None => std::future::pending().await,
            }
        })
    }
}

/// A `host:port` resolved again every `every`; a failed lookup keeps the
/// last set (a brief DNS outage must not empty the pool).
pub struct Dns {
    authority: String,
    every: Duration,
    last: Option<Vec<SocketAddr>>,
}

impl Dns {
    pub fn new(authority: impl Into<String>, every: Duration) -> Self {
        Self {
            authority: authority.into(),
            every,
            last: None,
        }
    }
}

impl Discovery for Dns {
    fn next(&mut self) -> BoxFuture<'_, Option<Vec<SocketAddr>>> {
        Box::pin(async move {
            loop {
                if self.last.is_some() {
                    tokio::time::sleep(self.every).await;
                }
                match tokio::net::lookup_host(self.authority.as_str()).await {
                    Ok(addrs) => {
                        let mut set: Vec<SocketAddr> = addrs.collect();
                        set.sort();
                        set.dedup();
                        if self.last.as_ref() != Some(&set) {
                            self.last = Some(set.clone());
                            return Some(set);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(authority = %self.authority, error = %e, "resolving a backend failed; keeping the last addresses");
                        if self.last.is_none() {
                            self.last = Some(Vec::new());
                            tokio::time::sleep(self.every.min(Duration::from_secs(1))).await;
                            self.last = None;
                        }
                    }
                }
            }
        })
    }
}
