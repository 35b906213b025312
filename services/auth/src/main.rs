//! `auth serve | migrate | keygen`: see the library for everything else.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use auth::{App, Config};
use cityevents_runtime::{config, shutdown, telemetry};

#[derive(Parser)]
#[command(version, about = "CityEvents auth service")]
struct Cli {
    /// TOML config file; CITYEVENTS_* environment variables override it.
    #[arg(long, env = "CITYEVENTS_CONFIG_FILE", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve gRPC until SIGTERM.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print a new Ed25519 signing key (PKCS#8 PEM).
    Keygen,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(&e.into()),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(e: &anyhow::Error) -> ExitCode {
    eprintln!("auth: {e:#}");
    ExitCode::FAILURE
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Keygen = cli.command {
        print!("{}", cityevents_authn::SigningKey::generate()?.to_pem()?);
        return Ok(());
    }
    let cfg: Config = config::load(cli.config.as_deref())?;
    let telemetry = telemetry::init("auth", &cfg.telemetry)?;
    let result = match cli.command {
        Command::Serve => match App::build(cfg).await {
            Ok(app) => app.run(shutdown::on_signal()).await,
            Err(e) => Err(e),
        },
        Command::Migrate => auth::app::migrate(&cfg).await,
        Command::Keygen => Ok(()),
    };
    if let Err(e) = &result {
        tracing::error!(error = format!("{e:#}"), "auth service failed");
    }
    telemetry.shutdown().await;
    result
}
