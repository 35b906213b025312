-- Registrations, the event snapshots they are checked against, per-tier
-- counters and idempotency keys. The outbox and inbox come from
-- cityevents-messaging.

-- What join knows of an event, built from the event stream (with a gRPC
-- fallback). Its row is the lock every join, leave and promotion of the
-- event takes first.
CREATE TABLE event_snapshots (
    event_id          uuid PRIMARY KEY,
    version           bigint NOT NULL,
    status            text NOT NULL,
    hidden            boolean NOT NULL,
    title             text NOT NULL,
    starts_at         timestamptz NOT NULL,
    ends_at           timestamptz NOT NULL,
    waitlist_cap      integer NOT NULL,
    organizer_ids     uuid[] NOT NULL,
    -- The questions, as an encoded cityevents.event.v1.EventDraft holding
    -- only them.
    questions         bytea NOT NULL,
    default_tier      text NOT NULL,
    next_waitlist_seq bigint NOT NULL DEFAULT 1,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tiers (
    event_id  uuid NOT NULL REFERENCES event_snapshots (event_id) ON DELETE CASCADE,
    tier_id   text NOT NULL,
    -- 0 means unlimited.
    capacity  integer NOT NULL CHECK (capacity >= 0),
    confirmed integer NOT NULL DEFAULT 0 CHECK (confirmed >= 0),
    waitlisted integer NOT NULL DEFAULT 0 CHECK (waitlisted >= 0),
    PRIMARY KEY (event_id, tier_id)
);

CREATE TABLE registrations (
    id           uuid PRIMARY KEY,
    event_id     uuid NOT NULL REFERENCES event_snapshots (event_id),
    user_id      uuid NOT NULL,
    tier_id      text NOT NULL,
    status       text NOT NULL CHECK (status IN ('confirmed', 'waitlisted', 'cancelled', 'checked_in')),
    -- First come, first served: the waitlist is ordered by this.
    waitlist_seq bigint,
    answers      bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    -- One registration per user per event, whatever its state.
    UNIQUE (event_id, user_id)
);
CREATE INDEX registrations_waitlist ON registrations (event_id, tier_id, waitlist_seq) WHERE status = 'waitlisted';
CREATE INDEX registrations_attending ON registrations (event_id, id) WHERE status IN ('confirmed', 'checked_in');

-- A client's Idempotency-Key per user: the first result, returned again.
CREATE TABLE idempotency_keys (
    user_id      uuid NOT NULL,
    key          text NOT NULL,
    request_hash bytea NOT NULL,
    response     bytea,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
