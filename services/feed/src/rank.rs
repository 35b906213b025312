//! Rankings that move while someone pages through them — trending and
//! "for you" — are computed once, stored as a ranked list of ids, and paged
//! from it: no item skipped or repeated however the ranking moves.

use std::collections::{HashMap, VecDeque};

use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use cityevents_runtime::{Error, Result};

use crate::query::{Near, Search};
use crate::search::{CardRow, EVENT_COLUMNS, Page, Position, STATS_COLUMNS};

/// Events of one organizer at most among any ten consecutive "for you" items.
const ORGANIZER_SHARE: usize = 2;
const WINDOW: usize = 10;

/// A trending page: the search's filters over the hottest events, by heat
/// with events starting within 48 hours counted double.
pub async fn trending_page(
    pool: &PgPool,
    search: &Search,
    after: Option<&Position>,
    max_candidates: i64,
) -> Result<Page> {
    if let Some(p) = after {
        return list_page(pool, p, search.size, search.near).await;
    }
    // One page only (GetTrending) needs no more than that page.
    let ranked = if search.paged {
        max_candidates
    } else {
        search.size
    };
    let mut q = QueryBuilder::<Postgres>::new("");
    crate::search::build(&mut q, search, None, None, ranked);
    let rows = q.build_query_as::<CardRow>().fetch_all(pool).await?;
    first_page(pool, rows, search.size).await
}

/// What a person's joins say they like: weights by category, tag and
/// organizer (ln(1 + joins)), and what they joined already.
#[derive(Debug, Default)]
pub struct Taste {
    categories: HashMap<String, f64>,
    tags: HashMap<String, f64>,
    organizers: HashMap<Uuid, f64>,
    joined: Vec<Uuid>,
}

impl Taste {
    async fn of(pool: &PgPool, user: Uuid) -> Result<Self> {
        let rows = sqlx::query!(
            "SELECT r.event_id, e.category, e.tags, e.organizer_id FROM registrations r JOIN events e USING (event_id)
             WHERE r.user_id = $1 AND r.status <> 'cancelled' ORDER BY r.joined_at DESC LIMIT 500",
            user
        )
        .fetch_all(pool)
        .await?;
        let mut t = Self::default();
        let count = |m: &mut HashMap<_, f64>, k| *m.entry(k).or_default() += 1.0;
        for r in rows {
            count(&mut t.categories, r.category);
            for tag in r.tags {
                count(&mut t.tags, tag);
            }
            *t.organizers.entry(r.organizer_id).or_default() += 1.0;
            t.joined.push(r.event_id);
        }
        for w in t
            .categories
            .values_mut()
            .chain(t.tags.values_mut())
            .chain(t.organizers.values_mut())
        {
            *w = w.ln_1p();
        }
        Ok(t)
    }

    /// The `n` heaviest keys of `m`.
    fn top<K: Clone + Ord>(m: &HashMap<K, f64>, n: usize) -> Vec<K> {
        let mut v: Vec<(&K, &f64)> = m.iter().collect();
        v.sort_by(|a, b| b.1.total_cmp(a.1).then_with(|| a.0.cmp(b.0)));
        v.into_iter().take(n).map(|(k, _)| k.clone()).collect()
    }

    /// How much `c` is like what was joined.
    fn affinity(&self, c: &CardRow) -> f64 {
        let tags: f64 = c.tags.iter().filter_map(|t| self.tags.get(t)).sum();
        self.categories.get(&c.category).copied().unwrap_or(0.0)
            + 0.5 * tags
            + 1.5 * self.organizers.get(&c.organizer_id).copied().unwrap_or(0.0)
    }
}

/// Candidates "for you" takes from each source: the soonest events of
/// each of the 3 favourite categories, of each of the 5 favourite
/// organizers, the hottest, and the soonest close by (about 300 at most).
const PER_CATEGORY: i64 = 40;
const PER_ORGANIZER: i64 = 10;
const HOTTEST: i64 = 60;
const NEARBY: i64 = 60;

