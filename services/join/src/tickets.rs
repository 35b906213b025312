//! Ticket codes: `base64url(registration id ‖ event id ‖ Ed25519 signature)`.
//! Anyone holding the public key (the key's JWK) verifies one offline; the
//! signature is deterministic, so a registration's code never changes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use cityevents_authn::SigningKey;
use cityevents_runtime::{Error, Result};

const DOMAIN: &[u8] = b"cityevents-ticket-v1";

/// Signs and checks ticket codes.
#[derive(Clone)]
pub struct Tickets {
    key: SigningKey,
}

fn message(reg: &[u8], event: &[u8]) -> Vec<u8> {
    [DOMAIN, reg, event].concat()
}

impl Tickets {
    pub fn new(key: SigningKey) -> Self {
        Self { key }
    }

    /// The public key, as a JWK, for offline verification.
    pub fn public_jwk(&self) -> cityevents_proto::cityevents::auth::v1::Jwk {
        self.key.jwk()
    }

    /// The code of registration `reg` for `event`.
    pub fn code(&self, reg: Uuid, event: Uuid) -> String {
        let sig = self.key.sign(&message(reg.as_bytes(), event.as_bytes()));
        URL_SAFE_NO_PAD.encode([reg.as_bytes().as_slice(), event.as_bytes(), &sig].concat())
    }

    /// The registration and event a genuine code names.
    pub fn verify(&self, code: &str) -> Result<(Uuid, Uuid)> {
        let invalid =
            || Error::invalid("ticket_code", "is not a valid ticket").with_reason("TICKET_INVALID");
        let bytes = URL_SAFE_NO_PAD.decode(code.trim()).map_err(|_| invalid())?;
        if bytes.len() != 96 {
            return Err(invalid());
        }
        let (ids, sig) = bytes.split_at(32);
        let sig: [u8; 64] = sig.try_into().map_err(|_| invalid())?;
        if !self.key.verify(&message(&ids[..16], &ids[16..]), &sig) {
            return Err(invalid());
        }
        let reg = Uuid::from_slice(&ids[..16]).map_err(|_| invalid())?;
        let event = Uuid::from_slice(&ids[16..]).map_err(|_| invalid())?;
        Ok((reg, event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_verifies_and_a_tampered_one_does_not() {
        let t = Tickets::new(SigningKey::generate().unwrap());
        let (reg, event) = (Uuid::now_v7(), Uuid::now_v7());
        let code = t.code(reg, event);
        assert_eq!(t.verify(&code).unwrap(), (reg, event));
        let mut bytes = URL_SAFE_NO_PAD.decode(&code).unwrap();
        bytes[40] ^= 1;
        assert!(t.verify(&URL_SAFE_NO_PAD.encode(bytes)).is_err());
        assert!(t.verify("junk").is_err());
        let other = Tickets::new(SigningKey::generate().unwrap());
        assert!(
            other.verify(&code).is_err(),
            "another key's ticket is foreign"
        );
    }
}
