-- One row per invited guardian address, locked (FOR UPDATE on Postgres) while an invitation to that address
-- is created, so that the per-address student limit holds across replicas without advisory locks.
CREATE TABLE guardian_addresses (
    email TEXT PRIMARY KEY
);
