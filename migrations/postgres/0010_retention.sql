-- Retention of personal data: per domain, how long an ended invitation keeps its addresses and
-- the guardian's profile, and how long the audit trail keeps an event.
ALTER TABLE domain_settings
    ADD COLUMN ended_retention_days INTEGER NOT NULL DEFAULT 90
        CHECK (ended_retention_days BETWEEN 1 AND 3650),
    ADD COLUMN audit_retention_days INTEGER NOT NULL DEFAULT 400
        CHECK (audit_retention_days BETWEEN 30 AND 3650);

-- When an ended invitation's personal data was replaced by keyed hashes (NULL: not yet).
ALTER TABLE invitations ADD COLUMN anonymised_time TIMESTAMPTZ;
-- The ended rows still holding personal data, oldest change first: what the upkeep looks at.
CREATE INDEX invitations_ended_identified ON invitations (update_time)
    WHERE state IN ('REMOVED', 'EXPIRED') AND anonymised_time IS NULL;

-- The audit trail's purge takes the oldest events first.
CREATE INDEX guardian_events_time ON guardian_events (create_time);
