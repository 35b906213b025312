-- A tier the organizer removed stays, so its holders keep their places and
-- the counters stay true, but it takes no new joins and its room counts for
-- nothing: the event's capacity is the sum of its tiers still offered.
ALTER TABLE tiers ADD COLUMN removed boolean NOT NULL DEFAULT false;
