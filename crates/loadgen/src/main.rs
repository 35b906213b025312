//! `loadgen`: see the library.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match cityevents_loadgen::main(cityevents_loadgen::Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
