-- How a school appears in its emails, and reminders before an invitation expires.

-- The school's name, the From display name and the Reply-To address of the emails (NULL: the
-- domain name, the service's From name, no Reply-To); reminder lead time, 0 for none.
ALTER TABLE domain_settings
    ADD COLUMN school_name TEXT,
    ADD COLUMN mail_from_name TEXT,
    ADD COLUMN reply_to_address TEXT,
    ADD COLUMN invitation_reminder_days INTEGER NOT NULL DEFAULT 7
        CHECK (invitation_reminder_days BETWEEN 0 AND 60);

-- Each queued email carries the sender name and Reply-To of its school, fixed when queued.
ALTER TABLE outbox
    ADD COLUMN from_name TEXT,
    ADD COLUMN reply_to TEXT;

-- When a PENDING invitation is due its one reminder (NULL: none due, or already sent), and the
-- hash of the reminder's own token (the first email's token keeps working beside it).
ALTER TABLE invitations
    ADD COLUMN remind_time TIMESTAMPTZ,
    ADD COLUMN reminder_token_hash TEXT;

CREATE INDEX invitations_due_reminders ON invitations (remind_time)
    WHERE state = 'PENDING' AND remind_time IS NOT NULL;
CREATE UNIQUE INDEX invitations_reminder_token ON invitations (reminder_token_hash)
    WHERE reminder_token_hash IS NOT NULL;

-- Invitations pending at the upgrade get the default reminder, as new ones do.
UPDATE invitations SET remind_time = expire_time - INTERVAL '7 days'
    WHERE state = 'PENDING' AND expire_time - INTERVAL '7 days' > create_time;
