//! `loadgen seed-feed`: a city's worth of published events and joins, put
//! straight onto the event and join streams as the services would publish
//! them, for the feed's benchmark (`feed rebuild` then reads them back).
//! Writes query files beside: full-text, typo'd and geo search bodies, one
//! JSON body a line.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use prost::Message;
use uuid::Uuid;

use cityevents_messaging::{Envelope, NatsConfig, streams};
use cityevents_proto::cityevents::event::v1 as ev;
use cityevents_proto::cityevents::join::v1 as jn;

/// Cities with a zone and a centre.
const CITIES: &[(&str, &str, f64, f64)] = &[
    ("Berlin", "Europe/Berlin", 52.52, 13.405),
    ("Hamburg", "Europe/Berlin", 53.551, 9.993),
    ("München", "Europe/Berlin", 48.137, 11.575),
    ("Köln", "Europe/Berlin", 50.938, 6.96),
    ("Paris", "Europe/Paris", 48.857, 2.352),
    ("Lyon", "Europe/Paris", 45.764, 4.836),
    ("Madrid", "Europe/Madrid", 40.417, -3.704),
    ("Barcelona", "Europe/Madrid", 41.385, 2.173),
    ("Wien", "Europe/Vienna", 48.208, 16.373),
    ("Zürich", "Europe/Zurich", 47.377, 8.541),
    ("London", "Europe/London", 51.507, -0.128),
    ("Dublin", "Europe/Dublin", 53.35, -6.26),
    ("Amsterdam", "Europe/Amsterdam", 52.368, 4.904),
    ("København", "Europe/Copenhagen", 55.676, 12.568),
    ("Praha", "Europe/Prague", 50.075, 14.438),
    ("New York", "America/New_York", 40.713, -74.006),
    ("Chicago", "America/Chicago", 41.878, -87.63),
    ("Toronto", "America/Toronto", 43.653, -79.383),
    ("São Paulo", "America/Sao_Paulo", -23.55, -46.633),
    ("Tokyo", "Asia/Tokyo", 35.676, 139.65),
];
const CATEGORIES: &[&str] = &[
    "music",
    "tech",
    "sport",
    "food",
    "art",
    "theatre",
    "family",
    "outdoor",
    "books",
    "film",
    "dance",
    "community",
];
const ADJECTIVES: &[&str] = &[
    "Open",
    "Late",
    "Sunday",
    "Friday",
    "Midnight",
    "Morning",
    "Acoustic",
    "Electric",
    "Little",
    "Grand",
    "Secret",
    "Rooftop",
    "Riverside",
    "Garden",
    "Winter",
    "Summer",
    "Neighbourhood",
    "Underground",
    "Vintage",
    "Modern",
];
const NOUNS: &[&str] = &[
    "concert",
    "meetup",
    "festival",
    "workshop",
    "market",
    "reading",
    "jam",
    "run",
    "screening",
    "tasting",
    "exhibition",
    "quiz",
    "karaoke",
    "hackathon",
    "lecture",
    "picnic",
    "swing night",
    "jazz session",
    "poetry slam",
    "flea market",
    "choir",
    "salsa class",
    "board games",
    "yoga",
    "cycling tour",
    "photo walk",
    "wine tasting",
    "coding dojo",
    "book club",
    "open mic",
];
const TAGS: &[&str] = &[
    "free",
    "kids",
    "outdoor",
    "indoor",
    "beginners",
    "live",
    "vegan",
    "english",
    "deutsch",
    "français",
    "accessible",
    "dogs",
    "students",
    "night",
    "weekend",
];

/// A small, seedable generator (xorshift64*): no dependency, same data
/// every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

fn ts(secs: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: secs,
        nanos: 0,
    }
}

/// The user ids (`sub`) of access tokens, one a line.
fn subjects(tokens: &[String]) -> Vec<String> {
    tokens
        .iter()
        .filter_map(|t| {
            let payload = t.split('.').nth(1)?;
            let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .ok()?;
            let v: serde_json::Value = serde_json::from_slice(&raw).ok()?;
            v["sub"].as_str().map(str::to_owned)
        })
        .collect()
}

