-- What the mail service knows, all of it from the streams (it reads no
-- other service's database), and what it sent. The outbox and inbox come
-- from cityevents-messaging.

-- People, from auth's stream: where their mail goes, and which mail they
-- want besides security mail (always sent). Unsubscribing turns all off.
CREATE TABLE people (
    user_id       uuid PRIMARY KEY,
    email         text NOT NULL,
    display_name  text NOT NULL,
    -- Join and promotion confirmations.
    confirmations boolean NOT NULL DEFAULT true,
    -- Changes of time or place, and cancellations.
    event_changes boolean NOT NULL DEFAULT true,
    reminders     boolean NOT NULL DEFAULT true
);

-- Events, from the event stream (newer versions only).
CREATE TABLE events (
    event_id   uuid PRIMARY KEY,
    version    bigint NOT NULL,
    title      text NOT NULL,
    description text NOT NULL,
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    time_zone  text NOT NULL,
    -- "Venue, City", or the online link.
    place      text NOT NULL,
    status     text NOT NULL
);

-- Registrations, from the join stream: who hears of an event's changes.
CREATE TABLE registrations (
    registration_id uuid PRIMARY KEY,
    event_id        uuid NOT NULL,
    user_id         uuid NOT NULL,
    status          text NOT NULL,
    joined_at       timestamptz NOT NULL,
    seq             uuid NOT NULL
);
CREATE INDEX registrations_event ON registrations (event_id);

-- Every mail, rendered when its cause was handled, sent by the sender task.
-- (message_id, recipient, template) is the once-only key: a redelivered
-- domain event, a second replica's reminder pass, find it taken.
CREATE TABLE deliveries (
    id              uuid PRIMARY KEY,
    message_id      text NOT NULL,
    template        text NOT NULL,
    recipient       text NOT NULL,
    user_id         uuid,
    subject         text NOT NULL,
    text_body       text NOT NULL,
    html_body       text NOT NULL,
    -- An iCalendar attachment (invitation.ics), if any.
    ics             text,
    -- Security mail (verification, reset) has no unsubscribe link.
    security        boolean NOT NULL,
    -- pending, sent, failed
    status          text NOT NULL DEFAULT 'pending',
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text NOT NULL DEFAULT '',
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    UNIQUE (message_id, recipient, template)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_recipient ON deliveries (recipient, created_at DESC);
