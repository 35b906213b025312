-- Outbox rows JetStream refuses for good (a message over the server's
-- max_payload): the relay moves them here, with the refusal, so the rows
-- behind them keep flowing. `outbox_parked` in metrics counts them; an
-- operator inspects and fixes or deletes them.
CREATE TABLE outbox_parked (
    id           uuid PRIMARY KEY,
    event_type   text NOT NULL,
    aggregate_id text NOT NULL,
    payload      bytea NOT NULL,
    traceparent  text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL,
    error        text NOT NULL,
    parked_at    timestamptz NOT NULL DEFAULT now()
);

-- Inbox rows older than the stream's retention can never meet a
-- redelivery; consumers purge them in bounded batches by this index.
CREATE INDEX inbox_age ON inbox (consumer, handled_at);
