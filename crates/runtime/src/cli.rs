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
pub trait ServiceConfig: DeserializeOwned + Serialize + Default + std::fmt::Debug {
    /// The telemetry section.
    fn telemetry(&self) -> &TelemetryConfig;
}

/// A service-specific subcommand (e.g. `auth keygen`, `join dead-letters list`).
pub struct Extra {
    /// Subcommand name.
    pub name: &'static str,
    /// One-line help.
    pub about: &'static str,
    /// What it does, given `--config` (if any) and the words after its name.
    pub run: fn(Option<PathBuf>, Vec<String>) -> ExitCode,
}

/// Runs `work` with the service's config loaded from `file` and the
/// environment, on a fresh runtime: what an extra command needing the
/// service's settings calls.
pub fn with_config<C, F, Fut>(name: &str, file: Option<PathBuf>, work: F) -> ExitCode
where
    C: ServiceConfig,
    F: FnOnce(C) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let outcome = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|rt| {
            rt.block_on(async move {
                let cfg: C = config::load(file.as_deref())?;
                work(cfg).await
            })
        });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(name, &e),
    }
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
        .subcommand(Cmd::new("migrate").about("Apply database migrations and exit"))
        .subcommand(Cmd::new("config").about(
            "Check the configuration (file and CITYEVENTS_* environment) and print it, secrets redacted",
        ));
    for e in extra {
        let words = Arg::new("args")
            .num_args(0..)
            .trailing_var_arg(true)
            .allow_hyphen_values(true);
        cli = cli.subcommand(Cmd::new(e.name).about(e.about).arg(words));
    }
    let matches = cli.get_matches();
    let file = matches.get_one::<PathBuf>("config").cloned();
    match matches.subcommand_name() {
        Some("serve") => run(name, file, Command::Serve, serve, migrate),
        Some("migrate") => run(name, file, Command::Migrate, serve, migrate),
        Some("config") => match config::load::<C>(file.as_deref()) {
            Ok(cfg) => {
                use std::io::Write as _;
                // A closed pipe (`| head`) is no failure of the config.
                let _ = writeln!(std::io::stdout(), "{cfg:#?}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(name, &e),
        },
        other => {
            let words: Vec<String> = matches
                .subcommand()
                .and_then(|(_, m)| m.get_many::<String>("args"))
                .map(|w| w.cloned().collect())
                .unwrap_or_default();
            extra
                .iter()
                .find(|e| Some(e.name) == other)
                .map_or(ExitCode::FAILURE, |e| (e.run)(file, words))
        }
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
