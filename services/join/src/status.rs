//! The states of registrations and of the events they belong to: enums,
//! mapped to their SQL text and proto values here and nowhere else.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
use sqlx::{Decode, Encode, Postgres, Type};

use cityevents_proto::cityevents::event::v1 as ev;
use cityevents_proto::cityevents::join::v1 as pb;

/// A registration's state (`registrations.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegStatus {
    /// Holds a place.
    Confirmed,
    /// Waits for a place, in `waitlist_seq` order.
    Waitlisted,
    /// Left or was removed; the row is reused if the user joins again.
    Cancelled,
    /// Holds a place and came through the door.
    CheckedIn,
}

impl RegStatus {
    /// The SQL text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::Waitlisted => "waitlisted",
            Self::Cancelled => "cancelled",
            Self::CheckedIn => "checked_in",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "confirmed" => Self::Confirmed,
            "waitlisted" => Self::Waitlisted,
            "cancelled" => Self::Cancelled,
            "checked_in" => Self::CheckedIn,
            _ => return None,
        })
    }

    /// The proto value.
    pub fn to_pb(self) -> pb::RegistrationStatus {
        match self {
            Self::Confirmed => pb::RegistrationStatus::Confirmed,
            Self::Waitlisted => pb::RegistrationStatus::Waitlisted,
            Self::Cancelled => pb::RegistrationStatus::Cancelled,
            Self::CheckedIn => pb::RegistrationStatus::CheckedIn,
        }
    }

    /// Whether the registration is a place or a waitlist entry (not cancelled).
    pub fn is_active(self) -> bool {
        self != Self::Cancelled
    }
}

/// What join needs of an event's lifecycle (`event_snapshots.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventStatus {
    /// Not published yet: takes no joins.
    Draft,
    /// Takes joins until it ends.
    Published,
    /// Takes no joins.
    Cancelled,
}

impl EventStatus {
    /// The SQL text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Published => "published",
            Self::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "draft" => Self::Draft,
            "published" => Self::Published,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }

    /// From the event service's status (a completed event was published).
    pub fn of(e: &ev::Event) -> Self {
        match e.status() {
            ev::EventStatus::Published | ev::EventStatus::Completed => Self::Published,
            ev::EventStatus::Cancelled => Self::Cancelled,
            _ => Self::Draft,
        }
    }
}

/// Text columns decode into and encode from both enums.
macro_rules! text_enum {
    ($t:ty) => {
        impl Type<Postgres> for $t {
            fn type_info() -> PgTypeInfo {
                <&str as Type<Postgres>>::type_info()
            }
            fn compatible(ty: &PgTypeInfo) -> bool {
                <&str as Type<Postgres>>::compatible(ty)
            }
        }
        impl<'r> Decode<'r, Postgres> for $t {
            fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
                let s = <&str as Decode<Postgres>>::decode(value)?;
                <$t>::parse(s).ok_or_else(|| format!("unknown {}: {s}", stringify!($t)).into())
            }
        }
        impl Encode<'_, Postgres> for $t {
            fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
                <&str as Encode<Postgres>>::encode(self.as_str(), buf)
            }
        }
    };
}
text_enum!(RegStatus);
text_enum!(EventStatus);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_reads_back_from_its_sql_text() {
        use RegStatus::*;
        for s in [Confirmed, Waitlisted, Cancelled, CheckedIn] {
            assert_eq!(RegStatus::parse(s.as_str()), Some(s));
        }
        for s in [
            EventStatus::Draft,
            EventStatus::Published,
            EventStatus::Cancelled,
        ] {
            assert_eq!(EventStatus::parse(s.as_str()), Some(s));
        }
    }
}
