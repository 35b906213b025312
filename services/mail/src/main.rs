//! `mail serve | migrate | dead-letters`: see the library for everything else.

use std::path::PathBuf;
use std::process::ExitCode;

use cityevents_runtime::cli::{self, Extra};

fn main() -> ExitCode {
    let dead_letters = Extra {
        name: "dead-letters",
        about: "List (`list [CONSUMER]`) or replay (`replay SEQ|all [CONSUMER]`) parked messages",
        run: dead_letters,
    };
    cli::main(
        "mail",
        "CityEvents mail service",
        &[dead_letters],
        |cfg: mail::Config, shutdown| async move { mail::build(cfg).await?.run(shutdown).await },
        |cfg: mail::Config| async move { mail::app::migrate(&cfg).await },
    )
}

fn dead_letters(file: Option<PathBuf>, args: Vec<String>) -> ExitCode {
    cli::with_config("mail", file, |cfg: mail::Config| async move {
        cityevents_messaging::dead_letters::command(&cfg.nats, &args).await
    })
}
