//! A search request, checked and normalised: what [`crate::search`] runs.
//! Bad input is INVALID_ARGUMENT naming the field; nothing here touches SQL.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use cityevents_proto::cityevents::feed::v1 as pb;
use cityevents_runtime::{Error, Result, parse};

/// Characters of a query at most.
const MAX_QUERY_CHARS: usize = 200;
/// Words (and phrases) of a query at most.
const MAX_TERMS: usize = 16;
/// Categories or tags in a filter at most.
const MAX_LIST: usize = 20;
/// Half the Earth's circumference, in km.
const MAX_RADIUS_KM: f64 = 20_038.0;

/// Free text, split into what full-text and typo-tolerant matching need.
#[derive(Debug, Clone, PartialEq)]
pub struct Text {
    /// A `to_tsquery` expression of plain words only (letters and digits),
    /// so no input can make it invalid: `a & b:*`, `(a <-> b)`, `!c`, `a | b`.
    pub tsquery: String,
    /// The positive words, lower-cased and space-separated, for `pg_trgm`.
    pub words: String,
    /// A quoted phrase asks for exactly those words: no typo tolerance.
    pub exact: bool,
}

/// A point and a radius in metres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Near {
    pub latitude: f64,
    pub longitude: f64,
    pub radius_m: f64,
}

