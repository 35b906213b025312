//! `media serve | migrate`: see the library for everything else.

use std::process::ExitCode;

fn main() -> ExitCode {
    cityevents_runtime::cli::main(
        "media",
        "CityEvents media service",
        &[],
        |cfg: media::Config, shutdown| async move { media::build(cfg).await?.run(shutdown).await },
        |cfg: media::Config| async move { media::app::migrate(&cfg).await },
    )
}
