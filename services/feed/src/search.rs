//! Search behind one trait ([`Engine`]), so an embedded engine (tantivy,
//! say) could replace PostgreSQL if the figures demanded it.
//!
//! [`PgSearch`] filters first (date, place, category, city — each backed by
//! a partial index), always matches text with `@@` on the indexed
//! `tsvector`, ranks only a bounded candidate set, and falls back to
//! trigram similarity when the words find too little. The SQL is built
//! from fixed fragments with every value bound (never spliced): one static
//! statement per combination of filters and sort would be hundreds, and a
//! catch-all `$n IS NULL OR …` statement defeats the planner.

use chrono::{DateTime, Duration, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use cityevents_proto::cityevents::feed::v1 as pb;
use cityevents_runtime::{Result, parse};

use std::collections::HashMap;

use crate::query::{Dates, Order, Search, Text};
use crate::rank;

/// Where the next page starts (sealed into the page token).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "k")]
pub enum Position {
    /// After (starts_at in µs, id).
    Soonest { at: i64, id: Uuid },
    /// After (score, id); `q` is the typo-corrected text query the first
    /// page used, if it used one.
    Score {
        s: f32,
        id: Uuid,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        q: Option<String>,
    },
    /// After (distance in m, id).
    Distance { d: f64, id: Uuid },
    /// At `at` in a ranked list stored by the first page.
    List { list: Uuid, at: usize },
}

/// One page of cards and where the next starts.
pub struct Page {
    pub cards: Vec<pb::EventCard>,
    pub next: Option<Position>,
}

/// A search engine over the projection.
pub trait Engine: Send + Sync {
    /// The page of `search` after `after` (the first when `None`).
    fn page<'a>(
        &'a self,
        search: &'a Search,
        after: Option<&'a Position>,
    ) -> BoxFuture<'a, Result<Page>>;
}

/// A card as the queries select it.
#[derive(Debug, sqlx::FromRow)]
pub struct CardRow {
    pub event_id: Uuid,
    pub version: i64,
    pub title: String,
    pub category: String,
    pub tags: Vec<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub time_zone: String,
    pub city: String,
    pub venue_name: String,
    pub latitude: f64,
    pub longitude: f64,
    pub online: bool,
    pub capacity: i32,
    pub confirmed: i32,
    pub waitlisted: i32,
    pub cover_image_id: String,
    pub organizer_id: Uuid,
    pub distance_m: Option<f64>,
    pub score: f32,
}

/// A card's columns from `events e`...
pub const EVENT_COLUMNS: &str = "e.event_id, e.version, e.title, e.category, e.tags, e.starts_at, e.ends_at, \
     e.time_zone, e.city, e.venue_name, e.latitude, e.longitude, e.online, e.capacity, e.cover_image_id, \
     e.organizer_id";
/// ...and from its `event_stats s`.
pub const STATS_COLUMNS: &str =
    "coalesce(s.confirmed, 0) AS confirmed, coalesce(s.waitlisted, 0) AS waitlisted";

/// Events that trend: those with the most heat (joins, decayed), at most.
const HOTTEST: i64 = 1_000;

impl From<CardRow> for pb::EventCard {
    fn from(r: CardRow) -> Self {
        Self {
            event_id: r.event_id.to_string(),
            title: r.title,
            category: r.category,
            tags: r.tags,
            starts_at: Some(parse::timestamp(r.starts_at)),
            ends_at: Some(parse::timestamp(r.ends_at)),
            time_zone: r.time_zone,
            city: r.city,
            venue_name: r.venue_name,
            latitude: r.latitude,
            longitude: r.longitude,
            online: r.online,
            confirmed: r.confirmed,
            waitlisted: r.waitlisted,
            capacity: r.capacity,
            remaining: if r.capacity == 0 {
                -1
            } else {
                (r.capacity - r.confirmed).max(0)
            },
            cover_image_id: r.cover_image_id,
            // Signed links are the BFF's to add.
            cover: None,
            distance_km: r.distance_m.map_or(0.0, |m| (m / 10.0).round() / 100.0),
            organizer_id: r.organizer_id.to_string(),
            version: r.version,
        }
    }
}

