//! Access-token verification for every CityEvents service and the BFF.
//!
//! Access tokens are Ed25519-signed JWTs issued by the auth service. A
//! [`Verifier`] checks the signature against the auth service's JWKS (cached,
//! refetched when an unknown key id appears, so keys can rotate), then issuer,
//! audience and expiry, then revocation in Redis: the user's token version
//! (bumped by logout-everywhere, bans and password resets) and the session id
//! (ended by logout). [`keys`] holds signing keys, for the issuer;
//! [`sealed`] seals one-time link tokens for the mail service.

pub mod claims;
pub mod keys;
pub mod revocation;
pub mod sealed;
mod verified;
pub mod verifier;

pub use claims::{Claims, Principal, Role};
pub use keys::SigningKey;
pub use revocation::Revocations;
pub use sealed::{SealConfig, Sealer};
pub use verifier::{KeySource, Verifier, VerifierConfig, remote};
