//! Signed, expiring image URLs: `/media/<image>/<variant>.<ext>?exp=<unix>
//! &kid=<key id>&sig=<HMAC-SHA256 over image, variant and expiry, 128
//! bits>`. The extension (WebP or JPEG) is the client's choice and not
//! signed. Keys rotate by id: the first signs, all verify.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use cityevents_runtime::config::Secret;

pub struct UrlSigner {
    keys: Vec<(String, Vec<u8>)>,
}

/// Why a URL is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    Malformed,
    Expired,
    BadSignature,
}

impl UrlSigner {
    /// Keys as `<id>:<secret>`; at least one.
    pub fn new(keys: &[Secret]) -> anyhow::Result<Self> {
        let keys =
            keys.iter()
                .map(|k| {
                    let (id, secret) = k.expose().split_once(':').ok_or_else(|| {
                        anyhow::anyhow!("media.url_keys: each is `<id>:<secret>`")
                    })?;
                    anyhow::ensure!(
                        !id.is_empty() && secret.len() >= 16,
                        "media.url_keys: an id and a secret of 16 or more characters"
                    );
                    Ok((id.to_owned(), secret.as_bytes().to_vec()))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!(
            !keys.is_empty(),
            "media.url_keys: at least one key is required"
        );
        Ok(Self { keys })
    }

    fn mac(key: &[u8], resource: &str, exp: i64) -> Hmac<Sha256> {
        #[allow(clippy::expect_used)] // HMAC takes a key of any length
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
        mac.update(resource.as_bytes());
        mac.update(b"\n");
        mac.update(exp.to_string().as_bytes());
        mac
    }

    fn tag(key: &[u8], resource: &str, exp: i64) -> Vec<u8> {
        Self::mac(key, resource, exp).finalize().into_bytes()[..16].to_vec()
    }

    /// The query that signs `resource` (e.g. `/media/<id>/card`) until `exp`.
    pub fn sign(&self, resource: &str, exp: i64) -> String {
        let (id, key) = &self.keys[0];
        format!(
            "exp={exp}&kid={id}&sig={}",
            B64.encode(Self::tag(key, resource, exp))
        )
    }

    /// Checks a signed resource's query at time `now`; its expiry if good.
    pub fn verify(&self, resource: &str, query: &str, now: i64) -> Result<i64, Refused> {
        let (mut exp, mut kid, mut sig) = (None, None, None);
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("exp", v)) => exp = v.parse::<i64>().ok(),
                Some(("kid", v)) => kid = Some(v),
                Some(("sig", v)) => sig = B64.decode(v).ok(),
                _ => {}
            }
        }
        let (Some(exp), Some(kid), Some(sig)) = (exp, kid, sig) else {
            return Err(Refused::Malformed);
        };
        let (_, key) = self
            .keys
            .iter()
            .find(|(id, _)| id == kid)
            .ok_or(Refused::BadSignature)?;
        let mac = Self::mac(key, resource, exp);
        if sig.len() != 16 || mac.verify_truncated_left(&sig).is_err() {
            return Err(Refused::BadSignature);
        }
        if exp < now {
            return Err(Refused::Expired);
        }
        Ok(exp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(keys: &[&str]) -> UrlSigner {
        UrlSigner::new(&keys.iter().map(|k| Secret::new(*k)).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn a_url_verifies_until_it_expires_and_not_once_edited() {
        let s = signer(&["k1:0123456789abcdef"]);
        let path = "/media/a/card";
        let query = s.sign(path, 1_000);
        assert_eq!(s.verify(path, &query, 999), Ok(1_000));
        assert_eq!(s.verify(path, &query, 1_001), Err(Refused::Expired));
        assert_eq!(
            s.verify("/media/a/cover", &query, 999),
            Err(Refused::BadSignature)
        );
        let later = query.replace("exp=1000", "exp=9999");
        assert_eq!(s.verify(path, &later, 999), Err(Refused::BadSignature));
        assert_eq!(s.verify(path, "exp=1", 0), Err(Refused::Malformed));
    }

    #[test]
    fn rotated_keys_still_verify_what_the_old_one_signed() {
        let old = signer(&["k1:0123456789abcdef"]);
        let path = "/media/a/card";
        let query = old.sign(path, 1_000);
        let rotated = signer(&["k2:fedcba9876543210", "k1:0123456789abcdef"]);
        assert_eq!(rotated.verify(path, &query, 0), Ok(1_000));
        assert!(rotated.sign(path, 1_000).contains("kid=k2"));
        let dropped = signer(&["k2:fedcba9876543210"]);
        assert_eq!(dropped.verify(path, &query, 0), Err(Refused::BadSignature));
    }
}