/// Local dates, read in one zone or in each event's own.
#[derive(Debug, Clone, PartialEq)]
pub enum Dates {
    /// Turned into instants already (the caller's zone).
    Caller,
    /// `from`..=`to` in each event's zone.
    EventZone {
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Order {
    Soonest,
    Relevance,
    Distance,
    Trending,
}

/// A checked search.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    pub text: Option<Text>,
    pub categories: Vec<String>,
    pub tags: Vec<String>,
    pub city: Option<String>,
    pub near: Option<Near>,
    pub starts_after: Option<DateTime<Utc>>,
    pub starts_before: Option<DateTime<Utc>>,
    pub dates: Option<Dates>,
    pub free_only: bool,
    pub online: Option<bool>,
    pub order: Order,
    pub size: i64,
    /// Whether later pages may be asked for (GetTrending has one page).
    pub paged: bool,
}

impl Search {
    /// Checks `r` (its page token is the caller's business).
    pub fn parse(r: &pb::SearchRequest) -> Result<Self> {
        let text = Text::parse(&r.query)?;
        let near = r.near.as_ref().map(Near::parse).transpose()?;
        let mut starts_after = optional_time("starts_after", r.starts_after.as_ref())?;
        let mut starts_before = optional_time("starts_before", r.starts_before.as_ref())?;
        let from = date("from_date", &r.from_date)?;
        let to = date("to_date", &r.to_date)?;
        if let (Some(f), Some(t)) = (from, to)
            && t < f
        {
            return Err(Error::invalid("to_date", "is before from_date"));
        }
        let dates = if from.is_none() && to.is_none() {
            if !r.date_time_zone.is_empty() {
                zone(&r.date_time_zone)?;
            }
            None
        } else if r.date_time_zone.is_empty() {
            Some(Dates::EventZone { from, to })
        } else {
            // Local midnights in the caller's zone become instants.
            let tz = zone(&r.date_time_zone)?;
            if let Some(f) = from {
                starts_after = later(starts_after, midnight(tz, f));
            }
            if let Some(t) = to {
                starts_before = earlier(starts_before, midnight(tz, t.succ_opt().unwrap_or(t)));
            }
            Some(Dates::Caller)
        };
        let sort = pb::Sort::try_from(r.sort)
            .map_err(|_| Error::invalid("sort", format!("{} is not a sort", r.sort)))?;
        let order = match sort {
            pb::Sort::Unspecified if text.is_some() => Order::Relevance,
            pb::Sort::Unspecified | pb::Sort::Soonest => Order::Soonest,
            pb::Sort::Relevance if text.is_none() => {
                return Err(Error::invalid("sort", "relevance needs a query"));
            }
            pb::Sort::Relevance => Order::Relevance,
            pb::Sort::Distance if near.is_none() => {
                return Err(Error::invalid("sort", "distance needs near"));
            }
            pb::Sort::Distance => Order::Distance,
            pb::Sort::Trending => Order::Trending,
        };
        let online = match pb::Attendance::try_from(r.attendance) {
            Ok(pb::Attendance::Unspecified) => None,
            Ok(pb::Attendance::InPerson) => Some(false),
            Ok(pb::Attendance::Online) if near.is_some() => {
                return Err(Error::invalid(
                    "attendance",
                    "online events are near nothing: drop near",
                ));
            }
            Ok(pb::Attendance::Online) => Some(true),
            Err(_) => return Err(Error::invalid("attendance", "is not an attendance")),
        };
        let city = r.city.trim();
        if city.chars().count() > 100 {
            return Err(Error::invalid("city", "is longer than 100 characters"));
        }
        Ok(Self {
            text,
            categories: list("categories", &r.categories)?,
            tags: list("tags", &r.tags)?,
            city: (!city.is_empty()).then(|| city.to_owned()),
            near,
            starts_after,
            starts_before,
            dates,
            free_only: r.free_seats_only,
            online,
            order,
            size: parse::page_size(r.page_size),
            paged: true,
        })
    }
}

impl Near {
    pub fn parse(g: &pb::GeoFilter) -> Result<Self> {
        let field = "near";
        if !(-90.0..=90.0).contains(&g.latitude) {
            return Err(Error::invalid(field, "latitude must be -90 to 90"));
        }
        if !(-180.0..=180.0).contains(&g.longitude) {
            return Err(Error::invalid(field, "longitude must be -180 to 180"));
        }
        if !(g.radius_km > 0.0 && g.radius_km <= MAX_RADIUS_KM) {
            return Err(Error::invalid(
                field,
                "radius_km must be above 0 and at most 20038",
            ));
        }
        Ok(Self {
            latitude: g.latitude,
            longitude: g.longitude,
            radius_m: g.radius_km * 1000.0,
        })
    }
}

impl Text {
    /// `None` for a query with no words.
    pub fn parse(raw: &str) -> Result<Option<Self>> {
        if raw.chars().count() > MAX_QUERY_CHARS {
            return Err(Error::invalid("query", "is longer than 200 characters"));
        }
        let mut terms: Vec<String> = Vec::new();
        let mut positive: Vec<String> = Vec::new();
        let mut exact = false;
        let mut pending_or = false;
        let mut rest = raw;
        while let Some(c) = rest.chars().next() {
            if c.is_whitespace() {
                rest = &rest[c.len_utf8()..];
                continue;
            }
            let (term, consumed) = if c == '"' {
                let body = &rest[1..];
                let end = body.find('"').unwrap_or(body.len());
                let phrase = words(&body[..end]);
                exact = true;
                let consumed = 1 + end + usize::from(end < body.len());
                positive.extend(phrase.iter().cloned());
                let term = match phrase.len() {
                    0 => None,
                    1 => Some(phrase[0].clone()),
                    _ => Some(format!("({})", phrase.join(" <-> "))),
                };
                (term, consumed)
            } else {
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                let token = &rest[..end];
                let (negated, body) = match token.strip_prefix('-') {
                    Some(b) => (true, b),
                    None => (false, token),
                };
                if !negated && token.eq_ignore_ascii_case("or") {
                    pending_or = !terms.is_empty();
                    rest = &rest[end..];
                    continue;
                }
                let ws = words(body);
                if !negated {
                    positive.extend(ws.iter().cloned());
                }
                // Search as you type: a last plain word still being typed
                // also matches longer words.
                let typing = end == rest.len();
                let term = match ws.len() {
                    0 => None,
                    1 if negated => Some(format!("!{}", ws[0])),
                    1 if typing => Some(format!("{}:*", ws[0])),
                    1 => Some(ws[0].clone()),
                    _ if negated => Some(format!("!({})", ws.join(" <-> "))),
                    _ => Some(format!("({})", ws.join(" <-> "))),
                };
                (term, end)
            };
            rest = &rest[consumed..];
            if let Some(term) = term {
                if terms.len() == MAX_TERMS {
                    return Err(Error::invalid("query", "has more than 16 words or phrases"));
                }
                if pending_or && let Some(prev) = terms.pop() {
                    terms.push(format!("({prev} | {term})"));
                } else {
                    terms.push(term);
                }
                pending_or = false;
            }
        }
        if terms.is_empty() || positive.is_empty() {
            // Only exclusions would match nearly everything: treat as no
            // query unless there is at least one word to look for.
            return Ok(None);
        }
        Ok(Some(Self {
            tsquery: terms.join(" & "),
            words: positive.join(" "),
            exact,
        }))
    }
}

/// A search from `key=value` words (`feed explain`): query, city, category,
/// near=LAT,LON,KM, sort=soonest|relevance|distance|trending, and tsquery=
/// (the text query as corrected, e.g. `(concrt | concert)`).
pub fn from_words(words: &[String]) -> anyhow::Result<(pb::SearchRequest, Option<String>)> {
    let mut r = pb::SearchRequest::default();
    let mut tsquery = None;
    for w in words {
        let (k, v) = w
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("{w:?}: expected key=value"))?;
        match k {
            "query" => r.query = v.into(),
            "city" => r.city = v.into(),
            "category" => r.categories.push(v.into()),
            "tsquery" => tsquery = Some(v.to_owned()),
            "near" => {
                let n: Vec<f64> = v.split(',').map(str::parse).collect::<Result<_, _>>()?;
                anyhow::ensure!(n.len() == 3, "near=LAT,LON,KM");
                r.near = Some(pb::GeoFilter {
                    latitude: n[0],
                    longitude: n[1],
                    radius_km: n[2],
                });
            }
            "sort" => {
                r.sort = match v {
                    "soonest" => pb::Sort::Soonest,
                    "relevance" => pb::Sort::Relevance,
                    "distance" => pb::Sort::Distance,
                    "trending" => pb::Sort::Trending,
                    _ => anyhow::bail!("sort={v}: soonest, relevance, distance or trending"),
                } as i32
            }
            _ => anyhow::bail!("{k}: query, city, category, near, sort or tsquery"),
        }
    }
    Ok((r, tsquery))
}

