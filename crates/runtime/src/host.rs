//! A built service, ready to run: its gRPC server on bound listeners plus the
//! background tasks (outbox relay, consumers) that live and die with it.

use std::collections::HashMap;
use std::net::SocketAddr;

use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
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

    /// Serves and runs the tasks until `shutdown` fires. The tasks get their
    /// own token, cancelled only once the server has drained its in-flight
    /// calls, so a join accepted before SIGTERM still finds its batcher and
    /// relay. A task that stops on its own (an error, a panic, or an early
    /// return) is a service no longer doing its job: it is logged with its
    /// cause, health turns NOT_SERVING, the server drains and `run` fails, so
    /// the process exits and its supervisor restarts it.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(grpc = %self.grpc_addr(), admin = %self.admin_addr(), "service listening");
        let tasks_stop = CancellationToken::new();
        let mut set = JoinSet::new();
        let mut names = HashMap::new();
        for (name, task) in self.tasks {
            let id = set.spawn(task(tasks_stop.clone())).id();
            names.insert(id, name);
        }
        let supervisor = tokio::spawn(supervise(set, names, tasks_stop.clone(), shutdown.clone()));
        let served = self
            .server
            .serve(self.grpc, self.admin, shutdown.clone())
            .await;
        tasks_stop.cancel();
        let failed = supervisor.await?;
        served?;
        match failed {
            Some(name) => anyhow::bail!("background task {name} stopped before shutdown"),
            None => Ok(()),
        }
    }
}

/// Waits for every task; the first one to end before `tasks_stop` starts
/// the shutdown. Returns the name of a task that ended early, if any.
async fn supervise(
    mut set: JoinSet<anyhow::Result<()>>,
    names: HashMap<tokio::task::Id, &'static str>,
    tasks_stop: CancellationToken,
    shutdown: CancellationToken,
) -> Option<&'static str> {
    let mut failed = None;
    while let Some(ended) = set.join_next_with_id().await {
        let early = !tasks_stop.is_cancelled();
        let (id, outcome) = match ended {
            Ok((id, Ok(()))) => (id, None),
            Ok((id, Err(e))) => (id, Some(format!("{e:#}"))),
            Err(e) => (e.id(), Some(format!("panicked: {e}"))),
        };
        let task = names.get(&id).copied().unwrap_or("unknown");
        match (&outcome, early) {
            (Some(error), true) => {
                tracing::error!(task, error, "background task failed; shutting down")
            }
            (None, true) => tracing::error!(task, "background task ended early; shutting down"),
            (Some(error), false) => tracing::error!(task, error, "background task failed"),
            (None, false) => {}
        }
        if early {
            failed.get_or_insert(task);
            shutdown.cancel();
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::*;

    async fn host() -> Host {
        let config = ServerConfig {
            drain_delay_ms: 300,
            ..ServerConfig::ephemeral()
        };
        Host::bind(config, Metrics::new().unwrap(), ServiceSet::new())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_background_task_that_fails_stops_the_service_with_an_error() {
        let host = host()
            .await
            .task("doomed", |_| async { anyhow::bail!("lost its database") });
        let shutdown = CancellationToken::new();
        let run = tokio::time::timeout(Duration::from_secs(10), host.run(shutdown.clone()));
        let err = run.await.expect("the service stops by itself").unwrap_err();
        assert!(err.to_string().contains("doomed"), "{err}");
        assert!(
            shutdown.is_cancelled(),
            "health went NOT_SERVING through shutdown"
        );
    }

    #[tokio::test]
    async fn tasks_run_until_the_server_has_drained() {
        let stopped_early = Arc::new(AtomicBool::new(false));
        let shutdown = CancellationToken::new();
        let host = host().await.task("worker", {
            let (stopped_early, shutdown) = (stopped_early.clone(), shutdown.clone());
            move |stop| async move {
                shutdown.cancelled().await;
                // The server is still in its 300 ms drain: the token holds.
                tokio::time::sleep(Duration::from_millis(100)).await;
                stopped_early.store(stop.is_cancelled(), Ordering::SeqCst);
                stop.cancelled().await;
                Ok(())
            }
        });
        let run = tokio::spawn(host.run(shutdown.clone()));
        tokio::time::sleep(Duration::from_millis(50)).await;
        shutdown.cancel();
        run.await.unwrap().unwrap();
        assert!(!stopped_early.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn while_draining_a_pod_is_alive_but_no_longer_ready() {
        use tonic_health::pb::HealthCheckRequest;
        use tonic_health::pb::health_check_response::ServingStatus;
        use tonic_health::pb::health_client::HealthClient;

        let host = host().await;
        let addr = host.grpc_addr();
        let shutdown = CancellationToken::new();
        let run = tokio::spawn(host.run(shutdown.clone()));
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut health = HealthClient::new(channel);
        let mut status = async |service: &str| {
            let request = HealthCheckRequest {
                service: service.into(),
            };
            health.check(request).await.unwrap().into_inner().status
        };
        let serving = ServingStatus::Serving as i32;
        assert_eq!(status("liveness").await, serving);
        assert_eq!(status("readiness").await, serving);

        shutdown.cancel();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(status("liveness").await, serving);
        assert_eq!(status("readiness").await, ServingStatus::NotServing as i32);
        assert_eq!(status("").await, ServingStatus::NotServing as i32);
        run.await.unwrap().unwrap();
    }
}
