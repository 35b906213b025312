-- The discovery read model: listed events, the registrations that feed
-- trending, "for you" and calendars, and ranked lists that page stably.
-- Built only from the event and join streams (see src/projection.rs).
-- The outbox and inbox come from cityevents-messaging.

CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE EXTENSION IF NOT EXISTS postgis;

-- unaccent() is only STABLE (its dictionary could change), so it cannot
-- appear in a generated column or an index; this wrapper names the
-- dictionary and is declared IMMUTABLE, the usual way to index unaccented text.
CREATE FUNCTION f_unaccent(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN public.unaccent('public.unaccent'::regdictionary, $1);

-- array_to_string() is STABLE for any array; for text[] it is immutable.
CREATE FUNCTION f_words(text[]) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN array_to_string($1, ' ');

CREATE TABLE events (
    event_id      uuid PRIMARY KEY,
    version       bigint NOT NULL,
    -- Public, published and not hidden: what discovery may show (past
    -- events are left out by the queries, not here).
    listed        boolean NOT NULL,
    status        text NOT NULL,
    organizer_id  uuid NOT NULL,
    title         text NOT NULL,
    description   text NOT NULL,
    category      text NOT NULL,
    -- Lower-cased.
    tags          text[] NOT NULL,
    venue_name    text NOT NULL,
    city          text NOT NULL,
    city_key      text GENERATED ALWAYS AS (lower(f_unaccent(city))) STORED,
    starts_at     timestamptz NOT NULL,
    ends_at       timestamptz NOT NULL,
    time_zone     text NOT NULL,
    -- The start's date in the event's own zone (date filters in "each
    -- event's zone" compare with it).
    local_date    date NOT NULL,
    online        boolean NOT NULL,
    -- NULL when online.
    location      geography(Point, 4326),
    latitude      double precision NOT NULL,
    longitude     double precision NOT NULL,
    -- 0 means unlimited.
    capacity      integer NOT NULL,
    cover_image_id text NOT NULL,
    -- Title (A), tags (B), venue and city (C), description (D).
    search        tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', f_unaccent(title)), 'A') ||
        setweight(to_tsvector('english', f_unaccent(f_words(tags))), 'B') ||
        setweight(to_tsvector('english', f_unaccent(venue_name || ' ' || city)), 'C') ||
        setweight(to_tsvector('english', f_unaccent(description)), 'D')) STORED,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Every index is partial on `listed`: discovery never reads the rest.
CREATE INDEX events_starts ON events (starts_at, event_id) WHERE listed;
CREATE INDEX events_search ON events USING gin (search) WHERE listed;
CREATE INDEX events_location ON events USING gist (location) WHERE listed;
CREATE INDEX events_organizer ON events (organizer_id, starts_at) WHERE listed;
CREATE INDEX events_category ON events (category, starts_at) WHERE listed;
CREATE INDEX events_local_date ON events (local_date) WHERE listed;
CREATE INDEX events_city ON events (city_key, starts_at) WHERE listed;
CREATE INDEX events_tags ON events USING gin (tags) WHERE listed;

-- What joins move, apart from the card: every join would otherwise
-- rewrite the event's row and, since heat is indexed, re-enter it into
-- every index of `events` (the GIN ones are dear). A row may come before
-- its event's (the streams are not ordered with each other).
CREATE TABLE event_stats (
    event_id   uuid PRIMARY KEY,
    confirmed  integer NOT NULL DEFAULT 0,
    waitlisted integer NOT NULL DEFAULT 0,
    -- The envelope id (UUIDv7, time-ordered) of the join message the counts
    -- came from: older counts never overwrite newer ones.
    counts_seq uuid,
    -- ln(sum over joins of exp((joined_at - 2026-01-01) / 36 h)): the
    -- decayed join count in log space. Decay scales every event alike, so
    -- ordering by heat is ordering by the decayed count at any moment.
    heat       double precision
);
CREATE INDEX event_stats_heat ON event_stats (heat DESC) WHERE heat IS NOT NULL;

-- Every word of titles, tags, venues and cities (unaccented, lower case):
-- a query word that finds nothing is corrected to its nearest neighbour
-- here ("concrt" -> "concert"), then searched as text again. Far cheaper
-- than comparing trigrams against every event.
CREATE TABLE lexicon (
    word text PRIMARY KEY
);
CREATE INDEX lexicon_trigrams ON lexicon USING gist (word gist_trgm_ops);

-- Registrations as the join stream tells them: for trending (first sight
-- adds heat), "for you" (what a user joined) and calendars.
CREATE TABLE registrations (
    registration_id uuid PRIMARY KEY,
    event_id        uuid NOT NULL,
    user_id         uuid NOT NULL,
    -- confirmed, waitlisted, cancelled, removed, checked_in
    status          text NOT NULL,
    joined_at       timestamptz NOT NULL,
    seq             uuid NOT NULL
);
CREATE INDEX registrations_user ON registrations (user_id);

-- Secret calendar links, one per user (rotating replaces it).
CREATE TABLE calendar_secrets (
    user_id     uuid PRIMARY KEY,
    -- SHA-256 of the secret.
    secret_hash bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A ranked list computed once ("for you", trending order), so its pages
-- neither skip nor repeat while the ranking moves. Swept after an hour.
CREATE TABLE ranked_lists (
    list_id    uuid PRIMARY KEY,
    event_ids  uuid[] NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
