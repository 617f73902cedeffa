-- Who made an invitation: a person ('MANUAL') or SyncGuardians ('SYNC'). A sync removes only
-- what a sync made unless asked otherwise, so every row made before this migration counts as
-- MANUAL: nothing becomes removable by it.
ALTER TABLE invitations
    ADD COLUMN source TEXT NOT NULL DEFAULT 'MANUAL' CHECK (source IN ('MANUAL', 'SYNC'));

-- A sync's safety limit counts the domain's links.
CREATE INDEX invitations_domain_links ON invitations (domain) WHERE state = 'ACCEPTED';
