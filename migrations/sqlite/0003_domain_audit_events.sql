-- The audit trail also records domain-wide changes (settings changes, directory change
-- summaries): they concern no student or invitation, and carry their particulars as JSON.
-- SQLite cannot drop NOT NULL in place, so the table is rebuilt with its rows and ids.
CREATE TABLE guardian_events_new (
    event_id      INTEGER PRIMARY KEY AUTOINCREMENT,
    domain        TEXT NOT NULL,
    student_id    TEXT,
    invitation_id TEXT,
    action        TEXT NOT NULL,
    actor_id      TEXT NOT NULL,
    request_id    TEXT,
    create_time   TEXT NOT NULL,
    details       TEXT
);
INSERT INTO guardian_events_new (event_id, domain, student_id, invitation_id, action, actor_id,
                                 request_id, create_time)
    SELECT event_id, domain, student_id, invitation_id, action, actor_id, request_id, create_time
    FROM guardian_events;
DROP TABLE guardian_events;
ALTER TABLE guardian_events_new RENAME TO guardian_events;
CREATE INDEX guardian_events_domain ON guardian_events (domain, event_id);
CREATE INDEX guardian_events_student ON guardian_events (domain, student_id, event_id);
