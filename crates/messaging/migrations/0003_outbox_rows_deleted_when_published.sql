-- The relay now deletes a row once JetStream has acknowledged it, instead
-- of marking it published and purging it later: the stream is the record of
-- what was published, and a delete costs a fraction of the non-HOT update
-- the mark was (the mark changed a column of the partial index). Every row
-- left in the table is unpublished, so the relay reads the primary key.
-- `published_at` stays, unused, for replicas of the previous release during
-- a rolling update; rows they mark are published again and dropped by the
-- stream's duplicate window or the consumers' inbox.
DELETE FROM outbox WHERE published_at IS NOT NULL;
DROP INDEX IF EXISTS outbox_unpublished;
