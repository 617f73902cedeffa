-- One invitation email per family: invitations to one address for students of one domain made
-- within a short window share a family, whose one email names every child.

-- A family is open (sent_time NULL) until open_until; then the upkeep sends its email once.
-- token_hash: the hash of its "accept for all" token (families of two or more children).
CREATE TABLE invitation_families (
    family_id     TEXT PRIMARY KEY,
    domain        TEXT NOT NULL,
    invited_email TEXT NOT NULL,
    inviter_id    TEXT NOT NULL,
    open_until    TEXT NOT NULL,
    create_time   TEXT NOT NULL,
    sent_time     TEXT,
    token_hash    TEXT UNIQUE
);
-- A new invitation finds its address's open family by the address alone (every invitation to
-- an address holds the address's lock while it joins or opens one, so no two are open at once).
-- Not a partial index on unsent rows: that would share its predicate with the senders' index
-- below, and a planner with stale statistics (a table a bulk import is filling) then scans
-- every unsent family through the senders' index for each chunk of the import.
CREATE INDEX invitation_families_email ON invitation_families (invited_email);
CREATE INDEX invitation_families_due ON invitation_families (open_until) WHERE sent_time IS NULL;

ALTER TABLE invitations ADD COLUMN family_id TEXT;
CREATE INDEX invitations_family ON invitations (family_id) WHERE family_id IS NOT NULL;

-- A family's one email: its delivery is each of its invitations' delivery.
ALTER TABLE outbox ADD COLUMN family_id TEXT;
CREATE INDEX outbox_family ON outbox (family_id, create_time) WHERE family_id IS NOT NULL;
