//! Which images are in use, and collecting the rest.
//!
//! The event service attaches a cover when an organizer sets it
//! (`AttachImages`, which checks the caller owns it). The events stream
//! then keeps each event's attachments exactly as its newest snapshot says,
//! so a replaced cover is detached. An image attached to nothing for
//! `media.unattached_grace_secs` is deleted, and its bytes with it when no
//! other image shares them.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use object_store::ObjectStore;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use cityevents_messaging::consumer::Handler;
use cityevents_proto::cityevents::messaging::v1::Envelope;
use cityevents_runtime::CancellationToken;

use crate::store;

/// The durable consumers: (name, producer).
pub const CONSUMERS: [(&str, &str); 1] = [("media-events", "event")];

/// Applies event snapshots to the attachments.
pub struct Attachments;

impl Handler for Attachments {
    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        env: &'a Envelope,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let (event, _) = cityevents_proto::event_snapshot(&env.r#type, &env.payload)?
                .ok_or_else(|| anyhow::anyhow!("{} without an event", env.r#type))?;
            let ids: Vec<Uuid> = event
                .draft
                .map(|d| d.cover_image_ids)
                .unwrap_or_default()
                .iter()
                .filter_map(|i| i.parse().ok())
                .collect();
            store::sync(conn, &format!("event/{}", event.id), event.version, &ids).await?;
            Ok(())
        })
    }
}

/// Deletes unattached images past their grace period, every `every`.
pub struct Collector {
    pub pool: PgPool,
    pub store: Arc<dyn ObjectStore>,
    pub grace: Duration,
    pub every: Duration,
}

impl Collector {
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut tick = tokio::time::interval(self.every);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                _ = tick.tick() => match self.collect().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(images = n, "unattached images collected"),
                    Err(e) => tracing::warn!(error = format!("{e:#}"), "collecting images failed"),
                },
            }
        }
    }

    /// One pass; how many images went.
    pub async fn collect(&self) -> anyhow::Result<usize> {
        let mut n = 0;
        loop {
            let shas = store::collect(&self.pool, self.grace.as_secs_f64(), 100).await?;
            n += shas.len();
            for sha in &shas {
                if !store::shared(&self.pool, sha).await? {
                    store::remove_variants(self.store.as_ref(), sha).await;
                }
            }
            if shas.len() < 100 {
                return Ok(n);
            }
        }
    }
}
