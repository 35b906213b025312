-- What uses each image ("event/<id>", later profiles). An image with no
-- attachment since `unattached_since` longer than the grace period is
-- collected; NULL means something uses it.
CREATE TABLE attachments (
    image_id uuid NOT NULL REFERENCES images (image_id) ON DELETE CASCADE,
    subject  text NOT NULL,
    PRIMARY KEY (image_id, subject)
);
CREATE INDEX attachments_subject ON attachments (subject);

-- The newest snapshot applied per subject: a late stream message never
-- undoes a newer one.
CREATE TABLE attachment_subjects (
    subject text PRIMARY KEY,
    version bigint NOT NULL
);

ALTER TABLE images DROP COLUMN attached_at;
ALTER TABLE images ADD COLUMN unattached_since timestamptz DEFAULT now();
UPDATE images SET unattached_since = created_at;
CREATE INDEX images_collectable ON images (unattached_since)
    WHERE unattached_since IS NOT NULL;
