//! One-time link tokens (email verification, password reset) sealed for the
//! mail service, so no usable secret crosses the bus: the domain event
//! carries the token encrypted with a key only auth and mail hold
//! (XChaCha20-Poly1305, a random 24-byte nonce per seal), bound to its
//! purpose and user, so a sealed token cannot be replayed for another.
//! Anyone who can read the stream or the dead letters sees ciphertext.
//!
//! A sealed token is `<key id>.<base64url(nonce ‖ ciphertext)>`. Keys rotate:
//! the first configured key seals, every configured key opens.

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};

use cityevents_runtime::config::Secret;

/// Where the seal keys come from. Each key is `<id>:<base64url of 32 bytes>`
/// (`auth sealkey` prints a new one).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SealConfig {
    /// Files holding one key each; the first seals, all open.
    pub key_files: Vec<PathBuf>,
    /// The same, inline (tests); used after the files.
    pub keys: Vec<Secret>,
}

/// Seals and opens link tokens.
pub struct Sealer {
    keys: Vec<(String, XChaCha20Poly1305)>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("Sealer").field("key_ids", &ids).finish()
    }
}

impl SealConfig {
    /// Loads the keys; at least one is required.
    pub fn load(&self) -> anyhow::Result<Sealer> {
        let mut texts = Vec::new();
        for path in &self.key_files {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("seal key file {}: {e}", path.display()))?;
            texts.push(text.trim().to_owned());
        }
        texts.extend(self.keys.iter().map(|k| k.expose().trim().to_owned()));
        anyhow::ensure!(
            !texts.is_empty(),
            "no link seal key: set tokens.link_seal.key_files (create one with `auth sealkey`)"
        );
        let keys = texts
            .iter()
            .map(|t| parse_key(t))
            .collect::<anyhow::Result<_>>()?;
        Ok(Sealer { keys })
    }
}

fn parse_key(text: &str) -> anyhow::Result<(String, XChaCha20Poly1305)> {
    let (id, b64) = text
        .split_once(':')
        .ok_or_else(|| anyhow::anyhow!("a seal key is `<id>:<base64url 32 bytes>`"))?;
    anyhow::ensure!(
        !id.is_empty()
            && id.len() <= 32
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
        "a seal key id is 1 to 32 letters, digits or dashes"
    );
    let bytes = URL_SAFE_NO_PAD
        .decode(b64)
        .map_err(|_| anyhow::anyhow!("seal key {id}: not base64url"))?;
    let cipher = XChaCha20Poly1305::new_from_slice(&bytes)
        .map_err(|_| anyhow::anyhow!("seal key {id}: must be 32 bytes"))?;
    Ok((id.to_owned(), cipher))
}

/// A new key in the configured form, with a random id.
pub fn generate_key() -> anyhow::Result<String> {
    let mut bytes = [0u8; 36];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let id: String = bytes[32..].iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("k{id}:{}", URL_SAFE_NO_PAD.encode(&bytes[..32])))
}

/// What a sealed token is bound to: its purpose and its user.
fn aad(purpose: &str, user_id: &str) -> Vec<u8> {
    format!("cityevents-link/{purpose}/{user_id}").into_bytes()
}

impl Sealer {
    /// Seals `token` for `purpose` (e.g. "verify_email") and `user_id`.
    pub fn seal(&self, purpose: &str, user_id: &str, token: &str) -> anyhow::Result<String> {
        let (id, cipher) = self
            .keys
            .first()
            .ok_or_else(|| anyhow::anyhow!("no seal key"))?;
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let aad = aad(purpose, user_id);
        let payload = Payload {
            msg: token.as_bytes(),
            aad: &aad,
        };
        let sealed = cipher
            .encrypt(&XNonce::from(nonce), payload)
            .map_err(|_| anyhow::anyhow!("sealing failed"))?;
        let mut out = nonce.to_vec();
        out.extend(sealed);
        Ok(format!("{id}.{}", URL_SAFE_NO_PAD.encode(out)))
    }

    /// Opens a sealed token; `None` if it was not sealed by one of our keys
    /// for this purpose and user, or was altered.
    pub fn open(&self, purpose: &str, user_id: &str, sealed: &str) -> Option<String> {
        let (id, b64) = sealed.split_once('.')?;
        let (_, cipher) = self.keys.iter().find(|(k, _)| k == id)?;
        let bytes = URL_SAFE_NO_PAD.decode(b64).ok()?;
        if bytes.len() < 24 {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(24);
        let nonce: [u8; 24] = nonce.try_into().ok()?;
        let aad = aad(purpose, user_id);
        let payload = Payload {
            msg: ciphertext,
            aad: &aad,
        };
        let plain = cipher.decrypt(&XNonce::from(nonce), payload).ok()?;
        String::from_utf8(plain).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(keys: &[&str]) -> Sealer {
        SealConfig {
            keys: keys.iter().map(|k| Secret::new(*k)).collect(),
            ..SealConfig::default()
        }
        .load()
        .unwrap()
    }

    #[test]
    fn a_sealed_token_opens_only_for_its_purpose_and_user_and_hides_the_token() {
        let key = generate_key().unwrap();
        let s = sealer(&[&key]);
        let sealed = s.seal("verify_email", "u1", "the-secret-token").unwrap();
        assert!(!sealed.contains("the-secret-token"));
        assert_eq!(
            s.open("verify_email", "u1", &sealed).as_deref(),
            Some("the-secret-token")
        );
        assert_eq!(s.open("reset_password", "u1", &sealed), None);
        assert_eq!(s.open("verify_email", "u2", &sealed), None);
        let mut tampered = sealed.clone();
        tampered.push('A');
        assert_eq!(s.open("verify_email", "u1", &tampered), None);
        assert_ne!(
            sealed,
            s.seal("verify_email", "u1", "the-secret-token").unwrap(),
            "fresh nonce"
        );
    }

    #[test]
    fn after_a_rotation_the_old_key_still_opens_and_the_new_one_seals() {
        let (old, new) = (generate_key().unwrap(), generate_key().unwrap());
        let sealed_before = sealer(&[&old]).seal("reset_password", "u", "t").unwrap();
        let rotated = sealer(&[&new, &old]);
        assert_eq!(
            rotated
                .open("reset_password", "u", &sealed_before)
                .as_deref(),
            Some("t")
        );
        let sealed_after = rotated.seal("reset_password", "u", "t").unwrap();
        assert!(sealed_after.starts_with(new.split(':').next().unwrap()));
        assert_eq!(
            sealer(&[&old]).open("reset_password", "u", &sealed_after),
            None
        );
    }

    #[test]
    fn malformed_keys_are_refused_with_a_reason() {
        let bad = SealConfig {
            keys: vec![Secret::new("no-colon")],
            ..SealConfig::default()
        };
        assert!(bad.load().unwrap_err().to_string().contains("<id>"));
        assert!(SealConfig::default().load().is_err());
    }
}
