-- Guardian email summaries (summaries.md): the domain's summary defaults, the class activity
-- summaries are made of, guardians' preferences and one delivery record per (guardian, period).

-- SQLite adds one column per statement.
ALTER TABLE domain_settings ADD COLUMN summary_time_zone TEXT NOT NULL DEFAULT 'UTC';
ALTER TABLE domain_settings ADD COLUMN summary_send_hour INTEGER NOT NULL DEFAULT 17
    CHECK (summary_send_hour BETWEEN 0 AND 23);
ALTER TABLE domain_settings ADD COLUMN default_summary_frequency TEXT NOT NULL DEFAULT 'WEEKLY'
    CHECK (default_summary_frequency IN ('NEVER', 'DAILY', 'WEEKLY'));

-- Published by the coursework backend; kept by id, the newest update_time winning. publish_time
-- is when an item was first seen published (for "class activity since the last summary").
CREATE TABLE course_work (
    course_id      TEXT NOT NULL,
    course_work_id TEXT NOT NULL,
    title          TEXT NOT NULL,
    due_time       TEXT,
    state          TEXT NOT NULL CHECK (state IN ('PUBLISHED', 'DELETED')),
    update_time    TEXT NOT NULL,
    publish_time   TEXT,
    PRIMARY KEY (course_id, course_work_id)
);
CREATE INDEX course_work_age ON course_work (update_time);

CREATE TABLE submissions (
    course_id      TEXT NOT NULL,
    course_work_id TEXT NOT NULL,
    student_id     TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('ASSIGNED', 'TURNED_IN', 'RETURNED', 'EXCUSED')),
    update_time    TEXT NOT NULL,
    PRIMARY KEY (course_id, student_id, course_work_id)
);
CREATE INDEX submissions_student ON submissions (student_id);
CREATE INDEX submissions_age ON submissions (update_time);

CREATE TABLE announcements (
    course_id       TEXT NOT NULL,
    announcement_id TEXT NOT NULL,
    text            TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('PUBLISHED', 'DELETED')),
    update_time     TEXT NOT NULL,
    publish_time    TEXT,
    PRIMARY KEY (course_id, announcement_id)
);
CREATE INDEX announcements_age ON announcements (update_time);

-- A teacher's choice to leave a class out of every summary (absent: included).
CREATE TABLE course_summary_settings (
    course_id                  TEXT PRIMARY KEY,
    guardian_summaries_enabled BOOLEAN NOT NULL,
    update_time                TEXT NOT NULL
);

CREATE TABLE summary_preferences (
    guardian_id TEXT PRIMARY KEY,
    frequency   TEXT CHECK (frequency IN ('NEVER', 'DAILY', 'WEEKLY')),
    weekly_day  TEXT,
    time_zone   TEXT,
    locale      TEXT CHECK (locale IN ('en', 'nl')),
    update_time TEXT NOT NULL
);

-- Exactly one per (guardian, period): the primary key is what makes any number of replicas,
-- restarts and crashes build one summary.
CREATE TABLE summary_deliveries (
    guardian_id            TEXT NOT NULL,
    period_key             TEXT NOT NULL,
    frequency              TEXT NOT NULL,
    period_start           TEXT NOT NULL,
    period_end             TEXT NOT NULL,
    student_ids            TEXT NOT NULL,
    missing_count          INTEGER NOT NULL,
    upcoming_count         INTEGER NOT NULL,
    activity_count         INTEGER NOT NULL,
    outcome                TEXT NOT NULL CHECK (outcome IN ('QUEUED', 'SKIPPED_EMPTY')),
    message_id             TEXT,
    unsubscribe_token_hash TEXT,
    unsubscribe_used       BOOLEAN NOT NULL DEFAULT 0,
    create_time            TEXT NOT NULL,
    PRIMARY KEY (guardian_id, period_key)
);
CREATE UNIQUE INDEX summary_deliveries_token ON summary_deliveries (unsubscribe_token_hash);

-- A summary's one-click unsubscribe URL, sent as List-Unsubscribe (RFC 8058).
ALTER TABLE outbox ADD COLUMN list_unsubscribe TEXT;
