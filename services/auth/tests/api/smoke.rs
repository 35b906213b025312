//! The real `auth` binary, configured through the environment as in a
//! deployment, called by grpcurl (a client nobody here wrote) through server
//! reflection and the health service, then stopped with SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use cityevents_authn::SigningKey;

use crate::helpers::{fresh_database, redis_url, unique_email};

fn grpcurl() -> PathBuf {
    let state = std::env::var("CE_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".local/state/cityevents")
        });
    let candidates = [state.join("tools/bin/grpcurl"), PathBuf::from("grpcurl")];
    candidates
        .into_iter()
        .find(|c| Command::new(c).arg("-version").output().is_ok())
        .expect("grpcurl is installed (scripts/install-deps.sh)")
}

struct Binary {
    child: Child,
    addr: String,
}

impl Binary {
    /// Starts `auth serve` and reads its gRPC address from its JSON log.
    fn start(db: &str, key_file: &std::path::Path) -> Self {
        let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
        let mut child = Command::new(env!("CARGO_BIN_EXE_auth"))
            .arg("serve")
            .env("CITYEVENTS_DATABASE__URL", db)
            .env("CITYEVENTS_REDIS__URL", redis_url())
            .env("CITYEVENTS_REDIS__KEY_PREFIX", &prefix)
            .env(
                "CITYEVENTS_NATS__STREAM_PREFIX",
                format!("T{}", uuid::Uuid::new_v4().simple()),
            )
            .env(
                "CITYEVENTS_TOKENS__VERIFIER__REVOCATION_PREFIX",
                format!("{prefix}auth:"),
            )
            .env(
                "CITYEVENTS_TOKENS__SIGNING_KEY_FILES",
                format!("[\"{}\"]", key_file.display()),
            )
            .env(
                "CITYEVENTS_TOKENS__LINK_SEAL__KEYS",
                format!(
                    "[\"{}\"]",
                    cityevents_authn::sealed::generate_key().unwrap()
                ),
            )
            .env("CITYEVENTS_SERVER__GRPC_ADDR", "127.0.0.1:0")
            .env("CITYEVENTS_SERVER__ADMIN_ADDR", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("auth binary starts");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut addr = None;
        for line in stdout.lines() {
            let line = line.unwrap();
            let log: serde_json::Value = serde_json::from_str(&line).expect("logs are JSON");
            if log["message"] == "service listening" {
                addr = Some(log["grpc"].as_str().unwrap().to_owned());
                break;
            }
        }
        Self {
            child,
            addr: addr.expect("the binary logs its address"),
        }
    }

    /// `grpcurl -plaintext <flags> <addr> <rest>`.
    fn grpcurl(&self, flags: &[&str], rest: &[&str]) -> String {
        let out = Command::new(grpcurl())
            .arg("-plaintext")
            .args(flags)
            .arg(&self.addr)
            .args(rest)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "grpcurl {rest:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        // The shell's builtin `kill`: procps may not be installed.
        let pid = self.child.id();
        assert!(
            Command::new("sh")
                .args(["-c", &format!("kill -TERM {pid}")])
                .status()
                .unwrap()
                .success()
        );
        self.child.wait().unwrap()
    }
}

impl Drop for Binary {
    /// A failed assertion must not leave the server running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn the_binary_answers_grpcurl_through_reflection_and_health_and_stops_on_sigterm() {
    let db = fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("signing.pem");
    std::fs::write(&key_file, SigningKey::generate().unwrap().to_pem().unwrap()).unwrap();
    let bin = tokio::task::spawn_blocking(move || Binary::start(&db, &key_file))
        .await
        .unwrap();

    let services = bin.grpcurl(&[], &["list"]);
    assert!(
        services.contains("cityevents.auth.v1.AuthService"),
        "{services}"
    );
    assert!(services.contains("grpc.health.v1.Health"));
    assert!(
        !services.contains("cityevents.join.v1"),
        "only served services are listed"
    );

    let health = bin.grpcurl(
        &["-d", r#"{"service":"cityevents.auth.v1.AuthService"}"#],
        &["grpc.health.v1.Health/Check"],
    );
    assert!(health.contains("SERVING"), "{health}");

    let describe = bin.grpcurl(
        &[],
        &["describe", "cityevents.auth.v1.AuthService.Register"],
    );
    assert!(describe.contains("RegisterRequest"), "{describe}");

    let email = unique_email();
    let body = format!(r#"{{"email":"{email}","password":"correct horse battery"}}"#);
    let registered = bin.grpcurl(&["-d", &body], &["cityevents.auth.v1.AuthService/Register"]);
    let json: serde_json::Value = serde_json::from_str(&registered).unwrap();
    assert_eq!(json["user"]["email"], email.as_str());
    assert!(
        json["session"]["accessToken"]
            .as_str()
            .is_some_and(|t| t.split('.').count() == 3)
    );

    let jwks = bin.grpcurl(&[], &["cityevents.auth.v1.AuthService/GetJwks"]);
    assert!(jwks.contains("Ed25519"), "{jwks}");

    let status = tokio::task::spawn_blocking(move || bin.terminate())
        .await
        .unwrap();
    assert!(status.success(), "clean exit on SIGTERM: {status}");
}