impl Text {
    /// The query with each word of `fixes` widened to itself or its fix
    /// (`concrt:*` → `(concrt:* | concert:*)`); excluded words stay as typed.
    pub fn widened(&self, fixes: &std::collections::HashMap<String, String>) -> String {
        let mut out = String::with_capacity(self.tsquery.len() * 2);
        let mut rest = self.tsquery.as_str();
        // `!word` and every word inside `!( … )` are exclusions.
        let (mut bang, mut depth, mut excluded_at) = (false, 0usize, None);
        while let Some(c) = rest.chars().next() {
            if !c.is_alphanumeric() {
                match c {
                    '!' => bang = true,
                    '(' => {
                        depth += 1;
                        if bang && excluded_at.is_none() {
                            excluded_at = Some(depth);
                        }
                        bang = false;
                    }
                    ')' => {
                        if excluded_at == Some(depth) {
                            excluded_at = None;
                        }
                        depth = depth.saturating_sub(1);
                    }
                    _ => {}
                }
                out.push(c);
                rest = &rest[c.len_utf8()..];
                continue;
            }
            let negated = bang || excluded_at.is_some();
            bang = false;
            let end = rest
                .find(|c: char| !c.is_alphanumeric())
                .unwrap_or(rest.len());
            let word = &rest[..end];
            rest = &rest[end..];
            let prefix = if let Some(r) = rest.strip_prefix(":*") {
                rest = r;
                ":*"
            } else {
                ""
            };
            match fixes.get(word) {
                Some(fix) if !negated => {
                    out.push_str(&format!("({word}{prefix} | {fix}{prefix})"));
                }
                _ => {
                    out.push_str(word);
                    out.push_str(prefix);
                }
            }
        }
        out
    }
}

/// The runs of letters and digits in `s`, lower-cased.
fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn list(field: &str, items: &[String]) -> Result<Vec<String>> {
    if items.len() > MAX_LIST {
        return Err(Error::invalid(field, "has more than 20 entries"));
    }
    let out: Vec<String> = items
        .iter()
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    if out.iter().any(|s| s.chars().count() > 50) {
        return Err(Error::invalid(
            field,
            "has an entry longer than 50 characters",
        ));
    }
    Ok(out)
}

fn optional_time(field: &str, t: Option<&prost_types::Timestamp>) -> Result<Option<DateTime<Utc>>> {
    t.map(|t| parse::time(field, Some(t))).transpose()
}

fn date(field: &str, raw: &str) -> Result<Option<NaiveDate>> {
    if raw.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| Error::invalid(field, "must be a date like 2026-12-24"))
}

