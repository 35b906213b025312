//! What an access token says.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Global role of an account. Organizing is per event, not a role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Anyone with an account.
    User,
    /// May hide events and read reports.
    Moderator,
    /// May change roles and ban.
    Admin,
}

impl Role {
    /// The lowercase name stored and put in tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Moderator => "moderator",
            Self::Admin => "admin",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Self::User),
            "moderator" => Some(Self::Moderator),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// The JWT claims of an access token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// User id.
    pub sub: Uuid,
    /// Global role.
    pub role: Role,
    /// Token id.
    pub jti: Uuid,
    /// The user's token version when issued; a higher current one revokes it.
    pub tv: i64,
    /// Session (refresh-token family) id; logout revokes it.
    pub sid: Uuid,
    /// Whether the email was verified when issued.
    pub ev: bool,
    /// Issued at (unix seconds).
    pub iat: i64,
    /// Expires at (unix seconds).
    pub exp: i64,
}

/// The authenticated caller, as handlers see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// User id.
    pub user_id: Uuid,
    /// Global role.
    pub role: Role,
    /// Email verified (may create events).
    pub email_verified: bool,
    /// Session id.
    pub session_id: Uuid,
    /// Expiry (unix seconds).
    pub expires_at: i64,
}

impl From<&Claims> for Principal {
    fn from(c: &Claims) -> Self {
        Self {
            user_id: c.sub,
            role: c.role,
            email_verified: c.ev,
            session_id: c.sid,
            expires_at: c.exp,
        }
    }
}

impl Principal {
    /// Whether the caller has at least `role`.
    pub fn is_at_least(&self, role: Role) -> bool {
        self.role >= role
    }
}
