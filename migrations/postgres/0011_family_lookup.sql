-- A new invitation finds its address's family by the address alone. The partial index this
-- replaces shared its predicate (sent_time IS NULL) with the senders' index, and a planner with
-- stale statistics (a table a bulk import is filling) scanned every unsent family through the
-- senders' index for each chunk of the import. The lookup no longer names sent_time at all:
-- it reads an address's few families and keeps the open one.
DROP INDEX invitation_families_open;
CREATE INDEX invitation_families_email ON invitation_families (invited_email);
