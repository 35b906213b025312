//! Ed25519 signing keys and their public JWKs (RFC 8037), with key ids that
//! are RFC 7638 thumbprints, so the same key always has the same id.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use sha2::{Digest, Sha256};

use cityevents_proto::cityevents::auth::v1::Jwk;

/// A private signing key with its key id.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    key: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Parses a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pem(pem: &str) -> anyhow::Result<Self> {
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
            .map_err(|_| anyhow::anyhow!("not an Ed25519 PKCS#8 PEM private key"))?;
        Ok(Self::from_dalek(key))
    }

    /// A new random key.
    pub fn generate() -> anyhow::Result<Self> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        Ok(Self::from_dalek(ed25519_dalek::SigningKey::from_bytes(
            &seed,
        )))
    }

    fn from_dalek(key: ed25519_dalek::SigningKey) -> Self {
        let x = URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
        let thumb = Sha256::digest(format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#));
        Self {
            kid: URL_SAFE_NO_PAD.encode(thumb),
            key,
        }
    }

    /// The PKCS#8 PEM form, for writing a key file.
    pub fn to_pem(&self) -> anyhow::Result<String> {
        let doc = self
            .key
            .to_pkcs8_pem(Default::default())
            .map_err(|e| anyhow::anyhow!("encode key: {e}"))?;
        Ok(doc.to_string())
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The key in the form jsonwebtoken signs with.
    pub fn encoding_key(&self) -> anyhow::Result<jsonwebtoken::EncodingKey> {
        let der = self
            .key
            .to_pkcs8_der()
            .map_err(|e| anyhow::anyhow!("encode key: {e}"))?;
        Ok(jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes()))
    }

    /// The public half as a JWK.
    pub fn jwk(&self) -> Jwk {
        Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            kid: self.kid.clone(),
            x: URL_SAFE_NO_PAD.encode(self.key.verifying_key().as_bytes()),
            alg: "EdDSA".into(),
            r#use: "sig".into(),
        }
    }

    /// Checks a signature made by [`SigningKey::sign`].
    pub fn verify(&self, msg: &[u8], signature: &[u8; 64]) -> bool {
        use ed25519_dalek::Verifier;
        let sig = ed25519_dalek::Signature::from_bytes(signature);
        self.key.verifying_key().verify(msg, &sig).is_ok()
    }

    /// Signs raw bytes (tickets and other offline-verifiable codes).
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer;
        self.key.sign(msg).to_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_survives_a_pem_round_trip_with_the_same_id() {
        let key = SigningKey::generate().unwrap();
        let again = SigningKey::from_pem(&key.to_pem().unwrap()).unwrap();
        assert_eq!(key.kid(), again.kid());
        assert_eq!(key.jwk(), again.jwk());
    }

    #[test]
    fn junk_is_not_a_key() {
        assert!(
            SigningKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----")
                .is_err()
        );
    }
}
