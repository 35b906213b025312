//! The verifier against tokens signed as the auth service signs them, with
//! revocation state in a real Redis (`TEST_REDIS_URL`).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use cityevents_authn::{Claims, Revocations, Role, SigningKey, Verifier, VerifierConfig};
use cityevents_runtime::ErrorCode;
use cityevents_runtime::metrics::Metrics;

struct Fixture {
    key: SigningKey,
    verifier: Verifier,
    revocations: Revocations,
    metrics: Metrics,
}

async fn fixture(leeway_secs: u64) -> Fixture {
    let f = unsynced_fixture(leeway_secs).await;
    // As auth does once it has copied every revocation into Redis.
    f.revocations.mark_synced().await.unwrap();
    f
}

/// A verifier over a Redis that holds no revocation state at all (as after
/// a data loss): not even the `synced` marker.
async fn unsynced_fixture(leeway_secs: u64) -> Fixture {
    let url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let conn = redis::aio::ConnectionManager::new(redis::Client::open(url).unwrap())
        .await
        .unwrap();
    let prefix = format!("test:{}:auth:", Uuid::new_v4().simple());
    let metrics = Metrics::new().unwrap();
    let revocations = Revocations::new(conn, prefix.clone(), metrics.redis_calls("revocation"));
    let key = SigningKey::generate().unwrap();
    let cfg = VerifierConfig {
        leeway_secs,
        revocation_prefix: prefix,
        ..VerifierConfig::default()
    };
    let verifier = Verifier::new(&cfg, Arc::new(vec![key.jwk()]), revocations.clone());
    Fixture {
        key,
        verifier,
        revocations,
        metrics,
    }
}

fn claims(exp_in_secs: i64) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        iss: "cityevents-auth".into(),
        aud: "cityevents".into(),
        sub: Uuid::now_v7(),
        role: Role::User,
        jti: Uuid::now_v7(),
        tv: 0,
        sid: Uuid::now_v7(),
        ev: true,
        iat: now,
        exp: now + exp_in_secs,
    }
}

fn sign(key: &SigningKey, claims: &Claims) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(key.kid().to_owned());
    jsonwebtoken::encode(&header, claims, &key.encoding_key().unwrap()).unwrap()
}

/// The message of a refusal, which must be `Unauthenticated`.
async fn refusal(verifier: &Verifier, token: &str) -> String {
    let err = verifier.verify(token).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Unauthenticated, "{token:?}");
    err.message().to_owned()
}