/// Search on the projection's own PostgreSQL.
pub struct PgSearch {
    pub pool: PgPool,
    /// Fewer first-page matches than this bring in typo tolerance.
    pub fuzzy_below: usize,
    /// Events ranked per query at most.
    pub max_candidates: i64,
}

impl Engine for PgSearch {
    fn page<'a>(
        &'a self,
        search: &'a Search,
        after: Option<&'a Position>,
    ) -> BoxFuture<'a, Result<Page>> {
        Box::pin(async move {
            if search.order == Order::Trending {
                return rank::trending_page(&self.pool, search, after, self.max_candidates).await;
            }
            let corrected = match after {
                Some(Position::Score { q, .. }) => q.clone(),
                _ => None,
            };
            let rows = self.rows(search, after, corrected.as_deref()).await?;
            // Too little for the words as typed on a first page: correct
            // the typos and search again.
            if let Some(text) = &search.text
                && after.is_none()
                && !text.exact
                && rows.len() < self.fuzzy_below
                && search.order == Order::Relevance
                && let Some(q) = self.correct(text).await?
            {
                let more = self.rows(search, None, Some(&q)).await?;
                if more.len() > rows.len() {
                    return Ok(finish(search, more, Some(q)));
                }
            }
            Ok(finish(search, rows, corrected))
        })
    }
}

/// Cuts the extra row off and says where the next page starts.
fn finish(search: &Search, mut rows: Vec<CardRow>, q: Option<String>) -> Page {
    let size = usize::try_from(search.size).unwrap_or(50);
    let more = rows.len() > size;
    rows.truncate(size);
    let next = if more {
        rows.last().map(|r| match search.order {
            Order::Relevance => Position::Score {
                s: r.score,
                id: r.event_id,
                q: q.clone(),
            },
            Order::Distance => Position::Distance {
                d: r.distance_m.unwrap_or_default(),
                id: r.event_id,
            },
            _ => Position::Soonest {
                at: r.starts_at.timestamp_micros(),
                id: r.event_id,
            },
        })
    } else {
        None
    };
    Page {
        cards: rows.into_iter().map(Into::into).collect(),
        next,
    }
}

impl PgSearch {
    async fn rows(
        &self,
        s: &Search,
        after: Option<&Position>,
        tsquery: Option<&str>,
    ) -> Result<Vec<CardRow>> {
        let mut q = QueryBuilder::<Postgres>::new("");
        build(&mut q, s, after, tsquery, self.max_candidates);
        Ok(q.build_query_as::<CardRow>().fetch_all(&self.pool).await?)
    }

    /// `text`'s query with each word the lexicon lacks widened to the
    /// nearest word it has (`concrt` → `concrt | concert`); `None` when
    /// nothing needed or could be corrected.
    async fn correct(&self, text: &Text) -> Result<Option<String>> {
        let words: Vec<String> = text.words.split(' ').map(str::to_owned).collect();
        let rows = sqlx::query!(
            r#"SELECT w AS "word!",
                 (SELECT l.word FROM lexicon l WHERE l.word % lower(f_unaccent(w))
                  ORDER BY l.word <-> lower(f_unaccent(w)) LIMIT 1) AS nearest
               FROM unnest($1::text[]) w
               WHERE NOT EXISTS (SELECT 1 FROM lexicon WHERE word = lower(f_unaccent(w)))"#,
            &words
        )
        .fetch_all(&self.pool)
        .await?;
        let fixes: HashMap<String, String> = rows
            .into_iter()
            .filter_map(|r| r.nearest.map(|n| (r.word, n)))
            .filter(|(w, n)| w != n)
            .collect();
        Ok((!fixes.is_empty()).then(|| text.widened(&fixes)))
    }
}

