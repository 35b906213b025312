//! `event serve | migrate`: see the library for everything else.

use std::process::ExitCode;

fn main() -> ExitCode {
    cityevents_runtime::cli::main(
        "event",
        "CityEvents event service",
        &[],
        |cfg: event::Config, shutdown| async move { event::build(cfg).await?.run(shutdown).await },
        |cfg: event::Config| async move { event::app::migrate(&cfg).await },
    )
}
