-- Client retries (Idempotency-Key) and revenue-share pools (issue 8).

-- One row per (client, Idempotency-Key): the request it named (SHA-256 of
-- the body), the job it started, and, once answered, the response to replay.
CREATE TABLE idempotency_keys (
    client_id       TEXT NOT NULL REFERENCES clients(client_id),
    idem_key        TEXT NOT NULL,
    request_sha256  TEXT NOT NULL,
    job_id          TEXT NOT NULL,
    response_json   TEXT,
    created_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (client_id, idem_key)
);
CREATE INDEX idempotency_by_age ON idempotency_keys(created_at_ms);

-- A pool as its provider signed it (one pool per provider).
CREATE TABLE pools (
    pool_id        TEXT PRIMARY KEY,
    provider_key   TEXT NOT NULL UNIQUE,
    share_bps      INTEGER NOT NULL CHECK (share_bps BETWEEN 0 AND 10000),
    currency       TEXT NOT NULL,
    charter_json   TEXT NOT NULL,
    created_at_ms  INTEGER NOT NULL
);

-- Current units per holder; a transfer moves units in the same transaction
-- that records it.
CREATE TABLE pool_units (
    pool_id  TEXT NOT NULL REFERENCES pools(pool_id),
    holder   TEXT NOT NULL,
    units    INTEGER NOT NULL CHECK (units > 0),
    PRIMARY KEY (pool_id, holder)
);

CREATE TABLE pool_transfers (
    transfer_key   TEXT NOT NULL,
    pool_id        TEXT NOT NULL REFERENCES pools(pool_id),
    doc_json       TEXT NOT NULL,
    at_ms          INTEGER NOT NULL,
    PRIMARY KEY (pool_id, transfer_key)
);

-- The distribution decided for each pool and epoch: written before its
-- ledger transaction, so a crash in between replays the same payouts.
CREATE TABLE pool_distributions (
    pool_id        TEXT NOT NULL REFERENCES pools(pool_id),
    epoch_start_s  INTEGER NOT NULL,
    doc_json       TEXT NOT NULL,
    PRIMARY KEY (pool_id, epoch_start_s)
);
