-- Registrations are written only by transactions that hold their event's
-- snapshot row locked, and snapshots are never deleted, so the foreign key
-- to event_snapshots guards nothing; its per-row check (a key-share lock
-- through SPI) was a tenth of the join batch's database time.
ALTER TABLE registrations DROP CONSTRAINT registrations_event_id_fkey;
