-- The trail is read in feed order now ((domain[, student], revision, event_id), migration 5):
-- the indexes by event id only cost every write. (SQLite never had the Postgres notify trigger
-- that migration 6 drops there.)
DROP INDEX guardian_events_domain;
DROP INDEX guardian_events_student;
