-- The change feed (freshness.md). SQLite has one writer at a time, so the order of event ids
-- is the commit order: an event's revision is its id.
ALTER TABLE guardian_events ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
UPDATE guardian_events SET revision = event_id;
CREATE TRIGGER guardian_events_revision AFTER INSERT ON guardian_events
    WHEN NEW.revision = 0
BEGIN
    UPDATE guardian_events SET revision = NEW.event_id WHERE event_id = NEW.event_id;
END;

CREATE INDEX guardian_events_feed ON guardian_events (revision, event_id);
CREATE INDEX guardian_events_domain_feed ON guardian_events (domain, revision, event_id);
CREATE INDEX guardian_events_student_feed ON guardian_events (domain, student_id, revision, event_id);
