//! Issues access tokens (Ed25519 JWTs) and opaque tokens (refresh,
//! verification, reset), and hashes opaque tokens for storage.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use cityevents_authn::{Claims, Role, SigningKey, VerifierConfig};
use cityevents_proto::cityevents::auth::v1::Jwk;
use cityevents_runtime::{Error, Result};

/// What an access token is minted from.
#[derive(Debug, Clone)]
pub struct Subject {
    /// User id.
    pub user_id: Uuid,
    /// Role.
    pub role: Role,
    /// Current token version.
    pub token_version: i64,
    /// Email verified.
    pub email_verified: bool,
    /// Session id.
    pub session_id: Uuid,
}

/// Signs access tokens with the first configured key.
#[derive(Clone)]
pub struct Issuer {
    keys: Arc<[SigningKey]>,
    encoding: jsonwebtoken::EncodingKey,
    issuer: String,
    audience: String,
    access_ttl: Duration,
}

impl Issuer {
    /// Uses `keys` (the first signs) and `verifier`'s issuer and audience.
    pub fn new(
        keys: Vec<SigningKey>,
        verifier: &VerifierConfig,
        access_ttl_secs: u64,
    ) -> anyhow::Result<Self> {
        let first = keys
            .first()
            .ok_or_else(|| anyhow::anyhow!("no signing key"))?;
        Ok(Self {
            encoding: first.encoding_key()?,
            keys: keys.into(),
            issuer: verifier.issuer.clone(),
            audience: verifier.audience.clone(),
            access_ttl: Duration::seconds(access_ttl_secs as i64),
        })
    }

    /// The public keys, for GetJwks.
    pub fn jwks(&self) -> Vec<Jwk> {
        self.keys.iter().map(SigningKey::jwk).collect()
    }

    /// The access-token lifetime.
    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }

    /// A signed access token and its expiry.
    pub fn access_token(&self, s: &Subject) -> Result<(String, DateTime<Utc>)> {
        let now = Utc::now();
        let exp = now + self.access_ttl;
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: s.user_id,
            role: s.role,
            jti: Uuid::now_v7(),
            tv: s.token_version,
            sid: s.session_id,
            ev: s.email_verified,
            iat: now.timestamp(),
            exp: exp.timestamp(),
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(self.keys[0].kid().to_owned());
        let token =
            jsonwebtoken::encode(&header, &claims, &self.encoding).map_err(Error::internal)?;
        Ok((token, exp))
    }
}

/// A new opaque token (256 random bits, base64url) and its storage hash.
pub fn opaque() -> Result<(String, Vec<u8>)> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::internal(anyhow::anyhow!("no randomness: {e}")))?;
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash(&token);
    Ok((token, hash))
}

/// The SHA-256 an opaque token is stored and looked up by.
pub fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}
