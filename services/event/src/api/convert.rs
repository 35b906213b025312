//! Rows to messages.

use chrono::Utc;
use prost::Message;

use cityevents_proto::cityevents::event::v1 as pb;
use cityevents_runtime::{Error, Result};

use crate::store::EventRow;

pub use cityevents_runtime::parse::timestamp;

/// The stored status; a published event past its end reads as completed.
fn status(row: &EventRow) -> pb::EventStatus {
    match row.status.as_str() {
        "published" if row.ends_at < Utc::now() => pb::EventStatus::Completed,
        "published" => pb::EventStatus::Published,
        "cancelled" => pb::EventStatus::Cancelled,
        _ => pb::EventStatus::Draft,
    }
}

pub fn event(row: &EventRow) -> Result<pb::Event> {
    let draft = pb::EventDraft::decode(row.draft.as_slice()).map_err(Error::internal)?;
    Ok(pb::Event {
        id: row.id.to_string(),
        draft: Some(draft),
        status: status(row).into(),
        hidden: row.hidden,
        organizer_id: row.organizer_id.to_string(),
        co_organizer_ids: row.co_organizers.iter().map(ToString::to_string).collect(),
        version: row.version,
        created_at: Some(timestamp(row.created_at)),
        updated_at: Some(timestamp(row.updated_at)),
        // Signed links are the BFF's to add.
        cover_images: Vec::new(),
    })
}
