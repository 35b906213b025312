//! The command line every service binary shares: `<svc> serve | migrate`
//! (`--config FILE`), plus whatever extra commands the service adds, with one
//! error and exit path. A service's `main.rs` is one call to [`main`].

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

/// A service-specific subcommand (e.g. `auth keygen`).
pub struct Extra {
    /// Subcommand name.
    pub name: &'static str,
    /// One-line help.
    pub about: &'static str,
    /// What it does.
    pub run: fn() -> ExitCode,
}

/// Parses the command line and runs `serve`, `migrate` or an extra command.
pub fn main<C, S, SF, M, MF>(
    name: &'static str,
    about: &'static str,
    extra: &[Extra],
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
    use clap::{Arg, Command as Cmd, value_parser};
    let mut cli = Cmd::new(name)
        .about(about)
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand_required(true)
        .arg(
            Arg::new("config")
                .long("config")
                .env("CITYEVENTS_CONFIG_FILE")
                .global(true)
                .value_parser(value_parser!(PathBuf))
                .help("TOML config file; CITYEVENTS_* environment variables override it"),
        )
        .subcommand(Cmd::new("serve").about("Serve gRPC until SIGTERM"))
        .subcommand(Cmd::new("migrate").about("Apply database migrations and exit"));
    for e in extra {
        cli = cli.subcommand(Cmd::new(e.name).about(e.about));
    }
    let matches = cli.get_matches();
    let file = matches.get_one::<PathBuf>("config").cloned();
    match matches.subcommand_name() {
        Some("serve") => run(name, file, Command::Serve, serve, migrate),
        Some("migrate") => run(name, file, Command::Migrate, serve, migrate),
        other => extra
            .iter()
            .find(|e| Some(e.name) == other)
            .map_or(ExitCode::FAILURE, |e| (e.run)()),
    }
}

/// `serve` or `migrate`.
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
