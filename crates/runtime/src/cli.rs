//! The command line every service binary shares: `<svc> serve | migrate`,
//! plus whatever extra the service adds, with one error and exit path.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::TelemetryConfig;
use crate::{CancellationToken, config, shutdown, telemetry};

/// What a service's config exposes to the shared main.
pub trait ServiceConfig: DeserializeOwned + Serialize + Default {
    /// The telemetry section.
    fn telemetry(&self) -> &TelemetryConfig;
}

/// `serve` or `migrate`, parsed by the service's own clap definition.
pub enum Command {
    /// Serve until SIGTERM.
    Serve,
    /// Apply migrations and exit.
    Migrate,
}

/// Loads config from `file` and the environment, starts telemetry, runs the
/// command, flushes telemetry, and turns the outcome into an exit code.
pub fn run<C, S, SF, M, MF>(
    name: &'static str,
    file: Option<PathBuf>,
    command: Command,
    serve: S,
    migrate: M,
) -> ExitCode
where
    C: ServiceConfig,
    S: FnOnce(C, CancellationToken) -> SF,
    SF: Future<Output = anyhow::Result<()>>,
    M: FnOnce(C) -> MF,
    MF: Future<Output = anyhow::Result<()>>,
{
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(name, &e.into()),
    };
    let outcome = runtime.block_on(async move {
        let cfg: C = config::load(file.as_deref())?;
        let telemetry = telemetry::init(name, cfg.telemetry())?;
        let result = match command {
            Command::Serve => serve(cfg, shutdown::on_signal()).await,
            Command::Migrate => migrate(cfg).await,
        };
        if let Err(e) = &result {
            tracing::error!(error = format!("{e:#}"), "{name} failed");
        }
        telemetry.shutdown().await;
        result
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(name, &e),
    }
}

fn fail(name: &str, e: &anyhow::Error) -> ExitCode {
    eprintln!("{name}: {e:#}");
    ExitCode::FAILURE
}
