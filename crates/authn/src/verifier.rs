//! Verifies access tokens: signature (JWKS, cached), claims, revocation.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::sync::RwLock as StdRwLock;
use tokio::sync::Mutex;

use cityevents_proto::cityevents::auth::v1::{
    GetJwksRequest, Jwk, auth_service_client::AuthServiceClient,
};
use cityevents_runtime::grpc::client::GrpcChannel;
use cityevents_runtime::metrics::Metrics;
use cityevents_runtime::{Error, ErrorCode, Result};

use crate::claims::{Claims, Principal};
use crate::revocation::Revocations;
use crate::verified::VerifiedCache;

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
    /// Verified tokens remembered (their signature is checked once), about
    /// 200 bytes each; 0 turns the cache off. Size it to the tokens a
    /// replica sees within their lifetime: fewer make most checks verify
    /// the signature again.
    pub verified_cache_size: usize,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        Self {
            issuer: "cityevents-auth".into(),
            audience: "cityevents".into(),
            leeway_secs: 5,
            min_refresh_interval_ms: 10_000,
            revocation_prefix: "ce:auth:".into(),
            verified_cache_size: 100_000,
        }
    }
}

/// Verifies access tokens; cheap to share behind an `Arc`.
///
/// A token's signature and claims are checked once: the verified claims are
/// kept (bounded, until the token expires), so a client's next request with
/// the same token costs a map lookup. Revocation is checked on every request.
pub struct Verifier {
    issuer: String,
    audience: String,
    leeway: i64,
    source: Arc<dyn KeySource>,
    keys: StdRwLock<HashMap<String, VerifyingKey>>,
    last_fetch: Mutex<Option<Instant>>,
    min_refresh: Duration,
    verified: VerifiedCache,
    revocations: Revocations,
}

/// The JOSE header fields a verifier reads.
#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

fn unauthenticated(msg: &str) -> Error {
    Error::new(ErrorCode::Unauthenticated, msg)
}

fn malformed() -> Error {
    unauthenticated("access token is malformed")
}

fn invalid() -> Error {
    unauthenticated("access token is invalid")
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Verifier {
    /// A verifier fetching keys from `source` and checking `revocations`.
    pub fn new(cfg: &VerifierConfig, source: Arc<dyn KeySource>, revocations: Revocations) -> Self {
        Self {
            issuer: cfg.issuer.clone(),
            audience: cfg.audience.clone(),
            leeway: cfg.leeway_secs as i64,
            source,
            keys: StdRwLock::default(),
            last_fetch: Mutex::default(),
            min_refresh: Duration::from_millis(cfg.min_refresh_interval_ms),
            verified: VerifiedCache::new(cfg.verified_cache_size),
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

    /// Verifies one token: signature and claims (once per token), then
    /// expiry and revocation (every time).
    pub async fn verify(&self, token: &str) -> Result<Principal> {
        let (claims, fresh) = match self.verified.get(token) {
            Some(c) => (c, false),
            None => (self.verify_signed(token).await?, true),
        };
        if claims.exp.saturating_add(self.leeway) < now() {
            return Err(unauthenticated("access token expired; refresh the session"));
        }
        if fresh {
            self.verified.put(token, &claims);
        }
        if self.revocations.is_revoked(&claims).await? {
            return Err(unauthenticated(
                "access token has been revoked; sign in again",
            ));
        }
        Ok(Principal::from(&claims))
    }

    /// Checks a token's signature, issuer and audience; returns its claims.
    async fn verify_signed(&self, token: &str) -> Result<Claims> {
        let (signed, signature) = token.rsplit_once('.').ok_or_else(malformed)?;
        let (header, payload) = signed.split_once('.').ok_or_else(malformed)?;
        let header: Header = URL_SAFE_NO_PAD
            .decode(header)
            .ok()
            .and_then(|h| serde_json::from_slice(&h).ok())
            .ok_or_else(malformed)?;
        if header.alg != "EdDSA" {
            return Err(unauthenticated("access token is not signed with EdDSA"));
        }
        let kid = header
            .kid
            .ok_or_else(|| unauthenticated("access token has no key id"))?;
        // Everything that needs no key is checked first, so a malformed or
        // foreign token never costs a key-set fetch.
        let signature: [u8; 64] = URL_SAFE_NO_PAD
            .decode(signature)
            .ok()
            .and_then(|s| s.try_into().ok())
            .ok_or_else(invalid)?;
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|p| serde_json::from_slice(&p).ok())
            .ok_or_else(invalid)?;
        if claims.iss != self.issuer || claims.aud != self.audience {
            return Err(invalid());
        }
        let key = self.key(&kid).await?;
        key.verify(signed.as_bytes(), &Signature::from_bytes(&signature))
            .map_err(|_| invalid())?;
        Ok(claims)
    }

    async fn key(&self, kid: &str) -> Result<VerifyingKey> {
        if let Some(k) = self.cached_key(kid) {
            return Ok(k);
        }
        self.refresh().await?;
        self.cached_key(kid)
            .ok_or_else(|| unauthenticated("access token signed by an unknown key"))
    }

    fn cached_key(&self, kid: &str) -> Option<VerifyingKey> {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        keys.get(kid).copied()
    }

    /// Refetches the key set, at most once per `min_refresh_interval_ms`
    /// whether the last try worked or not: while auth is down, tokens with
    /// unknown key ids do not each cost a fetch.
    async fn refresh(&self) -> Result<()> {
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|t| t.elapsed() < self.min_refresh) {
            return Ok(());
        }
        *last = Some(Instant::now());
        let jwks = self.source.fetch().await.map_err(Error::unavailable)?;
        let mut keys = HashMap::new();
        for jwk in jwks.iter().filter(|k| k.kty == "OKP" && k.crv == "Ed25519") {
            match public_key(&jwk.x) {
                Some(k) => {
                    keys.insert(jwk.kid.clone(), k);
                }
                None => tracing::warn!(kid = %jwk.kid, "skipping unusable jwk"),
            }
        }
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = keys;
        Ok(())
    }
}

/// The Ed25519 public key of a JWK's `x` (base64url of its 32 bytes).
fn public_key(x: &str) -> Option<VerifyingKey> {
    let bytes: [u8; 32] = URL_SAFE_NO_PAD.decode(x).ok()?.try_into().ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}

/// A verifier for a service other than auth: keys from auth's `GetJwks` over
/// `auth` (a runtime client channel), revocation from `redis`, its calls
/// counted in `metrics`.
pub fn remote(
    cfg: &VerifierConfig,
    auth: GrpcChannel,
    redis: redis::aio::ConnectionManager,
    metrics: &Metrics,
) -> Verifier {
    let source = Arc::new(AuthServiceClient::new(auth));
    Verifier::new(
        cfg,
        source,
        Revocations::new(
            redis,
            cfg.revocation_prefix.clone(),
            metrics.redis_calls("revocation"),
        ),
    )
}
