//! `join serve | migrate`: see the library for everything else.

use std::process::ExitCode;

fn main() -> ExitCode {
    cityevents_runtime::cli::main(
        "join",
        "CityEvents join service",
        &[],
        |cfg: join::Config, shutdown| async move { join::build(cfg).await?.run(shutdown).await },
        |cfg: join::Config| async move { join::app::migrate(&cfg).await },
    )
}
