-- The change feed (freshness.md). Every event carries the id of the transaction that wrote it:
-- a transaction id below the oldest one still running (the snapshot's xmin) belongs to a
-- transaction that has finished, so a reader that stops there never skips a change that a
-- slower transaction commits later. Events stored before have revision 0 and come first.
ALTER TABLE guardian_events ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
ALTER TABLE guardian_events ALTER COLUMN revision SET DEFAULT pg_current_xact_id()::text::bigint;

CREATE INDEX guardian_events_feed ON guardian_events (revision, event_id);
CREATE INDEX guardian_events_domain_feed ON guardian_events (domain, revision, event_id);
CREATE INDEX guardian_events_student_feed ON guardian_events (domain, student_id, revision, event_id);

-- Wakes the replicas' feed followers when a transaction that wrote events commits (Postgres
-- delivers notifications at commit, one per transaction and payload).
CREATE FUNCTION guardian_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('guardian_changes', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER guardian_events_notify AFTER INSERT ON guardian_events
    FOR EACH STATEMENT EXECUTE FUNCTION guardian_events_notify();
