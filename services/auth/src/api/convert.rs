//! Rows to protobuf messages.

use cityevents_authn::Role;
use cityevents_proto::cityevents::auth::v1 as pb;

use crate::store::users::UserRow;

pub use cityevents_runtime::parse::timestamp;

pub fn role_to_pb(role: Role) -> pb::Role {
    match role {
        Role::User => pb::Role::User,
        Role::Moderator => pb::Role::Moderator,
        Role::Admin => pb::Role::Admin,
    }
}

pub fn role_from_pb(role: pb::Role) -> Option<Role> {
    match role {
        pb::Role::Unspecified => None,
        pb::Role::User => Some(Role::User),
        pb::Role::Moderator => Some(Role::Moderator),
        pb::Role::Admin => Some(Role::Admin),
    }
}

/// The stored role; an unreadable one counts as the least privileged.
pub fn role_of(row: &UserRow) -> Role {
    Role::parse(&row.role).unwrap_or(Role::User)
}

pub fn user(row: &UserRow) -> pb::User {
    pb::User {
        id: row.id.to_string(),
        email: row.email.clone(),
        display_name: row.display_name.clone(),
        role: role_to_pb(role_of(row)).into(),
        email_verified: row.email_verified,
        banned: row.banned_at.is_some(),
        created_at: Some(timestamp(row.created_at)),
    }
}
