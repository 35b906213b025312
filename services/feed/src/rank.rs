//! Rankings that move while someone pages through them — trending and
//! "for you" — are computed once, stored as a ranked list of ids, and paged
//! from it: no item skipped or repeated however the ranking moves.

use std::collections::{HashMap, VecDeque};

use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use cityevents_runtime::{Error, Result};

use crate::query::{Near, Search};
use crate::search::{CARD_COLUMNS, CardRow, Page, Position};

/// Events of one organizer at most among any ten consecutive "for you" items.
const PER_ORGANIZER: usize = 2;
const WINDOW: usize = 10;

/// A trending page: the search's filters, ranked by heat with events
/// starting within 48 hours doubled; events nobody joined yet follow,
/// soonest first.
pub async fn trending_page(
    pool: &PgPool,
    search: &Search,
    after: Option<&Position>,
    max_candidates: i64,
) -> Result<Page> {
    if let Some(p) = after {
        return list_page(pool, p, search.size, search.near).await;
    }
    let trending = Search {
        order: crate::query::Order::Soonest,
        size: max_candidates,
        ..search.clone()
    };
    let mut q = QueryBuilder::<Postgres>::new("SELECT c.* FROM (");
    crate::search::build(&mut q, &trending, None, false, max_candidates);
    // build() ends with its own ORDER BY; rank its rows by heat instead.
    q.push(") c JOIN events h USING (event_id) ORDER BY h.heat + CASE WHEN h.starts_at < now() + interval '48 hours' THEN ln(2) ELSE 0 END DESC NULLS LAST, c.starts_at, c.event_id");
    let rows = q.build_query_as::<CardRow>().fetch_all(pool).await?;
    first_page(pool, rows, search.size).await
}

/// A "for you" page for `user`.
pub async fn for_you_page(
    pool: &PgPool,
    user: Uuid,
    near: Option<Near>,
    size: i64,
    after: Option<&Position>,
    max_candidates: i64,
) -> Result<Page> {
    if let Some(p) = after {
        return list_page(pool, p, size, near).await;
    }
    let (lat, lon, radius) = match near {
        Some(n) => (Some(n.latitude), Some(n.longitude), Some(n.radius_m)),
        None => (None, None, None),
    };
    let rows = sqlx::query_as!(
        CardRow,
        r#"WITH mine AS (
             SELECT e.category, e.tags, e.organizer_id FROM registrations r JOIN events e USING (event_id)
             WHERE r.user_id = $1 AND r.status <> 'cancelled' ORDER BY r.joined_at DESC LIMIT 200),
           cats AS (SELECT category, ln(1 + count(*)) AS w FROM mine GROUP BY category),
           tags AS (SELECT t, ln(1 + count(*)) AS w FROM mine, unnest(mine.tags) t GROUP BY t),
           orgs AS (SELECT organizer_id, ln(1 + count(*)) AS w FROM mine GROUP BY organizer_id),
           p AS (SELECT CASE WHEN $2::float8 IS NULL THEN NULL
                        ELSE ST_SetSRID(ST_MakePoint($3::float8, $2::float8), 4326)::geography END AS pt),
           cand AS (
             (SELECT e.event_id FROM events e WHERE e.listed AND e.ends_at > now()
                AND (e.category IN (SELECT category FROM cats) OR e.organizer_id IN (SELECT organizer_id FROM orgs))
              ORDER BY e.starts_at LIMIT $5)
             UNION
             (SELECT e.event_id FROM events e WHERE e.listed AND e.ends_at > now()
                AND e.tags && (SELECT coalesce(array_agg(t), '{}') FROM tags)
              ORDER BY e.starts_at LIMIT $5)
             UNION
             (SELECT e.event_id FROM events e WHERE e.listed AND e.ends_at > now()
              ORDER BY e.heat DESC NULLS LAST LIMIT $5)
             UNION
             (SELECT e.event_id FROM events e, p WHERE e.listed AND e.ends_at > now()
                AND ST_DWithin(e.location, p.pt, $4::float8)
              ORDER BY e.starts_at LIMIT $5)),
           top AS (SELECT max(e.heat) AS h FROM events e JOIN cand USING (event_id))
         SELECT e.event_id, e.version, e.title, e.category, e.tags, e.starts_at, e.ends_at,
           e.time_zone, e.city, e.venue_name, e.latitude, e.longitude, e.online, e.capacity, e.confirmed,
           e.waitlisted, e.cover_image_id, e.organizer_id,
           (e.location <-> p.pt) AS "distance_m?",
           (coalesce((SELECT w FROM cats WHERE cats.category = e.category), 0)
            + 0.5 * coalesce((SELECT sum(w) FROM tags WHERE tags.t = ANY(e.tags)), 0)
            + 1.5 * coalesce((SELECT w FROM orgs WHERE orgs.organizer_id = e.organizer_id), 0)
            + CASE WHEN e.heat IS NULL THEN 0 ELSE exp(e.heat - top.h) END
            + CASE WHEN p.pt IS NULL OR e.location IS NULL THEN 0
                   ELSE 1 / (1 + (e.location <-> p.pt) / 10000) END
            + CASE WHEN e.starts_at < now() + interval '7 days' THEN 0.3 ELSE 0 END)::real AS "score!"
         FROM events e JOIN cand USING (event_id), p, top
         WHERE e.listed AND e.ends_at > now()
           AND (p.pt IS NULL OR e.online OR ST_DWithin(e.location, p.pt, $4::float8))
           AND NOT EXISTS (SELECT 1 FROM registrations r
                           WHERE r.user_id = $1 AND r.event_id = e.event_id AND r.status <> 'cancelled')
         ORDER BY 20 DESC, e.starts_at, e.event_id"#,
        user,
        lat,
        lon,
        radius,
        max_candidates
    )
    .fetch_all(pool)
    .await?;
    first_page(pool, diversify(rows), size).await
}

