//! Signed links to cover images, added to the events and cards the
//! services answer with (one media call per answer). A page is served
//! without links rather than not at all when the media service is slow or
//! away.

use std::collections::HashMap;
use std::time::Duration;

use cityevents_proto::cityevents::event::v1 as ev;
use cityevents_proto::cityevents::feed::v1 as fd;
use cityevents_proto::cityevents::media::v1::{GetImageLinksRequest, ImageLinks};

use super::Api;

/// How long an answer waits for its image links.
const LINKS_WAIT: Duration = Duration::from_millis(500);

impl Api {
    /// Signed links to the images `ids` names (none when media fails).
    pub(super) async fn links(&self, ids: Vec<String>) -> HashMap<String, ImageLinks> {
        if ids.is_empty() {
            return HashMap::new();
        }
        let mut media = self.backends.media.clone();
        let call = media.get_image_links(GetImageLinksRequest { image_ids: ids });
        match tokio::time::timeout(LINKS_WAIT, call).await {
            Ok(Ok(r)) => r
                .into_inner()
                .links
                .into_iter()
                .map(|l| (l.image_id.clone(), l))
                .collect(),
            Ok(Err(s)) => {
                tracing::warn!(code = ?s.code(), "answering without image links");
                HashMap::new()
            }
            Err(_) => {
                tracing::warn!("answering without image links (media is slow)");
                HashMap::new()
            }
        }
    }

    /// Fills each event's `cover_images` from its draft's image ids.
    pub(super) async fn with_covers(&self, events: &mut [ev::Event]) {
        let links = self.links(cover_ids(events)).await;
        set_covers(events, &links);
    }

    /// Fills each card's `cover`.
    pub(super) async fn with_card_covers(&self, cards: &mut [fd::EventCard]) {
        let ids = cards
            .iter()
            .map(|c| c.cover_image_id.clone())
            .filter(|id| !id.is_empty())
            .collect();
        let links = self.links(ids).await;
        for c in cards {
            c.cover = links.get(&c.cover_image_id).cloned();
        }
    }
}

/// The cover image ids of `events`.
pub(super) fn cover_ids(events: &[ev::Event]) -> Vec<String> {
    events
        .iter()
        .flat_map(|e| {
            e.draft
                .iter()
                .flat_map(|d| d.cover_image_ids.iter().cloned())
        })
        .collect()
}

/// Sets each event's `cover_images` from `links`, in its draft's order.
pub(super) fn set_covers(events: &mut [ev::Event], links: &HashMap<String, ImageLinks>) {
    for e in events {
        let ids = e
            .draft
            .as_ref()
            .map(|d| d.cover_image_ids.as_slice())
            .unwrap_or_default();
        e.cover_images = ids.iter().filter_map(|id| links.get(id).cloned()).collect();
    }
}