/// `EXPLAIN (ANALYZE, BUFFERS)` of `search`'s first page (`feed explain`),
/// with `tsquery` in place of its words if given: the evidence that each
/// kind of query uses its index.
pub async fn explain(
    pool: &PgPool,
    search: &Search,
    tsquery: Option<&str>,
    max_candidates: i64,
) -> Result<String> {
    let mut q = QueryBuilder::<Postgres>::new("EXPLAIN (ANALYZE, BUFFERS) ");
    build(&mut q, search, None, tsquery, max_candidates);
    let lines: Vec<(String,)> = q.build_query_as().fetch_all(pool).await?;
    Ok(lines
        .into_iter()
        .map(|(l,)| l)
        .collect::<Vec<_>>()
        .join("\n"))
}

/// The SQL of one page (also what `feed explain` explains). Matching and
/// ordering read `events` alone; counts are joined to the page's rows only
/// (joining them to every match costs more than the match).
pub fn build(
    q: &mut QueryBuilder<Postgres>,
    s: &Search,
    after: Option<&Position>,
    tsquery: Option<&str>,
    max_candidates: i64,
) {
    let text = s
        .text
        .as_ref()
        .map(|t| tsquery.unwrap_or(&t.tsquery).to_owned());
    q.push("WITH p AS (SELECT ");
    match &text {
        Some(t) => {
            q.push("to_tsquery('english', f_unaccent(")
                .push_bind(t.clone())
                .push(")) AS tsq, ");
        }
        None => {
            q.push("NULL::tsquery AS tsq, ");
        }
    }
    match s.near {
        Some(n) => {
            q.push("ST_SetSRID(ST_MakePoint(")
                .push_bind(n.longitude)
                .push(", ")
                .push_bind(n.latitude)
                .push("), 4326)::geography AS pt");
        }
        None => {
            q.push("NULL::geography AS pt");
        }
    }
    q.push(") SELECT c.*, ").push(STATS_COLUMNS);
    q.push(" FROM (SELECT * FROM (SELECT ").push(EVENT_COLUMNS);
    // The index's own (spherical) distance, so order and keyset agree.
    let distance = "(e.location <-> p.pt)";
    if s.near.is_some() {
        q.push(", ").push(distance).push(" AS distance_m");
    } else {
        q.push(", NULL::float8 AS distance_m");
    }
    // Trending: heat, events starting within 48 hours counted double.
    let trend = "(st.heat + CASE WHEN e.starts_at < now() + interval '48 hours' THEN ln(2) ELSE 0 END)::real";
    let score = match (&text, s.order) {
        (_, Order::Trending) => trend,
        (Some(_), _) => "ts_rank(e.search, p.tsq, 1)",
        (None, _) => "0::real",
    };
    q.push(", ").push(score).push(" AS score FROM events e");
    if s.order == Order::Trending || s.free_only {
        q.push(" LEFT JOIN event_stats st ON st.event_id = e.event_id");
    }
    q.push(" CROSS JOIN p WHERE e.listed AND e.ends_at > now()");
    if text.is_some() {
        q.push(" AND e.search @@ p.tsq");
    }
    if s.order == Order::Trending {
        q.push(" AND e.event_id IN (SELECT event_id FROM event_stats WHERE heat IS NOT NULL ORDER BY heat DESC LIMIT ")
            .push_bind(HOTTEST)
            .push(")");
    }
    if !s.categories.is_empty() {
        q.push(" AND e.category = ANY(")
            .push_bind(s.categories.clone())
            .push(")");
    }
    if !s.tags.is_empty() {
        q.push(" AND e.tags @> ").push_bind(s.tags.clone());
    }
    if let Some(city) = &s.city {
        q.push(" AND e.city_key = lower(f_unaccent(")
            .push_bind(city.clone())
            .push("))");
    }
    if let Some(n) = s.near {
        q.push(" AND ST_DWithin(e.location, p.pt, ")
            .push_bind(n.radius_m)
            .push(")");
    }
    if let Some(t) = s.starts_after {
        q.push(" AND e.starts_at >= ").push_bind(t);
    }
    if let Some(t) = s.starts_before {
        q.push(" AND e.starts_at < ").push_bind(t);
    }
    if let Some(Dates::EventZone { from, to }) = &s.dates {
        // Exact on the local date; the instant bounds let the starts_at
        // index narrow first (zones lie within UTC-12 and UTC+14).
        if let Some(f) = from {
            q.push(" AND e.local_date >= ").push_bind(*f);
            let utc = f.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
            q.push(" AND e.starts_at >= ")
                .push_bind(utc - Duration::hours(14));
        }
        if let Some(t) = to {
            q.push(" AND e.local_date <= ").push_bind(*t);
            let utc = t.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
            q.push(" AND e.starts_at < ")
                .push_bind(utc + Duration::hours(36));
        }
    }
    if s.free_only {
        q.push(" AND (e.capacity = 0 OR coalesce(st.confirmed, 0) < e.capacity)");
    }
    match s.online {
        Some(true) => {
            q.push(" AND e.online");
        }
        Some(false) => {
            q.push(" AND NOT e.online");
        }
        None => {}
    }
    // Keyset: strictly after the previous page's last row.
    match (s.order, after) {
        (Order::Soonest, Some(Position::Soonest { at, id })) => {
            let at = DateTime::from_timestamp_micros(*at).unwrap_or_default();
            q.push(" AND (e.starts_at, e.event_id) > (")
                .push_bind(at)
                .push(", ")
                .push_bind(*id)
                .push(")");
        }
        (Order::Relevance, Some(Position::Score { s: last, id, .. })) => {
            q.push(" AND (")
                .push(score)
                .push(" < ")
                .push_bind(*last)
                .push(" OR (")
                .push(score)
                .push(" = ")
                .push_bind(*last)
                .push(" AND e.event_id > ")
                .push_bind(*id)
                .push("))");
        }
        (Order::Distance, Some(Position::Distance { d, id })) => {
            q.push(" AND (")
                .push(distance)
                .push(", e.event_id) > (")
                .push_bind(*d)
                .push(", ")
                .push_bind(*id)
                .push(")");
        }
        _ => {}
    }
    // The matches in index order, bounded; then the page; then its counts.
    let limit = s.size + 1;
    let (inner, page, last, bound) = match s.order {
        // Rank a bounded candidate set: the soonest matches.
        Order::Relevance => (
            "e.starts_at",
            "score DESC, event_id",
            "c.score DESC, c.event_id",
            max_candidates,
        ),
        // Nearest first from the GiST index; ties by id.
        Order::Distance => (
            "(e.location <-> p.pt), e.event_id",
            "distance_m, event_id",
            "c.distance_m, c.event_id",
            limit,
        ),
        Order::Soonest => (
            "e.starts_at, e.event_id",
            "starts_at, event_id",
            "c.starts_at, c.event_id",
            limit,
        ),
        // The whole ranking (pages come from the stored list).
        Order::Trending => (
            "score DESC, e.starts_at, e.event_id",
            "score DESC, starts_at, event_id",
            "c.score DESC, c.starts_at, c.event_id",
            max_candidates,
        ),
    };
    let page_limit = if s.order == Order::Trending {
        max_candidates
    } else {
        limit
    };
    q.push(" ORDER BY ")
        .push(inner)
        .push(" LIMIT ")
        .push_bind(bound)
        .push(") c0 ORDER BY ")
        .push(page)
        .push(" LIMIT ")
        .push_bind(page_limit)
        .push(") c LEFT JOIN event_stats s ON s.event_id = c.event_id ORDER BY ")
        .push(last);
}
