-- How a school appears in its emails, and reminders before an invitation expires.

-- The school's name, the From display name and the Reply-To address of the emails (NULL: the
-- domain name, the service's From name, no Reply-To); reminder lead time, 0 for none.
ALTER TABLE domain_settings ADD COLUMN school_name TEXT;
ALTER TABLE domain_settings ADD COLUMN mail_from_name TEXT;
ALTER TABLE domain_settings ADD COLUMN reply_to_address TEXT;
ALTER TABLE domain_settings ADD COLUMN invitation_reminder_days INTEGER NOT NULL DEFAULT 7
    CHECK (invitation_reminder_days BETWEEN 0 AND 60);

-- Each queued email carries the sender name and Reply-To of its school, fixed when queued.
ALTER TABLE outbox ADD COLUMN from_name TEXT;
ALTER TABLE outbox ADD COLUMN reply_to TEXT;

-- When a PENDING invitation is due its one reminder (NULL: none due, or already sent), and the
-- hash of the reminder's own token (the first email's token keeps working beside it).
ALTER TABLE invitations ADD COLUMN remind_time TEXT;
ALTER TABLE invitations ADD COLUMN reminder_token_hash TEXT;

CREATE INDEX invitations_due_reminders ON invitations (remind_time)
    WHERE state = 'PENDING' AND remind_time IS NOT NULL;
CREATE UNIQUE INDEX invitations_reminder_token ON invitations (reminder_token_hash)
    WHERE reminder_token_hash IS NOT NULL;

-- Invitations pending at the upgrade get the default reminder, as new ones do (written in the
-- RFC 3339 form the service writes times in, so they compare as text).
UPDATE invitations
    SET remind_time = strftime('%Y-%m-%dT%H:%M:%f+00:00', expire_time, '-7 days')
    WHERE state = 'PENDING'
      AND julianday(expire_time, '-7 days') > julianday(create_time);
