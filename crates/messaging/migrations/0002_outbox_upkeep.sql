-- The outbox is a queue: rows arrive, are marked published within
-- milliseconds and are purged by the relay after a retention period. Its
-- partial index of unpublished rows fills with dead entries until vacuumed,
-- and the relay scans that index every round, so vacuum it after a fixed
-- number of changes rather than a share of the table.
ALTER TABLE outbox SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 2000,
    autovacuum_vacuum_insert_scale_factor = 0,
    autovacuum_vacuum_insert_threshold = 2000,
    autovacuum_analyze_scale_factor = 0,
    autovacuum_analyze_threshold = 2000
);