/// Reorders `rows` so no organizer has more than [`PER_ORGANIZER`] events
/// in any [`WINDOW`] consecutive ones, deferring the surplus (order kept).
pub fn diversify(rows: Vec<CardRow>) -> Vec<CardRow> {
    let mut out: Vec<CardRow> = Vec::with_capacity(rows.len());
    let mut deferred: VecDeque<CardRow> = VecDeque::new();
    let crowded = |out: &[CardRow], organizer: Uuid| {
        let start = out.len().saturating_sub(WINDOW - 1);
        out[start..]
            .iter()
            .filter(|r| r.organizer_id == organizer)
            .count()
            >= PER_ORGANIZER
    };
    for row in rows {
        // Place deferred rows as soon as their organizer has room again.
        while let Some(i) = deferred.iter().position(|d| !crowded(&out, d.organizer_id)) {
            if let Some(d) = deferred.remove(i) {
                out.push(d);
            }
        }
        if crowded(&out, row.organizer_id) {
            deferred.push_back(row);
        } else {
            out.push(row);
        }
    }
    out.extend(deferred);
    out
}

/// Stores the ranking if it runs past one page, and answers the first page.
async fn first_page(pool: &PgPool, rows: Vec<CardRow>, size: i64) -> Result<Page> {
    let size = usize::try_from(size).unwrap_or(50);
    let next = if rows.len() > size {
        let ids: Vec<Uuid> = rows.iter().map(|r| r.event_id).collect();
        let list = Uuid::now_v7();
        sqlx::query!(
            "INSERT INTO ranked_lists (list_id, event_ids) VALUES ($1, $2)",
            list,
            &ids
        )
        .execute(pool)
        .await?;
        Some(Position::List { list, at: size })
    } else {
        None
    };
    Ok(Page {
        cards: rows.into_iter().take(size).map(Into::into).collect(),
        next,
    })
}

/// A later page of a stored ranking; events no longer listed drop out.
async fn list_page(pool: &PgPool, at: &Position, size: i64, near: Option<Near>) -> Result<Page> {
    let Position::List { list, at } = at else {
        return Err(Error::invalid(
            "page_token",
            "is not a token this feed gave",
        ));
    };
    let ids = sqlx::query_scalar!(
        "SELECT event_ids FROM ranked_lists WHERE list_id = $1",
        list
    )
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| Error::invalid("page_token", "has expired; ask for the first page again"))?;
    let size = usize::try_from(size).unwrap_or(50);
    let slice: Vec<Uuid> = ids.iter().skip(*at).take(size).copied().collect();
    let rows = cards(pool, &slice, near).await?;
    let next = (at + size < ids.len()).then_some(Position::List {
        list: *list,
        at: at + size,
    });
    Ok(Page {
        cards: rows.into_iter().map(Into::into).collect(),
        next,
    })
}

/// The cards of `ids`, in that order (those still listed).
pub async fn cards(pool: &PgPool, ids: &[Uuid], near: Option<Near>) -> Result<Vec<CardRow>> {
    let mut q = QueryBuilder::<Postgres>::new("SELECT ");
    q.push(CARD_COLUMNS);
    match near {
        Some(n) => {
            q.push(", e.location <-> ST_SetSRID(ST_MakePoint(")
                .push_bind(n.longitude)
                .push(", ")
                .push_bind(n.latitude)
                .push("), 4326)::geography AS distance_m");
        }
        None => {
            q.push(", NULL::float8 AS distance_m");
        }
    }
    q.push(", 0::real AS score FROM events e WHERE e.listed AND e.ends_at > now() AND e.event_id = ANY(")
        .push_bind(ids.to_vec())
        .push(")");
    let rows = q.build_query_as::<CardRow>().fetch_all(pool).await?;
    let order: HashMap<Uuid, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let mut rows = rows;
    rows.sort_by_key(|r| order.get(&r.event_id).copied().unwrap_or(usize::MAX));
    Ok(rows)
}

/// Deletes ranked lists older than an hour (their tokens then expire).
pub async fn sweep_lists(pool: &PgPool) -> Result<u64> {
    Ok(
        sqlx::query!("DELETE FROM ranked_lists WHERE created_at < now() - interval '1 hour'")
            .execute(pool)
            .await?
            .rows_affected(),
    )
}

/// Unlists events that ended, keeping the partial indexes to what
/// discovery can show.
pub async fn sweep_ended(pool: &PgPool) -> Result<u64> {
    Ok(sqlx::query!(
        "UPDATE events SET listed = false WHERE listed AND ends_at < now() - interval '1 hour'"
    )
    .execute(pool)
    .await?
    .rows_affected())
}
