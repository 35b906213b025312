//! `bff replicas [BACKEND...]`: prints the replicas the BFF would balance
//! each backend's calls over, found as its config says (DNS or
//! EndpointSlices), a line per change until interrupted — what an operator
//! runs to see discovery at work, and what the chart's test watches while
//! it scales a Deployment.

use cityevents_runtime::grpc::client::discovery;
use futures::StreamExt;
use futures::stream::{self, BoxStream};

use crate::Config;

/// Prints `<backend> <count> <addr,addr,…>` whenever a named backend's set
/// changes (all backends when `names` is empty), until Ctrl-C or SIGTERM.
pub async fn watch(cfg: &Config, names: &[String]) -> anyhow::Result<()> {
    let known = cfg.backends();
    if let Some(unknown) = names.iter().find(|n| !known.iter().any(|(k, _)| k == n)) {
        let all: Vec<&str> = known.iter().map(|(k, _)| *k).collect();
        anyhow::bail!("no backend {unknown:?}; the BFF calls {}", all.join(", "));
    }
    let mut sets: Vec<BoxStream<'static, (&'static str, Vec<std::net::SocketAddr>)>> = Vec::new();
    for (name, client) in known {
        if !names.is_empty() && !names.iter().any(|n| n == name) {
            continue;
        }
        let found = discovery(client).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        sets.push(
            stream::unfold(found, move |mut d| async move {
                let set = d.next().await?;
                Some(((name, set), d))
            })
            .boxed(),
        );
    }
    let mut all = stream::select_all(sets);
    let stop = cityevents_runtime::shutdown::on_signal();
    loop {
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            next = all.next() => {
                let Some((name, set)) = next else { return Ok(()) };
                let addrs: Vec<String> = set.iter().map(ToString::to_string).collect();
                println!("{name} {} {}", set.len(), addrs.join(","));
            }
        }
    }
}
