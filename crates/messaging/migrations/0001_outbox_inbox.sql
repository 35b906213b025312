-- The transactional outbox and the consumer inbox, the same in every service
-- database. Applied by `cityevents_messaging::migrate` with its own history
-- table (`_messaging_migrations`), beside the service's own migrations.

-- Domain events written in the same transaction as the change they describe.
-- The relay publishes unpublished rows to JetStream with Nats-Msg-Id = id and
-- marks them only after the publish ack.
CREATE TABLE outbox (
    id           uuid PRIMARY KEY,
    event_type   text NOT NULL,
    aggregate_id text NOT NULL,
    payload      bytea NOT NULL,
    traceparent  text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

-- Message ids a consumer has handled, written in the same transaction as the
-- handler's effect: a redelivered message finds its row and does nothing.
CREATE TABLE inbox (
    consumer   text NOT NULL,
    message_id uuid NOT NULL,
    handled_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);
