//! `bff serve | replicas`: see the library for everything else.

use std::path::PathBuf;
use std::process::ExitCode;

use cityevents_runtime::cli::{self, Extra};

fn main() -> ExitCode {
    let replicas = Extra {
        name: "replicas",
        about: "Print the replicas of each backend (or those named) as discovery finds them, a line per change",
        run: replicas,
    };
    cli::main(
        "bff",
        "CityEvents BFF: gRPC, gRPC-web, REST/JSON and live updates on one port",
        &[replicas],
        |cfg: bff::Config, shutdown| async move { bff::build(cfg).await?.run(shutdown).await },
        |_cfg: bff::Config| async move { Ok(()) },
    )
}

fn replicas(file: Option<PathBuf>, args: Vec<String>) -> ExitCode {
    cli::with_config("bff", file, |cfg: bff::Config| async move {
        bff::replicas::watch(&cfg, &args).await
    })
}
