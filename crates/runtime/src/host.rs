//! A built service, ready to run: its gRPC server on bound listeners plus the
//! background tasks (outbox relay, consumers) that live and die with it.

use std::net::SocketAddr;

use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::ServerConfig;
use crate::grpc::server::{GrpcServer, ServiceSet, bind};
use crate::metrics::Metrics;

type Task = Box<dyn FnOnce(CancellationToken) -> BoxFuture<'static, anyhow::Result<()>> + Send>;

/// Every service's `build(config)` returns one of these; `main.rs` and the
/// tests run it the same way.
pub struct Host {
    server: GrpcServer,
    grpc: TcpListener,
    admin: TcpListener,
    metrics: Metrics,
    tasks: Vec<(&'static str, Task)>,
}

impl Host {
    /// Binds the listeners of `config` for `services`.
    pub async fn bind(
        config: ServerConfig,
        metrics: Metrics,
        services: ServiceSet,
    ) -> anyhow::Result<Self> {
        let grpc = bind(config.grpc_addr).await?;
        let admin = bind(config.admin_addr).await?;
        let server = GrpcServer::new(config, metrics.clone(), services);
        Ok(Self {
            server,
            grpc,
            admin,
            metrics,
            tasks: Vec::new(),
        })
    }

    /// Adds a background task, started by [`Host::run`] and stopped with the server.
    pub fn task<F>(
        mut self,
        name: &'static str,
        task: impl FnOnce(CancellationToken) -> F + Send + 'static,
    ) -> Self
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.tasks
            .push((name, Box::new(move |t| Box::pin(task(t)))));
        self
    }

    /// Where gRPC is served.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc
            .local_addr()
            .expect("bound listener has an address")
    }

    /// Where `/metrics` is served.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
            .local_addr()
            .expect("bound listener has an address")
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Serves and runs the tasks until `shutdown` fires; the tasks get a
    /// child token, cancelled once the server has drained.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(grpc = %self.grpc_addr(), admin = %self.admin_addr(), "service listening");
        let handles: Vec<_> = self
            .tasks
            .into_iter()
            .map(|(name, task)| (name, tokio::spawn(task(shutdown.child_token()))))
            .collect();
        let served = self
            .server
            .serve(self.grpc, self.admin, shutdown.clone())
            .await;
        shutdown.cancel();
        for (name, handle) in handles {
            match handle.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(
                    task = name,
                    error = format!("{e:#}"),
                    "background task failed"
                ),
                Err(e) => tracing::error!(task = name, error = %e, "background task panicked"),
            }
        }
        served
    }
}
