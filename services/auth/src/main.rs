//! `auth serve | migrate | keygen | sealkey`: see the library for everything else.

use std::process::ExitCode;

use cityevents_runtime::cli::{Extra, main as service_main};

fn main() -> ExitCode {
    let keygen = Extra {
        name: "keygen",
        about: "Print a new Ed25519 signing key (PKCS#8 PEM)",
        run: keygen,
    };
    let sealkey = Extra {
        name: "sealkey",
        about: "Print a new key sealing one-time links for the mail service",
        run: sealkey,
    };
    service_main(
        "auth",
        "CityEvents auth service",
        &[keygen, sealkey],
        |cfg: auth::Config, shutdown| async move { auth::build(cfg).await?.run(shutdown).await },
        |cfg: auth::Config| async move { auth::app::migrate(&cfg).await },
    )
}

fn keygen(_: Option<std::path::PathBuf>, _: Vec<String>) -> ExitCode {
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

fn sealkey(_: Option<std::path::PathBuf>, _: Vec<String>) -> ExitCode {
    match cityevents_authn::sealed::generate_key() {
        Ok(key) => {
            println!("{key}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("auth: {e:#}");
            ExitCode::FAILURE
        }
    }
}
