//! The `cityevents.feed.v1.FeedService` handlers: parse, wait for a
//! `read_after` version if asked, answer from the cache or the engine.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use prost::Message;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tonic::Request;
use uuid::Uuid;

use cityevents_authn::Verifier;
use cityevents_proto::cityevents::feed::v1::{self as pb, feed_service_server::FeedService};
use cityevents_runtime::error::{Reply, reply};
use cityevents_runtime::{Error, ErrorCode, Result, parse};

use crate::cache::Cache;
use crate::cursor::{Signer, scope};
use crate::query::{Near, Search};
use crate::rank;
use crate::search::{Engine, Page, Position};
use cityevents_ical::{self as calendar, Entry};

/// What the handlers share.
pub struct State {
    pub pool: PgPool,
    pub verifier: Arc<Verifier>,
    pub engine: Arc<dyn Engine>,
    pub cache: Arc<Cache>,
    pub signer: Signer,
    pub read_after_wait: Duration,
}

#[derive(Clone)]
pub struct FeedApi {
    state: Arc<State>,
}

impl FeedApi {
    pub fn new(state: State) -> Self {
        Self {
            state: Arc::new(state),
        }
    }
}

/// Events a search calendar holds at most.
const CALENDAR_SEARCH_SIZE: i32 = 100;

impl State {
    /// Waits until the projection holds `after.event_id` at `after.version`
    /// or later, polling, for at most `read_after_wait`.
    async fn read_after(&self, after: Option<&pb::ReadAfter>) -> Result<()> {
        let Some(after) = after else { return Ok(()) };
        let id = parse::id("read_after.event_id", &after.event_id)?;
        let deadline = tokio::time::Instant::now() + self.read_after_wait;
        loop {
            let version = sqlx::query_scalar!("SELECT version FROM events WHERE event_id = $1", id)
                .fetch_optional(&self.pool)
                .await?;
            if version.is_some_and(|v| v >= after.version) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::new(
                    ErrorCode::FailedPrecondition,
                    "the feed has not caught up with that event version yet; retry in a moment",
                )
                .with_reason("FEED_BEHIND")
                .with_retry_after(Duration::from_secs(1)));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// One page of `search`, from the cache when it is a plain first page.
    async fn search_page(
        &self,
        r: &pb::SearchRequest,
        search: &Search,
    ) -> Result<(Vec<pb::EventCard>, String)> {
        let mut shape = r.clone();
        shape.page_token.clear();
        shape.page_size = 0;
        shape.read_after = None;
        let scope = scope(&[b"search", &shape.encode_to_vec()]);
        let after: Option<Position> = if r.page_token.is_empty() {
            None
        } else {
            Some(self.signer.open(&scope, &r.page_token)?)
        };
        let run = || async {
            let Page { cards, next } = self.engine.page(search, after.as_ref()).await?;
            let token = next
                .map(|p| self.signer.seal(&scope, &p))
                .unwrap_or_default();
            Ok(pb::SearchResponse {
                events: cards,
                next_page_token: token,
            }
            .encode_to_vec())
        };
        let bytes = if after.is_none() && r.read_after.is_none() {
            let mut key = shape.clone();
            key.page_size = r.page_size;
            // One page only (GetTrending) is not the first of many.
            let kind = if search.paged { "s" } else { "t" };
            let key = format!("feed:{kind}:{}", hex(&Sha256::digest(key.encode_to_vec())));
            self.cache.get_or_fill(&key, run).await?
        } else {
            Arc::new(run().await?)
        };
        let res = pb::SearchResponse::decode(bytes.as_slice()).map_err(Error::internal)?;
        Ok((res.events, res.next_page_token))
    }

    async fn search(&self, req: Request<pb::SearchRequest>) -> Result<pb::SearchResponse> {
        let r = req.into_inner();
        let search = Search::parse(&r)?;
        self.read_after(r.read_after.as_ref()).await?;
        let (events, next_page_token) = self.search_page(&r, &search).await?;
        Ok(pb::SearchResponse {
            events,
            next_page_token,
        })
    }

    async fn trending(&self, req: Request<pb::TrendingRequest>) -> Result<pb::TrendingResponse> {
        let r = req.into_inner();
        let as_search = pb::SearchRequest {
            near: r.near,
            categories: r.categories,
            page_size: r.page_size,
            sort: pb::Sort::Trending as i32,
            ..Default::default()
        };
        let search = Search {
            paged: false,
            ..Search::parse(&as_search)?
        };
        let (events, _) = self.search_page(&as_search, &search).await?;
        Ok(pb::TrendingResponse { events })
    }

    async fn personal(
        &self,
        req: Request<pb::PersonalFeedRequest>,
    ) -> Result<pb::PersonalFeedResponse> {
        let me = self.verifier.authenticate(req.metadata()).await?;
        let r = req.into_inner();
        let near = r.near.as_ref().map(Near::parse).transpose()?;
        let mut shape = r.clone();
        shape.page_token.clear();
        shape.page_size = 0;
        let scope = scope(&[b"for-you", me.user_id.as_bytes(), &shape.encode_to_vec()]);
        let after: Option<Position> = if r.page_token.is_empty() {
            None
        } else {
            Some(self.signer.open(&scope, &r.page_token)?)
        };
        let size = parse::page_size(r.page_size);
        let page = rank::for_you_page(&self.pool, me.user_id, near, size, after.as_ref()).await?;
        Ok(pb::PersonalFeedResponse {
            events: page.cards,
            next_page_token: page
                .next
                .map(|p| self.signer.seal(&scope, &p))
                .unwrap_or_default(),
        })
    }

    async fn calendar(&self, req: Request<pb::CalendarRequest>) -> Result<pb::CalendarResponse> {
        let now = chrono::Utc::now();
        let ics = match req.into_inner().source {
            Some(pb::calendar_request::Source::Secret(secret)) => {
                let hash = Sha256::digest(secret.as_bytes()).to_vec();
                let user = sqlx::query_scalar!("SELECT user_id FROM calendar_secrets WHERE secret_hash = $1", hash)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or_else(|| {
                        Error::new(ErrorCode::NotFound, "this calendar link is not valid (it may have been replaced by a newer one)")
                    })?;
                calendar::render("My CityEvents", &self.joined(user).await?, now)
            }
            Some(pb::calendar_request::Source::Search(mut s)) => {
                s.page_token.clear();
                s.page_size = s.page_size.clamp(0, CALENDAR_SEARCH_SIZE);
                let search = Search::parse(&s)?;
                self.read_after(s.read_after.as_ref()).await?;
                let page = self.engine.page(&search, None).await?;
                let ids: Vec<Uuid> = page
                    .cards
                    .iter()
                    .filter_map(|c| c.event_id.parse().ok())
                    .collect();
                calendar::render("CityEvents search", &self.entries(&ids).await?, now)
            }
            None => return Err(Error::invalid("source", "give a secret or a search")),
        };
        Ok(pb::CalendarResponse { ics })
    }

    /// The events `user` joined, ended at most 30 days ago, cancelled ones included.
    async fn joined(&self, user: Uuid) -> Result<Vec<Entry>> {
        let ids = sqlx::query_scalar!(
            "SELECT r.event_id FROM registrations r JOIN events e USING (event_id)
             WHERE r.user_id = $1 AND r.status <> 'cancelled' AND e.ends_at > now() - interval '30 days'
             ORDER BY e.starts_at LIMIT 500",
            user
        )
        .fetch_all(&self.pool)
        .await?;
        self.entries(&ids).await
    }

    async fn entries(&self, ids: &[Uuid]) -> Result<Vec<Entry>> {
        let rows = sqlx::query!(
            "SELECT event_id, version, title, description, venue_name, city, starts_at, ends_at, time_zone, status
             FROM events WHERE event_id = ANY($1) AND status IN ('EVENT_STATUS_PUBLISHED', 'EVENT_STATUS_CANCELLED', 'EVENT_STATUS_COMPLETED')
             ORDER BY starts_at, event_id",
            ids
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| Entry {
                event_id: r.event_id,
                version: r.version,
                title: r.title,
                description: r.description,
                location: [r.venue_name, r.city]
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join(", "),
                starts_at: r.starts_at,
                ends_at: r.ends_at,
                time_zone: r.time_zone,
                cancelled: r.status == "EVENT_STATUS_CANCELLED",
            })
            .collect())
    }

