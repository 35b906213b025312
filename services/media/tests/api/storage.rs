use std::process::{Command, Stdio};
use std::time::Duration;

use image::ImageFormat;

use cityevents_proto::cityevents::media::v1::{
    self as pb, media_service_client::MediaServiceClient,
};
use cityevents_runtime::config::Secret;
use cityevents_testkit::eventually;
use cityevents_testkit::s3::S3Server;
use tonic::transport::Channel;

use crate::helpers::{media_with, noise_png, picture, read};

#[tokio::test]
async fn images_live_in_a_real_s3_compatible_store_when_one_is_configured() {
    let s3 = S3Server::start("cityevents-media");
    let m = media_with(|cfg| {
        cfg.media.s3 = media::config::S3Config {
            bucket: s3.bucket.clone(),
            endpoint: s3.endpoint.clone(),
            region: "us-east-1".into(),
            access_key_id: Secret::new("test"),
            secret_access_key: Secret::new("test"),
            allow_http: true,
        };
    })
    .await;
    let (_, token) = m.world.user();
    let image = m
        .upload(&token, "image/jpeg", &picture(ImageFormat::Jpeg))
        .await
        .unwrap();
    let ready = m.settled(&image.id).await;
    assert_eq!(
        ready.status,
        pb::ImageStatus::Ready as i32,
        "{}",
        ready.error
    );
    // The upload's own bytes are let go just after the image is marked
    // ready (in that order, so a crash between keeps them for a retry).
    eventually("the upload's bytes are let go", async || {
        !s3.keys()
            .iter()
            .any(|k| k.starts_with("incoming/") || k.starts_with("uploads/"))
    })
    .await;
    let keys = s3.keys();
    assert_eq!(
        keys.iter().filter(|k| k.starts_with("images/")).count(),
        8,
        "{keys:?}"
    );
    let links = m.links(&[&image.id]).await;
    let (head, bytes) = read(&m.client, &links[0].thumbnail_url, None, "")
        .await
        .unwrap();
    assert_eq!(bytes.len() as i64, head.total_size);
    assert_eq!(image::load_from_memory(&bytes).unwrap().width(), 320);
    // Larger than one part (5 MiB): a multipart upload, which S3 accepts
    // only with parts of 5 MiB or more.
    let big = noise_png(2_000, 2_000, 7 * 1024 * 1024, 1);
    let image = m.upload(&token, "image/png", &big).await.unwrap();
    assert_eq!(image.size_bytes, big.len() as i64);
    m.settled(&image.id).await;
}

/// The peak resident memory of a process, in MiB.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        / 1024
}

#[tokio::test]
async fn fifty_uploads_at_once_keep_the_service_within_bounded_memory() {
    // The service runs as its own process, so its memory is its own.
    let m = media_with(|_| {}).await;
    let mut cfg = m.cfg.clone();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    cfg.server.grpc_addr = format!("127.0.0.1:{port}").parse().unwrap();
    cfg.server.admin_addr = "127.0.0.1:0".parse().unwrap();
    cfg.media.storage_path = m.dir.path().join("child");
    let file = m.dir.path().join("media.toml");
    std::fs::write(&file, toml::to_string(&cfg).unwrap()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_media"))
        .arg("--config")
        .arg(&file)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut client = None;
    for _ in 0..200 {
        if let Ok(c) = Channel::from_shared(format!("http://127.0.0.1:{port}"))
            .unwrap()
            .connect()
            .await
        {
            client = Some(MediaServiceClient::new(c));
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let at_rest = peak_rss_mib(pid);
    let mut remote = m;
    remote.client = client.expect("the media process listens");
    let (_, token) = remote.world.user();
    const SIZE: usize = 4 * 1024 * 1024;
    let uploads = (0..50u64).map(|i| {
        let bytes = noise_png(1_000, 1_000, SIZE, i);
        let (remote, token) = (&remote, &token);
        async move { remote.upload(token, "image/png", &bytes).await }
    });
    let started = std::time::Instant::now();
    let done = futures::future::join_all(uploads).await;
    println!("50 uploads took {:?}", started.elapsed());
    let peak = peak_rss_mib(pid);
    let _ = child.kill();
    let _ = child.wait();
    for r in &done {
        assert!(r.is_ok(), "{r:?}");
    }
    let sent = 50 * SIZE as u64 / (1024 * 1024);
    println!("media RSS: {at_rest} MiB at rest, {peak} MiB at peak after {sent} MiB in 50 uploads");
    assert!(
        peak < at_rest + 100,
        "{peak} MiB at peak ({at_rest} at rest) for {sent} MiB uploaded: memory must not grow with uploads in flight"
    );
}
