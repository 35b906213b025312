//! The verified-token cache: claims whose signature was checked, by the
//! SHA-256 of the token (32 bytes a key, however long tokens get).
//!
//! Two generations approximate least-recently-used at the cost of a map
//! lookup: new entries go into the young map; when it holds half the
//! capacity it becomes the old one (the previous old one is dropped), and a
//! hit in the old map moves the entry back to the young. Tokens in use stay;
//! a flood of new ones pushes out only what was not used for a generation —
//! never everything at once.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::claims::Claims;

type Key = [u8; 32];

#[derive(Default)]
struct Generations {
    young: HashMap<Key, Claims>,
    old: HashMap<Key, Claims>,
}

/// At most `capacity` verified tokens' claims.
pub(crate) struct VerifiedCache {
    generations: Mutex<Generations>,
    half: usize,
}

fn key(token: &str) -> Key {
    Sha256::digest(token.as_bytes()).into()
}

impl VerifiedCache {
    /// A cache of `capacity` entries; 0 keeps nothing.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            generations: Mutex::default(),
            half: capacity / 2,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations> {
        self.generations.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The claims of `token`, if it was verified and kept.
    pub(crate) fn get(&self, token: &str) -> Option<Claims> {
        if self.half == 0 {
            return None;
        }
        let k = key(token);
        let mut g = self.lock();
        if let Some(c) = g.young.get(&k) {
            return Some(c.clone());
        }
        let claims = g.old.remove(&k)?;
        Self::insert(&mut g, self.half, k, claims.clone());
        Some(claims)
    }

    /// Keeps `claims` as verified for `token`.
    pub(crate) fn put(&self, token: &str, claims: &Claims) {
        if self.half == 0 {
            return;
        }
        let mut g = self.lock();
        Self::insert(&mut g, self.half, key(token), claims.clone());
    }

    fn insert(g: &mut Generations, half: usize, k: Key, claims: Claims) {
        if g.young.len() >= half {
            g.old = std::mem::take(&mut g.young);
        }
        g.young.insert(k, claims);
    }

    /// Entries held now (both generations).
    #[cfg(test)]
    fn len(&self) -> usize {
        let g = self.lock();
        g.young.len() + g.old.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(tv: i64) -> Claims {
        Claims {
            iss: "i".into(),
            aud: "a".into(),
            sub: uuid::Uuid::nil(),
            role: crate::Role::User,
            jti: uuid::Uuid::nil(),
            tv,
            sid: uuid::Uuid::nil(),
            ev: true,
            exp: 0,
            iat: 0,
        }
    }

    #[test]
    fn tokens_in_use_survive_a_flood_of_new_ones_and_the_size_stays_bounded() {
        let cache = VerifiedCache::new(100);
        cache.put("in-use", &claims(1));
        for n in 0..1_000 {
            cache.put(&format!("new-{n}"), &claims(0));
            if n % 40 == 0 {
                assert_eq!(cache.get("in-use").map(|c| c.tv), Some(1), "after {n}");
            }
        }
        assert!(cache.len() <= 100, "{}", cache.len());
        assert!(cache.get("new-0").is_none(), "unused entries go");
    }

    #[test]
    fn a_capacity_of_zero_keeps_nothing() {
        let cache = VerifiedCache::new(0);
        cache.put("t", &claims(1));
        assert!(cache.get("t").is_none());
    }
}