fn zone(raw: &str) -> Result<Tz> {
    raw.parse().map_err(|_| {
        Error::invalid(
            "date_time_zone",
            "is not an IANA time zone like Europe/Berlin",
        )
    })
}

/// The first instant of `day` in `tz` (a day starting in a DST gap starts
/// when the gap ends).
fn midnight(tz: Tz, day: NaiveDate) -> DateTime<Utc> {
    let mut t = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    for _ in 0..4 {
        if let Some(local) = tz.from_local_datetime(&t).earliest() {
            return local.with_timezone(&Utc);
        }
        t += chrono::Duration::minutes(30);
    }
    Utc.from_utc_datetime(&t)
}

fn later(a: Option<DateTime<Utc>>, b: DateTime<Utc>) -> Option<DateTime<Utc>> {
    Some(a.map_or(b, |a| a.max(b)))
}

fn earlier(a: Option<DateTime<Utc>>, b: DateTime<Utc>) -> Option<DateTime<Utc>> {
    Some(a.map_or(b, |a| a.min(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(raw: &str) -> String {
        Text::parse(raw).unwrap().unwrap().tsquery
    }

    #[test]
    fn words_are_anded_and_the_last_is_a_prefix() {
        assert_eq!(ts("jazz Berlin"), "jazz & berlin:*");
        assert_eq!(ts("jazz berlin "), "jazz & berlin");
    }

    #[test]
    fn quotes_make_phrases_and_minus_excludes() {
        assert_eq!(ts("\"open air\" -rock"), "(open <-> air) & !rock");
        assert_eq!(ts("\"open air"), "(open <-> air)");
    }

    #[test]
    fn corrections_widen_words_but_not_exclusions() {
        let t = Text::parse("concrt -jazz -opn-air \"opn air\" parc")
            .unwrap()
            .unwrap();
        let fixes = [
            ("concrt", "concert"),
            ("jazz", "jam"),
            ("opn", "open"),
            ("parc", "park"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .into();
        assert_eq!(
            t.widened(&fixes),
            "(concrt | concert) & !jazz & !(opn <-> air) & ((opn | open) <-> air) & (parc:* | park:*)"
        );
    }

    #[test]
    fn or_joins_its_neighbours() {
        assert_eq!(ts("jazz or blues"), "(jazz | blues:*)");
    }

    #[test]
    fn punctuation_cannot_break_the_query() {
        assert_eq!(ts("a&b|c:*!(d) 'e'"), "(a <-> b <-> c <-> d) & e:*");
        assert_eq!(Text::parse("&&& !!! ()").unwrap(), None);
        assert_eq!(Text::parse("-rock").unwrap(), None);
    }

    #[test]
    fn caller_dates_become_local_midnights() {
        let r = pb::SearchRequest {
            from_date: "2026-12-24".into(),
            to_date: "2026-12-24".into(),
            date_time_zone: "Europe/Berlin".into(),
            ..Default::default()
        };
        let s = Search::parse(&r).unwrap();
        assert_eq!(
            s.starts_after.unwrap().to_rfc3339(),
            "2026-12-23T23:00:00+00:00"
        );
        assert_eq!(
            s.starts_before.unwrap().to_rfc3339(),
            "2026-12-24T23:00:00+00:00"
        );
    }

    #[test]
    fn nonsense_is_refused_with_the_field_named() {
        let bad = |r: pb::SearchRequest| Search::parse(&r).unwrap_err().message().to_owned();
        assert!(
            bad(pb::SearchRequest {
                from_date: "24.12.2026".into(),
                ..Default::default()
            })
            .contains("from_date")
        );
        assert!(
            bad(pb::SearchRequest {
                sort: pb::Sort::Distance as i32,
                ..Default::default()
            })
            .contains("distance needs near")
        );
        let far = pb::GeoFilter {
            latitude: 91.0,
            longitude: 0.0,
            radius_km: 1.0,
        };
        assert!(
            bad(pb::SearchRequest {
                near: Some(far),
                ..Default::default()
            })
            .contains("latitude")
        );
        assert!(
            bad(pb::SearchRequest {
                date_time_zone: "Mars/Olympus".into(),
                ..Default::default()
            })
            .contains("IANA")
        );
    }
}
