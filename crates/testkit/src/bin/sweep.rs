//! `make test` runs this first: drops the test databases and streams earlier
//! runs left behind, keeping the last hour's (a run beside this one).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let swept = cityevents_testkit::sweep_leftovers(std::time::Duration::from_secs(3600)).await;
    println!(
        "==> dropped {} test databases and {} test streams left by earlier runs",
        swept.databases, swept.streams
    );
}