/// What to seed.
pub struct Seed<'a> {
    pub nats: NatsConfig,
    pub events: usize,
    pub joins: usize,
    /// Joiners: the people of these tokens (so "for you" has histories).
    pub tokens: &'a [String],
    pub out: &'a Path,
}

/// Publishes the events, then the joins; writes the query files.
pub async fn run(s: Seed<'_>) -> anyhow::Result<()> {
    let js = cityevents_messaging::connect(&s.nats).await?;
    let prefix = &s.nats.stream_prefix;
    streams::ensure_stream(&js, prefix, "event").await?;
    streams::ensure_stream(&js, prefix, "join").await?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let organizers: Vec<String> = (0..2_000).map(|_| Uuid::now_v7().to_string()).collect();
    let mut ids = Vec::with_capacity(s.events);
    let mut capacity = Vec::with_capacity(s.events);
    let started = std::time::Instant::now();
    let mut pending = Vec::new();
    for i in 0..s.events {
        let (city, zone, lat, lon) = CITIES[rng.below(CITIES.len())];
        // Within about 15 km of the centre.
        let (dlat, dlon) = ((rng.unit() - 0.5) * 0.27, (rng.unit() - 0.5) * 0.4);
        let title = format!("{} {}", rng.pick(ADJECTIVES), rng.pick(NOUNS));
        let starts = now + 3_600 + rng.below(90 * 86_400) as i64;
        let cap = if rng.below(5) == 0 {
            0
        } else {
            10 + rng.below(490) as i32
        };
        let id = Uuid::now_v7().to_string();
        let draft = ev::EventDraft {
            description: format!(
                "{title} in {city}: come along, bring friends. Number {i} of the season."
            ),
            category: rng.pick(CATEGORIES).into(),
            tags: (0..rng.below(4))
                .map(|_| rng.pick(TAGS).to_owned())
                .collect(),
            starts_at: Some(ts(starts)),
            ends_at: Some(ts(starts + 7_200)),
            time_zone: zone.into(),
            location: Some(ev::event_draft::Location::Venue(ev::Venue {
                name: format!("{} Hall", rng.pick(ADJECTIVES)),
                address: format!("Street {}", rng.below(200)),
                city: city.into(),
                latitude: lat + dlat,
                longitude: lon + dlon,
            })),
            capacity: cap,
            visibility: ev::Visibility::Public as i32,
            title,
            ..Default::default()
        };
        let event = ev::Event {
            id: id.clone(),
            draft: Some(draft),
            status: ev::EventStatus::Published as i32,
            organizer_id: organizers[rng.below(organizers.len())].clone(),
            version: 2,
            ..Default::default()
        };
        let payload = ev::EventChanged { event: Some(event) }.encode_to_vec();
        pending.push(publish(&js, prefix, "event.published", "event", &id, payload).await?);
        ids.push(id);
        capacity.push(cap);
        if pending.len() >= 2_000 {
            settle(&mut pending).await?;
        }
    }
    settle(&mut pending).await?;
    let published = started.elapsed();
    let people = subjects(s.tokens);
    anyhow::ensure!(
        !people.is_empty() || s.joins == 0,
        "no user ids in the tokens"
    );
    let mut confirmed = vec![0i32; ids.len()];
    for _ in 0..s.joins {
        // Popularity falls off steeply: a few events draw most joins.
        let e = ((rng.unit().powi(3)) * ids.len() as f64) as usize % ids.len();
        if capacity[e] != 0 && confirmed[e] >= capacity[e] {
            continue;
        }
        confirmed[e] += 1;
        let registration = jn::Registration {
            id: Uuid::now_v7().to_string(),
            event_id: ids[e].clone(),
            user_id: people[rng.below(people.len())].clone(),
            tier_id: "default".into(),
            status: jn::RegistrationStatus::Confirmed as i32,
            created_at: Some(ts(now - rng.below(72 * 3_600) as i64)),
            ..Default::default()
        };
        let counts = jn::GetCountsResponse {
            event_id: ids[e].clone(),
            confirmed: confirmed[e],
            ..Default::default()
        };
        let payload = jn::RegistrationChanged {
            registration: Some(registration),
            event_title: String::new(),
            counts: Some(counts),
        }
        .encode_to_vec();
        pending.push(publish(&js, prefix, "join.confirmed", "join", &ids[e], payload).await?);
        if pending.len() >= 2_000 {
            settle(&mut pending).await?;
        }
    }
    settle(&mut pending).await?;
    println!(
        "seeded {} events (in {:.1} s) and {} joins of {} people on {prefix}",
        ids.len(),
        published.as_secs_f64(),
        s.joins,
        people.len()
    );
    write_queries(s.out, &mut rng)
}

