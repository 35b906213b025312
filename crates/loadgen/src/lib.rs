//! An open-loop load generator for REST and gRPC APIs: a constant arrival
//! rate, latency measured from each request's intended send time, answers
//! counted by status, and the CPU the generator and any watched process
//! spent per request. `make bench` drives the BFF with it; it can be
//! pointed at any other platform's REST API from the command line.

pub mod machine;
pub mod run;
pub mod seed;
pub mod target;
pub mod template;
pub mod watchers;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::run::{Figures, Load};
use crate::target::Target;
use crate::template::{Template, Var};

#[derive(Parser, Debug)]
#[command(
    name = "loadgen",
    about = "Open-loop load generator (constant arrival rate, wrk2-style latency)"
)]
pub struct Args {
    /// Requests per second; several (`1000,2000,4000`) make a step-up run
    /// that stops at the first rate whose p99 passes `--slo-ms`, then runs
    /// twice the highest rate held.
    #[arg(long, value_delimiter = ',', default_value = "1000")]
    pub rate: Vec<f64>,
    /// Seconds each rate runs.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// The p99 a step-up run must hold, in milliseconds.
    #[arg(long, default_value_t = 100.0)]
    pub slo_ms: f64,
    /// Requests in flight at most (beyond it a due request is `dropped`).
    #[arg(long, default_value_t = 20_000)]
    pub max_in_flight: usize,
    /// A file of bearer tokens, one a line, used in turn (`{token}`).
    #[arg(long)]
    pub tokens: Option<PathBuf>,
    /// `name=value`, filled in for `{name}` in the URL, body and headers.
    #[arg(long = "var")]
    pub vars: Vec<String>,
    /// `name=FILE`: `{name}` is a line of FILE, the next one each time the
    /// tokens come round again (each person joins another event).
    #[arg(long = "round-var")]
    pub round_vars: Vec<String>,
    /// `name: value` request headers (templates too).
    #[arg(long = "header", short = 'H')]
    pub headers: Vec<String>,
    /// `name=pid` of a process whose CPU per request is reported.
    #[arg(long = "watch")]
    pub watch: Vec<String>,
    /// A name for the report lines.
    #[arg(long, default_value = "run")]
    pub label: String,
    #[command(subcommand)]
    pub target: TargetArgs,
}

#[derive(Subcommand, Debug)]
pub enum TargetArgs {
    /// HTTP/1.1 requests with a JSON body.
    Rest {
        #[arg(long, default_value = "GET")]
        method: String,
        #[arg(long)]
        url: String,
        #[arg(long)]
        body: Option<String>,
    },
    /// Unary gRPC calls; the JSON body is encoded with the descriptor set.
    Grpc {
        #[arg(long)]
        endpoint: String,
        /// `package.Service/Method`.
        #[arg(long)]
        method: String,
        #[arg(long, default_value = "{}")]
        body: String,
        /// HTTP/2 connections used in turn.
        #[arg(long, default_value_t = 4)]
        connections: usize,
    },
    /// Many `WatchEvent` streams on one event of the BFF: update latency and
    /// the BFF's memory per watcher (`--watch bff=PID`). Ignores `--rate`.
    Watchers {
        #[arg(long)]
        endpoint: String,
        #[arg(long)]
        event: String,
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        /// HTTP/2 connections the streams share (the BFF admits 256
        /// requests at once per connection).
        #[arg(long, default_value_t = 100)]
        connections: usize,
        /// Seats taken one after another while everyone watches.
        #[arg(long, default_value_t = 5)]
        updates: usize,
    },
    /// Publishes EVENTS events and JOINS joins (by the people of
    /// `--tokens`) onto the streams under `--prefix`, and writes search
    /// bodies (fts.txt, typo.txt, geo.txt) into `--out`. Ignores `--rate`.
    SeedFeed {
        #[arg(long, default_value = "nats://127.0.0.1:4222")]
        nats: String,
        #[arg(long)]
        prefix: String,
        #[arg(long, default_value_t = 100_000)]
        events: usize,
        #[arg(long, default_value_t = 200_000)]
        joins: usize,
        #[arg(long)]
        out: PathBuf,
    },
}

fn pairs(raw: &[String], what: &str) -> anyhow::Result<Vec<(String, String)>> {
    raw.iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| anyhow::anyhow!("{what} {p:?}: expected name=value"))
        })
        .collect()
}

