-- The ledger writer's probe: while the ledger cannot commit and nothing is
-- waiting to be written, the writer commits one row of incompressible bytes
-- here, then deletes it, to learn whether the store accepts writes again.
-- Empty except during that moment.
CREATE TABLE store_probe (
    id INTEGER PRIMARY KEY,
    at BIGINT NOT NULL,
    filler BLOB NOT NULL
);