/// A "for you" page for `user`: events of the categories and organizers
/// they joined most, the hottest, and (with `near`) those close by, scored
/// by likeness, heat, closeness and soonness, then spread across organizers.
pub async fn for_you_page(
    pool: &PgPool,
    user: Uuid,
    near: Option<Near>,
    size: i64,
    after: Option<&Position>,
) -> Result<Page> {
    if let Some(p) = after {
        return list_page(pool, p, size, near).await;
    }
    let taste = Taste::of(pool, user).await?;
    let (lat, lon, radius) = match near {
        Some(n) => (Some(n.latitude), Some(n.longitude), Some(n.radius_m)),
        None => (None, None, None),
    };
    let categories = Taste::top(&taste.categories, 3);
    let organizers = Taste::top(&taste.organizers, 5);
    // Each source walks an index in start (or heat) order.
    let ids = sqlx::query_scalar!(
        r#"SELECT c.event_id AS "event_id!" FROM unnest($1::text[]) cat, LATERAL (
             SELECT event_id FROM events WHERE listed AND category = cat AND ends_at > now()
             ORDER BY starts_at LIMIT $2) c
           UNION
           SELECT o.event_id FROM unnest($3::uuid[]) org, LATERAL (
             SELECT event_id FROM events WHERE listed AND organizer_id = org AND ends_at > now()
             ORDER BY starts_at LIMIT $4) o
           UNION
           (SELECT event_id FROM event_stats WHERE heat IS NOT NULL ORDER BY heat DESC LIMIT $5)
           UNION
           (SELECT event_id FROM events WHERE listed AND ends_at > now() AND $6::float8 IS NOT NULL
              AND ST_DWithin(location, ST_SetSRID(ST_MakePoint($7::float8, $6::float8), 4326)::geography, $8::float8)
            ORDER BY starts_at LIMIT $9)"#,
        &categories,
        PER_CATEGORY,
        &organizers,
        PER_ORGANIZER,
        HOTTEST,
        lat,
        lon,
        radius,
        NEARBY
    )
    .fetch_all(pool)
    .await?;
    let joined: std::collections::HashSet<Uuid> = taste.joined.iter().copied().collect();
    let ids: Vec<Uuid> = ids.into_iter().filter(|id| !joined.contains(id)).collect();
    let rows: Vec<CardRow> = cards(pool, &ids, near)
        .await?
        .into_iter()
        .filter(|r| match (near, r.distance_m) {
            (Some(n), Some(d)) => d <= n.radius_m,
            (Some(_), None) => r.online,
            (None, _) => true,
        })
        .collect();
    first_page(pool, diversify(rank(&taste, rows)), size).await
}

/// Orders candidates by likeness, heat (relative to the hottest, 0–1),
/// closeness (1 at the spot, ½ at 10 km) and a nudge for this week.
fn rank(taste: &Taste, rows: Vec<CardRow>) -> Vec<CardRow> {
    let hottest = rows
        .iter()
        .map(|r| f64::from(r.score))
        .fold(f64::MIN, f64::max);
    let soon = chrono::Utc::now() + chrono::Duration::days(7);
    let mut scored: Vec<(f64, CardRow)> = rows
        .into_iter()
        .map(|r| {
            let heat = f64::from(r.score);
            let trend = if heat > -1e8 {
                (heat - hottest).exp()
            } else {
                0.0
            };
            let near = r.distance_m.map_or(0.0, |m| 1.0 / (1.0 + m / 10_000.0));
            let week = if r.starts_at < soon { 0.3 } else { 0.0 };
            (taste.affinity(&r) + trend + near + week, r)
        })
        .collect();
    scored.sort_by(|(a, x), (b, y)| {
        b.total_cmp(a)
            .then(x.starts_at.cmp(&y.starts_at))
            .then(x.event_id.cmp(&y.event_id))
    });
    scored.into_iter().map(|(_, r)| r).collect()
}

/// Reorders `rows` so no organizer has more than [`ORGANIZER_SHARE`] events
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
            >= ORGANIZER_SHARE
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
/// `score` carries the event's heat (-1e9 for none).
pub async fn cards(pool: &PgPool, ids: &[Uuid], near: Option<Near>) -> Result<Vec<CardRow>> {
    let mut q = QueryBuilder::<Postgres>::new("SELECT ");
    q.push(EVENT_COLUMNS).push(", ").push(STATS_COLUMNS);
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
    q.push(", coalesce(s.heat, -1e9)::real AS score")
        .push(" FROM events e LEFT JOIN event_stats s ON s.event_id = e.event_id")
        .push(" WHERE e.listed AND e.ends_at > now() AND e.event_id = ANY(")
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