    async fn rotate(
        &self,
        req: Request<pb::RotateCalendarSecretRequest>,
    ) -> Result<pb::RotateCalendarSecretResponse> {
        let me = self.verifier.authenticate(req.metadata()).await?;
        let mut raw = [0u8; 24];
        getrandom::fill(&mut raw).map_err(|e| Error::internal(anyhow::anyhow!("random: {e}")))?;
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let hash = Sha256::digest(secret.as_bytes()).to_vec();
        sqlx::query!(
            "INSERT INTO calendar_secrets (user_id, secret_hash) VALUES ($1, $2)
             ON CONFLICT (user_id) DO UPDATE SET secret_hash = EXCLUDED.secret_hash, created_at = now()",
            me.user_id,
            hash
        )
        .execute(&self.pool)
        .await?;
        Ok(pb::RotateCalendarSecretResponse { secret })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tonic::async_trait]
impl FeedService for FeedApi {
    #[tracing::instrument(skip_all)]
    async fn search(&self, req: Request<pb::SearchRequest>) -> Reply<pb::SearchResponse> {
        reply(self.state.search(req).await)
    }
    #[tracing::instrument(skip_all)]
    async fn trending(&self, req: Request<pb::TrendingRequest>) -> Reply<pb::TrendingResponse> {
        reply(self.state.trending(req).await)
    }
    #[tracing::instrument(skip_all)]
    async fn personal_feed(
        &self,
        req: Request<pb::PersonalFeedRequest>,
    ) -> Reply<pb::PersonalFeedResponse> {
        reply(self.state.personal(req).await)
    }
    #[tracing::instrument(skip_all)]
    async fn calendar(&self, req: Request<pb::CalendarRequest>) -> Reply<pb::CalendarResponse> {
        reply(self.state.calendar(req).await)
    }
    #[tracing::instrument(skip_all)]
    async fn rotate_calendar_secret(
        &self,
        req: Request<pb::RotateCalendarSecretRequest>,
    ) -> Reply<pb::RotateCalendarSecretResponse> {
        reply(self.state.rotate(req).await)
    }
}
