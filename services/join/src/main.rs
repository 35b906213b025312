//! `join serve | migrate`: see the library for everything else.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cityevents_runtime::cli;
use join::Config;

#[derive(Parser)]
#[command(version, about = "CityEvents join service")]
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = match cli.command {
        Command::Serve => cli::Command::Serve,
        Command::Migrate => cli::Command::Migrate,
    };
    cli::run(
        "join",
        cli.config,
        command,
        |cfg: Config, shutdown| async move { join::build(cfg).await?.run(shutdown).await },
        |cfg: Config| async move { join::app::migrate(&cfg).await },
    )
}
