-- Images: one row per upload, pointing at content stored once by its
-- SHA-256. The outbox and inbox come from cityevents-messaging.
CREATE TABLE images (
    image_id     uuid PRIMARY KEY,
    owner_id     uuid NOT NULL,
    -- SHA-256 (hex) of the uploaded bytes: where its variants live.
    sha256       text NOT NULL,
    -- What the bytes are (from their magic bytes), not what was declared.
    content_type text NOT NULL,
    width        integer NOT NULL,
    height       integer NOT NULL,
    size_bytes   bigint NOT NULL,
    -- processing, ready, failed
    status       text NOT NULL,
    error        text NOT NULL DEFAULT '',
    variants     text[] NOT NULL DEFAULT '{}',
    -- Set when an event or profile uses it (unattached images are to be
    -- collected after a grace period).
    attached_at  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- The same person uploading the same bytes gets the same image.
    UNIQUE (owner_id, sha256)
);
CREATE INDEX images_unattached ON images (created_at) WHERE attached_at IS NULL;
CREATE INDEX images_processing ON images (created_at) WHERE status = 'processing';