type Ack = async_nats::jetstream::context::PublishAckFuture;

async fn publish(
    js: &async_nats::jetstream::Context,
    prefix: &str,
    kind: &str,
    producer: &str,
    aggregate: &str,
    payload: Vec<u8>,
) -> anyhow::Result<Ack> {
    let env = Envelope {
        id: Uuid::now_v7().to_string(),
        r#type: kind.into(),
        producer: producer.into(),
        aggregate_id: aggregate.into(),
        payload,
        ..Default::default()
    };
    js.publish(streams::subject(prefix, kind), env.encode_to_vec().into())
        .await
        .map_err(|e| anyhow::anyhow!("publish {kind}: {e}"))
}

async fn settle(pending: &mut Vec<Ack>) -> anyhow::Result<()> {
    for ack in pending.drain(..) {
        tokio::time::timeout(Duration::from_secs(30), ack)
            .await
            .map_err(|_| anyhow::anyhow!("no ack in 30 s"))?
            .map_err(|e| anyhow::anyhow!("ack: {e}"))?;
    }
    Ok(())
}

/// A word with one letter dropped or two swapped.
fn typo(word: &str, rng: &mut Rng) -> String {
    let chars: Vec<char> = word.chars().collect();
    if chars.len() < 5 {
        return word.to_owned();
    }
    let i = 1 + rng.below(chars.len() - 2);
    let mut out = chars.clone();
    if rng.below(2) == 0 {
        out.remove(i);
    } else {
        out.swap(i, i + 1);
    }
    out.into_iter().collect()
}

/// fts.txt, typo.txt, geo.txt: 5,000 search bodies each.
fn write_queries(dir: &Path, rng: &mut Rng) -> anyhow::Result<()> {
    let (mut fts, mut typos, mut geo) = (String::new(), String::new(), String::new());
    for _ in 0..5_000 {
        let noun = rng.pick(NOUNS);
        let q = if rng.below(2) == 0 {
            format!("{} {noun}", rng.pick(ADJECTIVES).to_lowercase())
        } else {
            noun.to_owned()
        };
        writeln!(fts, r#"{{"query":"{q}","page_size":20}}"#)?;
        let word = noun.split(' ').next().unwrap_or(noun);
        writeln!(typos, r#"{{"query":"{}","page_size":20}}"#, typo(word, rng))?;
        let (_, _, lat, lon) = CITIES[rng.below(CITIES.len())];
        let (lat, lon) = (
            lat + (rng.unit() - 0.5) * 0.1,
            lon + (rng.unit() - 0.5) * 0.1,
        );
        writeln!(
            geo,
            r#"{{"near":{{"latitude":{lat:.5},"longitude":{lon:.5},"radius_km":3}},"sort":"SORT_DISTANCE","page_size":20}}"#
        )?;
    }
    std::fs::write(dir.join("fts.txt"), fts)?;
    std::fs::write(dir.join("typo.txt"), typos)?;
    std::fs::write(dir.join("geo.txt"), geo)?;
    Ok(())
}
