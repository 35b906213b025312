//! `feed serve | migrate | rebuild | dead-letters`: see the library for everything else.

use std::path::PathBuf;
use std::process::ExitCode;

use cityevents_runtime::cli::{self, Extra};

fn main() -> ExitCode {
    let rebuild = Extra {
        name: "rebuild",
        about: "Rebuild the projection from the start of the event and join streams",
        run: rebuild,
    };
    let dead_letters = Extra {
        name: "dead-letters",
        about: "List (`list [CONSUMER]`) or replay (`replay SEQ|all [CONSUMER]`) parked messages",
        run: dead_letters,
    };
    let explain = Extra {
        name: "explain",
        about: "EXPLAIN (ANALYZE, BUFFERS) a search: `explain query=jazz near=52.52,13.40,3 sort=distance`",
        run: explain,
    };
    cli::main(
        "feed",
        "CityEvents feed service",
        &[rebuild, explain, dead_letters],
        |cfg: feed::Config, shutdown| async move { feed::build(cfg).await?.run(shutdown).await },
        |cfg: feed::Config| async move { feed::app::migrate(&cfg).await },
    )
}

fn rebuild(file: Option<PathBuf>, _args: Vec<String>) -> ExitCode {
    cli::with_config("feed", file, |cfg: feed::Config| async move {
        let report = feed::rebuild::run(&cfg).await?;
        println!("{report}");
        Ok(())
    })
}

fn explain(file: Option<PathBuf>, args: Vec<String>) -> ExitCode {
    cli::with_config("feed", file, |cfg: feed::Config| async move {
        let (request, tsquery) = feed::query::from_words(&args)?;
        let search =
            feed::query::Search::parse(&request).map_err(|e| anyhow::anyhow!("{}", e.message()))?;
        let pool = feed::app::pool(&cfg.database, &cfg.feed)?;
        let plan =
            feed::search::explain(&pool, &search, tsquery.as_deref(), cfg.feed.max_candidates)
                .await?;
        println!("{plan}");
        Ok(())
    })
}

fn dead_letters(file: Option<PathBuf>, args: Vec<String>) -> ExitCode {
    cli::with_config("feed", file, |cfg: feed::Config| async move {
        cityevents_messaging::dead_letters::command(&cfg.nats, &args).await
    })
}
