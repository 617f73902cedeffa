-- The wake-up moves out of the writing transaction: a transaction that notifies holds
-- Postgres' notification-queue lock through its commit, which serialised every writer's commit
-- (and its WAL flush) behind one another. Each replica now notifies after its own commits,
-- coalesced, from a connection of its own.
DROP TRIGGER guardian_events_notify ON guardian_events;
DROP FUNCTION guardian_events_notify();

-- The trail is read in feed order now ((domain[, student], revision, event_id), migration 5):
-- the indexes by event id only cost every write.
DROP INDEX guardian_events_domain;
DROP INDEX guardian_events_student;
