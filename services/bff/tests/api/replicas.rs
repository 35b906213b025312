//! Several join replicas behind the BFF's one join backend: each takes a
//! share of the joins, and stopping one (as a rolling deploy does) fails no
//! join that it had not started.

use futures::future::join_all;

use cityevents_proto::cityevents::api::v1 as api;
use cityevents_proto::cityevents::join::v1::RegistrationStatus;
use cityevents_testkit::{authed, http_get};

use crate::helpers::*;

/// How many joins a replica answered, from its own `/metrics`.
async fn joins_served(replica: &JoinReplica) -> u64 {
    let text = http_get(&format!("http://{}/metrics", replica.admin)).await;
    text.lines()
        .filter(|l| {
            l.starts_with("grpc_server_handled_total") && l.contains("grpc_method=\"Join\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

async fn join_as_new_people(
    mesh: &Mesh,
    event_id: &str,
    n: usize,
) -> Vec<Result<RegistrationStatus, tonic::Status>> {
    let calls = (0..n).map(|_| {
        let (_, token) = mesh.world.user();
        let mut reg = mesh.registrations();
        let req = authed(
            api::JoinEventRequest {
                event_id: event_id.to_owned(),
                ..Default::default()
            },
            &token,
        );
        async move {
            reg.join_event(req)
                .await
                .map(|r| r.into_inner().registration.unwrap().status())
        }
    });
    join_all(calls).await
}

#[tokio::test]
async fn two_join_replicas_both_take_joins_and_stopping_one_fails_none() {
    let mut mesh = mesh_of(2, |_| {}).await;
    let organizer = mesh.verified().await;
    let event = mesh.published(&organizer, 1_000, 0).await;

    for r in join_as_new_people(&mesh, &event.id, 100).await {
        assert_eq!(r.unwrap(), RegistrationStatus::Confirmed);
    }
    let (a, b) = (
        joins_served(&mesh.joins[0]).await,
        joins_served(&mesh.joins[1]).await,
    );
    assert_eq!(a + b, 100);
    assert!(a >= 20 && b >= 20, "replica a answered {a} joins, b {b}");

    // The second replica is stopped while 300 joins are on their way.
    let stopping = mesh.joins.pop().unwrap();
    let storm = join_as_new_people(&mesh, &event.id, 300);
    let stop = async {
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        stopping.stop.cancel();
    };
    let (answers, ()) = tokio::join!(storm, stop);
    let failed: Vec<_> = answers.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} joins failed: {:?}",
        failed.len(),
        failed.first()
    );
    stopping.stopped.await.unwrap().unwrap();

    // Every join answered OK holds its seat, once.
    let page = mesh
        .events()
        .get_event(api::GetEventRequest {
            event_id: event.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.counts.unwrap().confirmed, 400);
}
