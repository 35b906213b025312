//! Opaque, tamper-evident page tokens: a small JSON position, signed with
//! HMAC-SHA256 under the configured key and bound to the request it came
//! from, so a token cannot be edited, forged, or reused with other filters.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::{Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

use cityevents_runtime::{Error, Result};

/// Signs and checks page tokens.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

/// Bytes of the signature kept (128 bits).
const TAG: usize = 16;

impl Signer {
    /// `key` empty makes a random one (tokens then only work on this process).
    pub fn new(key: &str) -> anyhow::Result<Self> {
        let key = if key.is_empty() {
            tracing::warn!("feed.cursor_key is empty: page tokens only work on this replica");
            let mut k = vec![0u8; 32];
            getrandom::fill(&mut k).map_err(|e| anyhow::anyhow!("random cursor key: {e}"))?;
            k
        } else {
            key.as_bytes().to_vec()
        };
        Ok(Self { key })
    }

    fn tag(&self, scope: &[u8], body: &[u8]) -> Vec<u8> {
        #[allow(clippy::expect_used)] // HMAC takes a key of any length
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(scope);
        mac.update(b"\0");
        mac.update(body);
        mac.finalize().into_bytes()[..TAG].to_vec()
    }

    /// A token for `position`, valid only for requests of `scope`.
    pub fn seal<T: Serialize>(&self, scope: &[u8], position: &T) -> String {
        let body = serde_json::to_vec(position).unwrap_or_default();
        let tag = self.tag(scope, &body);
        format!("{}.{}", B64.encode(&body), B64.encode(tag))
    }

    /// The position in `token`, or INVALID_ARGUMENT naming `page_token`.
    pub fn open<T: DeserializeOwned>(&self, scope: &[u8], token: &str) -> Result<T> {
        let bad = || {
            Error::invalid(
                "page_token",
                "is not a token this search gave (ask again without it)",
            )
        };
        let (body, tag) = token.split_once('.').ok_or_else(bad)?;
        let body = B64.decode(body).map_err(|_| bad())?;
        let tag = B64.decode(tag).map_err(|_| bad())?;
        if tag.len() != TAG {
            return Err(bad());
        }
        // Constant-time comparison through the MAC itself.
        #[allow(clippy::expect_used)]
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(scope);
        mac.update(b"\0");
        mac.update(&body);
        mac.verify_truncated_left(&tag).map_err(|_| bad())?;
        serde_json::from_slice(&body).map_err(|_| bad())
    }
}

/// The scope of a request: a digest of every field that shapes its answer.
pub fn scope(parts: &[&[u8]]) -> Vec<u8> {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Pos {
        at: i64,
        id: String,
    }

    #[test]
    fn a_token_opens_only_unchanged_and_in_its_scope() {
        let s = Signer::new("k").unwrap();
        let p = Pos {
            at: 7,
            id: "x".into(),
        };
        let t = s.seal(b"a", &p);
        assert_eq!(s.open::<Pos>(b"a", &t).unwrap(), p);
        assert!(s.open::<Pos>(b"b", &t).is_err());
        let (body, tag) = t.split_once('.').unwrap();
        let forged = B64.encode(br#"{"at":8,"id":"x"}"#);
        assert!(s.open::<Pos>(b"a", &format!("{forged}.{tag}")).is_err());
        assert!(s.open::<Pos>(b"a", &format!("{body}.")).is_err());
        assert!(s.open::<Pos>(b"a", "garbage").is_err());
        assert!(Signer::new("other").unwrap().open::<Pos>(b"a", &t).is_err());
    }
}
