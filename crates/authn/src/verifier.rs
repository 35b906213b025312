//! Verifies access tokens: signature (JWKS, cached), claims, revocation.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, RwLock};

use cityevents_proto::cityevents::auth::v1::{
    GetJwksRequest, Jwk, auth_service_client::AuthServiceClient,
};
use cityevents_runtime::grpc::client::GrpcChannel;
use cityevents_runtime::{Error, ErrorCode, Result};

use crate::claims::{Claims, Principal};
use crate::revocation::Revocations;

/// Where the public keys come from.
pub trait KeySource: Send + Sync + 'static {
    /// The current key set.
    fn fetch(&self) -> BoxFuture<'_, anyhow::Result<Vec<Jwk>>>;
}

/// A fixed key set (the issuer verifying its own tokens, tests).
impl KeySource for Vec<Jwk> {
    fn fetch(&self) -> BoxFuture<'_, anyhow::Result<Vec<Jwk>>> {
        Box::pin(async move { Ok(self.clone()) })
    }
}

/// The auth service's `GetJwks`.
impl KeySource for AuthServiceClient<GrpcChannel> {
    fn fetch(&self) -> BoxFuture<'_, anyhow::Result<Vec<Jwk>>> {
        let mut client = self.clone();
        Box::pin(async move { Ok(client.get_jwks(GetJwksRequest {}).await?.into_inner().keys) })
    }
}

/// What a verifier accepts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerifierConfig {
    /// Expected `iss`.
    pub issuer: String,
    /// Expected `aud`.
    pub audience: String,
    /// Clock skew allowed on `exp`, in seconds.
    pub leeway_secs: u64,
    /// Least time between two JWKS fetches caused by unknown key ids.
    pub min_refresh_interval_ms: u64,
    /// Redis key prefix of the revocation keys (the same as auth's).
    pub revocation_prefix: String,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        Self {
            issuer: "cityevents-auth".into(),
            audience: "cityevents".into(),
            leeway_secs: 5,
            min_refresh_interval_ms: 10_000,
            revocation_prefix: "ce:auth:".into(),
        }
    }
}

/// Verifies access tokens; cheap to share behind an `Arc`.
pub struct Verifier {
    validation: Validation,
    source: Arc<dyn KeySource>,
    keys: RwLock<HashMap<String, DecodingKey>>,
    last_fetch: Mutex<Option<Instant>>,
    min_refresh: Duration,
    revocations: Revocations,
}

fn unauthenticated(msg: &str) -> Error {
    Error::new(ErrorCode::Unauthenticated, msg)
}

impl Verifier {
    /// A verifier fetching keys from `source` and checking `revocations`.
    pub fn new(cfg: &VerifierConfig, source: Arc<dyn KeySource>, revocations: Revocations) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&cfg.issuer]);
        validation.set_audience(&[&cfg.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = cfg.leeway_secs;
        Self {
            validation,
            source,
            keys: RwLock::default(),
            last_fetch: Mutex::default(),
            min_refresh: Duration::from_millis(cfg.min_refresh_interval_ms),
            revocations,
        }
    }

    /// Verifies the `authorization: Bearer …` metadata of a request.
    pub async fn authenticate(&self, metadata: &tonic::metadata::MetadataMap) -> Result<Principal> {
        let header = metadata.get("authorization").ok_or_else(|| {
            unauthenticated("sign in first: no `authorization: Bearer <token>` metadata")
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .ok_or_else(|| unauthenticated("authorization metadata must be `Bearer <token>`"))?;
        self.verify(token.trim()).await
    }

    /// Verifies one token.
    pub async fn verify(&self, token: &str) -> Result<Principal> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| unauthenticated("access token is malformed"))?;
        if header.alg != Algorithm::EdDSA {
            return Err(unauthenticated("access token is not signed with EdDSA"));
        }
        let kid = header
            .kid
            .ok_or_else(|| unauthenticated("access token has no key id"))?;
        let key = self.key(&kid).await?;
        let data = jsonwebtoken::decode::<Claims>(token, &key, &self.validation).map_err(|e| {
            match e.kind() {
                ErrorKind::ExpiredSignature => {
                    unauthenticated("access token expired; refresh the session")
                }
                _ => unauthenticated("access token is invalid"),
            }
        })?;
        if self.revocations.is_revoked(&data.claims).await? {
            return Err(unauthenticated(
                "access token has been revoked; sign in again",
            ));
        }
        Ok(Principal::from(&data.claims))
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey> {
        if let Some(k) = self.keys.read().await.get(kid) {
            return Ok(k.clone());
        }
        self.refresh().await?;
        self.keys
            .read()
            .await
            .get(kid)
            .cloned()
            .ok_or_else(|| unauthenticated("access token signed by an unknown key"))
    }

    /// Refetches the key set, at most once per `min_refresh_interval_ms`.
    async fn refresh(&self) -> Result<()> {
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|t| t.elapsed() < self.min_refresh) {
            return Ok(());
        }
        let jwks = self.source.fetch().await.map_err(Error::unavailable)?;
        let mut keys = HashMap::new();
        for jwk in jwks.iter().filter(|k| k.kty == "OKP" && k.crv == "Ed25519") {
            match DecodingKey::from_ed_components(&jwk.x) {
                Ok(k) => {
                    keys.insert(jwk.kid.clone(), k);
                }
                Err(e) => tracing::warn!(kid = %jwk.kid, error = %e, "skipping unusable jwk"),
            }
        }
        *self.keys.write().await = keys;
        *last = Some(Instant::now());
        Ok(())
    }
}

/// A verifier for a service other than auth: keys from auth's `GetJwks` over
/// `auth` (a runtime client channel), revocation from `redis`.
pub fn remote(
    cfg: &VerifierConfig,
    auth: GrpcChannel,
    redis: redis::aio::ConnectionManager,
) -> Verifier {
    let source = Arc::new(AuthServiceClient::new(auth));
    Verifier::new(
        cfg,
        source,
        Revocations::new(redis, cfg.revocation_prefix.clone()),
    )
}
