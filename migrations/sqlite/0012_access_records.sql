-- Who read guardians' addresses: administrators' and services' reads of invitations and
-- guardians that showed invited addresses, and exports of a person's records. Kept, like the
-- audit trail, for the domain's audit_retention_days.
CREATE TABLE access_records (
    record_id   INTEGER PRIMARY KEY AUTOINCREMENT,
    domain      TEXT NOT NULL,
    caller      TEXT NOT NULL,
    caller_role TEXT NOT NULL,
    method      TEXT NOT NULL,
    student_id  TEXT,
    row_count   INTEGER NOT NULL,
    create_time TEXT NOT NULL
);
-- A domain's records newest first, and the purge oldest first.
CREATE INDEX access_records_domain ON access_records (domain, record_id);
CREATE INDEX access_records_time ON access_records (create_time);

-- Sent and failed emails that still name their recipient, oldest first: what retention gives
-- stand-ins after 130 days. A queued email is not in it; it enters when sent.
CREATE INDEX outbox_identified ON outbox (create_time)
    WHERE status <> 'QUEUED' AND recipient NOT LIKE '%@erased.invalid';
