-- The audit trail also records domain-wide changes (settings changes, directory change
-- summaries): they concern no student or invitation, and carry their particulars as JSON.
ALTER TABLE guardian_events
    ALTER COLUMN student_id DROP NOT NULL,
    ALTER COLUMN invitation_id DROP NOT NULL,
    ADD COLUMN details TEXT;