#[tokio::test]
async fn a_token_signed_by_the_issuer_verifies_into_its_principal_every_time() {
    let f = fixture(5).await;
    let c = claims(300);
    let token = sign(&f.key, &c);
    for _ in 0..2 {
        let p = f.verifier.verify(&token).await.unwrap();
        assert_eq!(
            (p.user_id, p.session_id, p.role),
            (c.sub, c.sid, Role::User)
        );
        assert!(p.email_verified);
    }
    let exported = f.metrics.render();
    assert!(exported.contains(r#"redis_calls_total{result="ok",use="revocation"} 2"#));
    assert!(exported.contains(r#"redis_calls_total{result="error",use="revocation"} 0"#));
}

#[tokio::test]
async fn a_token_whose_payload_was_changed_after_signing_is_refused() {
    let f = fixture(5).await;
    let token = sign(&f.key, &claims(300));
    // Verified once, so its claims are remembered; a forged payload under the
    // same signature must not ride on that.
    f.verifier.verify(&token).await.unwrap();
    let mut admin = claims(300);
    admin.role = Role::Admin;
    let admin_token = sign(&f.key, &admin);
    let forged_payload = admin_token.split('.').nth(1).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    assert!(refusal(&f.verifier, &forged).await.contains("invalid"));
}

#[tokio::test]
async fn tokens_for_another_issuer_or_audience_or_from_another_key_are_refused() {
    let f = fixture(5).await;
    let mut other_issuer = claims(300);
    other_issuer.iss = "someone-else".into();
    let mut other_audience = claims(300);
    other_audience.aud = "another-app".into();
    for token in [sign(&f.key, &other_issuer), sign(&f.key, &other_audience)] {
        assert!(refusal(&f.verifier, &token).await.contains("invalid"));
    }
    let stranger = SigningKey::generate().unwrap();
    let token = sign(&stranger, &claims(300));
    assert!(refusal(&f.verifier, &token).await.contains("unknown key"));
}

#[tokio::test]
async fn junk_is_refused_with_a_plain_message_and_no_panic() {
    let f = fixture(5).await;
    // A header of `{"alg":"EdDSA"}` with no key id, then no payload.
    for junk in ["", ".", "..", "a.b.c", "eyJhbGciOiJFZERTQSJ9..", "🎟️.🎟️.🎟️"] {
        let msg = refusal(&f.verifier, junk).await;
        assert!(msg.starts_with("access token "), "{junk:?}: {msg}");
    }
}

#[tokio::test]
async fn a_remembered_token_expires_on_time() {
    let f = fixture(0).await;
    let token = sign(&f.key, &claims(1));
    f.verifier.verify(&token).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert!(refusal(&f.verifier, &token).await.contains("expired"));
}

#[tokio::test]
async fn a_remembered_token_is_refused_at_once_when_its_session_or_user_is_revoked() {
    let f = fixture(5).await;
    let (a, b) = (claims(300), claims(300));
    let (ta, tb) = (sign(&f.key, &a), sign(&f.key, &b));
    f.verifier.verify(&ta).await.unwrap();
    f.verifier.verify(&tb).await.unwrap();
    f.revocations.revoke_session(a.sid, 300).await.unwrap();
    f.revocations.set_token_version(b.sub, 1).await.unwrap();
    assert!(refusal(&f.verifier, &ta).await.contains("revoked"));
    assert!(refusal(&f.verifier, &tb).await.contains("revoked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_checks_batched_together_each_get_their_own_answer() {
    let f = Arc::new(fixture(5).await);
    let users: Vec<Claims> = (0..300).map(|_| claims(300)).collect();
    // Every third user logged out, every fifth was banned (version bumped).
    for (i, c) in users.iter().enumerate() {
        if i % 3 == 0 {
            f.revocations.revoke_session(c.sid, 300).await.unwrap();
        }
        if i % 5 == 0 {
            f.revocations.set_token_version(c.sub, 1).await.unwrap();
        }
    }
    let checks = users.iter().enumerate().map(|(i, c)| {
        let (f, token) = (f.clone(), sign(&f.key, c));
        tokio::spawn(async move { (i, f.verifier.verify(&token).await.is_ok()) })
    });
    for outcome in futures::future::join_all(checks).await {
        let (i, accepted) = outcome.unwrap();
        assert_eq!(accepted, i % 3 != 0 && i % 5 != 0, "user {i}");
    }
}

#[tokio::test]
async fn a_signed_token_expiring_at_the_end_of_time_does_not_overflow_the_check() {
    let f = fixture(5).await;
    let mut c = claims(300);
    c.exp = i64::MAX;
    // exp + leeway overflowed and panicked the handler before.
    let p = f.verifier.verify(&sign(&f.key, &c)).await.unwrap();
    assert_eq!(p.user_id, c.sub);
}

#[tokio::test]
async fn a_token_version_never_goes_backwards() {
    let f = fixture(5).await;
    let c = claims(300);
    f.revocations.set_token_version(c.sub, 3).await.unwrap();
    // A late or repeated write of an older version changes nothing.
    f.revocations.set_token_version(c.sub, 1).await.unwrap();
    let mut at_two = c.clone();
    at_two.tv = 2;
    assert!(
        refusal(&f.verifier, &sign(&f.key, &at_two))
            .await
            .contains("revoked")
    );
}

#[tokio::test]
async fn checks_fail_closed_while_the_revocation_state_is_missing() {
    let f = unsynced_fixture(5).await;
    let (key, verifier, revocations) = (&f.key, &f.verifier, &f.revocations);
    let token = sign(key, &claims(300));
    let err = verifier.verify(&token).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Unavailable);
    revocations.mark_synced().await.unwrap();
    assert!(verifier.verify(&token).await.is_ok());
}
