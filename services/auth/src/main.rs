//! `auth serve | migrate | keygen`: see the library for everything else.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use auth::Config;
use cityevents_runtime::cli;

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
    let command = match cli.command {
        Command::Serve => cli::Command::Serve,
        Command::Migrate => cli::Command::Migrate,
        Command::Keygen => return keygen(),
    };
    cli::run(
        "auth",
        cli.config,
        command,
        |cfg: Config, shutdown| async move { auth::build(cfg).await?.run(shutdown).await },
        |cfg: Config| async move { auth::app::migrate(&cfg).await },
    )
}

fn keygen() -> ExitCode {
    match cityevents_authn::SigningKey::generate().and_then(|k| k.to_pem()) {
        Ok(pem) => {
            print!("{pem}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("auth: {e:#}");
            ExitCode::FAILURE
        }
    }
}
