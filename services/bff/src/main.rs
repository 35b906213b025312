//! `bff serve`: see the library for everything else.

use std::process::ExitCode;

fn main() -> ExitCode {
    cityevents_runtime::cli::main(
        "bff",
        "CityEvents BFF: gRPC, gRPC-web, REST/JSON and live updates on one port",
        &[],
        |cfg: bff::Config, shutdown| async move { bff::build(cfg).await?.run(shutdown).await },
        |_cfg: bff::Config| async move { Ok(()) },
    )
}
