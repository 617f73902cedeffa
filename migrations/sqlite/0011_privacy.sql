-- A person's export and erasure look up every invitation of a guardian account or address,
-- whatever its state (the indexes before covered accepted links only). Partial: a pending
-- invitation has neither, so the bulk invite path writes no entry into them.
CREATE INDEX invitations_guardian ON invitations (guardian_id) WHERE guardian_id IS NOT NULL;
CREATE INDEX invitations_guardian_email ON invitations (guardian_email)
    WHERE guardian_email IS NOT NULL;
