//! `auth serve | migrate | keygen | sealkey | bench-tokens`: see the library
//! for everything else.

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
    let bench_tokens = Extra {
        name: "bench-tokens",
        about: "Print N access tokens of new, verified users, one a line (load tests; signs with the configured key)",
        run: bench_tokens,
    };
    service_main(
        "auth",
        "CityEvents auth service",
        &[keygen, sealkey, bench_tokens],
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

/// `auth bench-tokens N`: what a load generator needs to act as N people
/// without N sign-ups (each a 19 MiB argon2 hash). Anyone holding the
/// signing key can mint tokens anyway; this only saves writing the code.
fn bench_tokens(file: Option<std::path::PathBuf>, args: Vec<String>) -> ExitCode {
    let Some(n) = args.first().and_then(|a| a.parse::<usize>().ok()) else {
        eprintln!("auth: usage: auth bench-tokens N");
        return ExitCode::FAILURE;
    };
    cityevents_runtime::cli::with_config("auth", file, move |cfg: auth::Config| async move {
        use std::io::Write;
        let issuer = auth::tokens::Issuer::new(
            cfg.tokens.load_keys()?,
            &cfg.tokens.verifier,
            cfg.tokens.access_ttl_secs,
        )?;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        for _ in 0..n {
            let subject = auth::tokens::Subject {
                user_id: uuid::Uuid::now_v7(),
                role: cityevents_authn::Role::User,
                token_version: 0,
                email_verified: true,
                session_id: uuid::Uuid::new_v4(),
            };
            let (token, _) = issuer.access_token(&subject)?;
            writeln!(out, "{token}")?;
        }
        Ok(out.flush()?)
    })
}
