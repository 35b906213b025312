-- Events, co-organizers, reports and the moderation audit. The outbox and
-- inbox come from cityevents-messaging.

CREATE TABLE events (
    id            uuid PRIMARY KEY,
    organizer_id  uuid NOT NULL,
    status        text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'published', 'cancelled')),
    hidden        boolean NOT NULL DEFAULT false,
    -- Optimistic concurrency: every change bumps it; writers send it back.
    version       bigint NOT NULL DEFAULT 1,
    -- The organizer-edited fields, a cityevents.event.v1.EventDraft message.
    draft         bytea NOT NULL,
    starts_at     timestamptz NOT NULL,
    ends_at       timestamptz NOT NULL,
    cancel_reason text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_organizer ON events (organizer_id, id);

CREATE TABLE co_organizers (
    event_id uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    user_id  uuid NOT NULL,
    PRIMARY KEY (event_id, user_id)
);
CREATE INDEX co_organizers_user ON co_organizers (user_id);

CREATE TABLE reports (
    id          uuid PRIMARY KEY,
    event_id    uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    reporter_id uuid NOT NULL,
    reason      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, reporter_id)
);

CREATE TABLE moderation_audit (
    id           bigserial PRIMARY KEY,
    event_id     uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    moderator_id uuid NOT NULL,
    action       text NOT NULL,
    reason       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