/// Runs what `args` asks and prints the figures.
pub async fn main(args: Args) -> anyhow::Result<()> {
    let tokens = read_tokens(args.tokens.as_ref())?;
    let mut vars: HashMap<String, Var> = pairs(&args.vars, "--var")?
        .into_iter()
        .map(|(k, v)| (k, Var::Fixed(v)))
        .collect();
    for (name, file) in pairs(&args.round_vars, "--round-var")? {
        let lines = read_lines(&PathBuf::from(&file), "--round-var")?;
        let per = tokens.len().max(1) as u64;
        vars.insert(
            name,
            Var::Round {
                lines: Arc::new(lines),
                per,
            },
        );
    }
    let watch = pairs(&args.watch, "--watch")?
        .into_iter()
        .map(|(n, p)| Ok((n, p.parse::<u32>()?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let TargetArgs::SeedFeed {
        nats,
        prefix,
        events,
        joins,
        out,
    } = &args.target
    {
        let nats = cityevents_messaging::NatsConfig {
            url: nats.clone(),
            stream_prefix: prefix.clone(),
        };
        return seed::run(seed::Seed {
            nats,
            events: *events,
            joins: *joins,
            tokens: &tokens,
            out,
        })
        .await;
    }
    let headers = target::headers(&args.headers, &vars)?;
    let target = Arc::new(match &args.target {
        TargetArgs::Rest { method, url, body } => Target::rest(
            method,
            Template::parse(url, &vars)?,
            body.as_deref()
                .map(|b| Template::parse(b, &vars))
                .transpose()?,
            headers,
        )?,
        TargetArgs::Grpc {
            endpoint,
            method,
            body,
            connections,
        } => Target::grpc(
            endpoint,
            *connections,
            method,
            Template::parse(body, &vars)?,
            headers,
        )?,
        TargetArgs::SeedFeed { .. } => anyhow::bail!("seed-feed sends no requests"),
        TargetArgs::Watchers {
            endpoint,
            event,
            count,
            connections,
            updates,
        } => {
            let pid = watch.iter().find(|(n, _)| n == "bff").map(|(_, p)| *p);
            return watchers::run(watchers::Watchers {
                endpoint: endpoint.clone(),
                event_id: event.clone(),
                count: *count,
                connections: *connections,
                updates: *updates,
                tokens,
                pid,
            })
            .await;
        }
    });
    let tokens = Arc::new(tokens);
    let next = AtomicU64::new(0);
    let duration = Duration::from_secs_f64(args.duration.max(0.1));
    let load = |rate: f64| Load {
        rate,
        duration,
        max_in_flight: args.max_in_flight,
    };
    let slo = Duration::from_secs_f64(args.slo_ms / 1000.0);
    println!("{}", header());
    let mut held: Option<Figures> = None;
    for &rate in &args.rate {
        let f = run::run(target.clone(), tokens.clone(), &load(rate), &next, &watch).await;
        println!("{}", line(&args.label, &f));
        let ok = f.p(0.99) <= slo && f.goodput() >= 0.9 * rate;
        if args.rate.len() > 1 && !ok {
            break;
        }
        held = Some(f);
        if args.rate.len() > 1 {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    if args.rate.len() > 1 {
        let Some(peak) = held else {
            println!(
                "step-up: not even {}/s held p99 ≤ {} ms",
                args.rate[0], args.slo_ms
            );
            return Ok(());
        };
        let over = run::run(target, tokens, &load(2.0 * peak.offered), &next, &watch).await;
        println!("{}", line(&format!("{} 2x", args.label), &over));
        let refused = over.share(&["429", "503", "ResourceExhausted", "Unavailable"]);
        println!(
            "step-up: highest rate held at p99 ≤ {slo} ms: {peak_rate:.0}/s (p99 {p99:.1} ms); \
             at 2x ({over_rate:.0}/s offered): goodput {good:.0}/s = {share:.0}% of the peak's, \
             {refused:.0}% refused (429/503), p99 of the successes {okp99:.1} ms",
            slo = args.slo_ms,
            peak_rate = peak.offered,
            p99 = ms(peak.p(0.99)),
            over_rate = over.offered,
            good = over.goodput(),
            share = 100.0 * over.goodput() / peak.goodput().max(1.0),
            refused = 100.0 * refused,
            okp99 = ms(over.ok_p(0.99)),
        );
    }
    Ok(())
}

/// The lines of `--tokens`, if given.
fn read_tokens(file: Option<&PathBuf>) -> anyhow::Result<Vec<String>> {
    file.map_or(Ok(Vec::new()), |f| read_lines(f, "--tokens"))
}

/// The non-empty lines of `file`.
fn read_lines(file: &PathBuf, what: &str) -> anyhow::Result<Vec<String>> {
    Ok(std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("{what} {}: {e}", file.display()))?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn header() -> &'static str {
    "label | offered/s | answered/s | ok/s | p50 ms | p95 ms | p99 ms | max ms | answers by status | CPU µs per answer | machine"
}

fn line(label: &str, f: &Figures) -> String {
    let statuses: Vec<String> = f
        .by_status
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    let per = |cpu: f64| 1e6 * cpu / f.answered().max(1) as f64;
    let mut cpu = vec![format!("generator {:.0}", per(f.generator_cpu))];
    cpu.extend(
        f.watched_cpu
            .iter()
            .map(|(n, c)| format!("{n} {:.0}", per(*c))),
    );
    cpu.push(format!("machine {:.0}", per(f.machine.work.as_secs_f64())));
    format!(
        "{label} | {:.0} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} (generator {:.0}% of a core) | {:.0}% busy, {:.1}% stolen",
        f.offered,
        f.achieved(),
        f.goodput(),
        ms(f.p(0.5)),
        ms(f.p(0.95)),
        ms(f.p(0.99)),
        ms(f.p(1.0)),
        statuses.join(", "),
        cpu.join(", "),
        100.0 * f.generator_cpu / f.seconds,
        100.0 * f.machine.busy(),
        100.0 * f.machine.stolen(),
    )
}
