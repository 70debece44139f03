-- proofmesh coordinator state, schema v1.
CREATE TABLE clients (
    client_id      TEXT PRIMARY KEY,
    created_at_ms  INTEGER NOT NULL
);

CREATE TABLE api_keys (
    key_id         TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL REFERENCES clients(client_id),
    secret_sha256  TEXT NOT NULL,
    label          TEXT NOT NULL,
    created_at_ms  INTEGER NOT NULL,
    revoked_at_ms  INTEGER
);

CREATE TABLE providers (
    provider_key   TEXT PRIMARY KEY,
    hardware_json  TEXT NOT NULL,
    models_json    TEXT NOT NULL,
    agent_version  TEXT NOT NULL,
    first_seen_ms  INTEGER NOT NULL,
    last_seen_ms   INTEGER NOT NULL
);

CREATE TABLE jobs (
    job_id          TEXT PRIMARY KEY,
    receipt_id      TEXT NOT NULL UNIQUE,
    client_id       TEXT NOT NULL REFERENCES clients(client_id),
    model           TEXT NOT NULL,
    provider_key    TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    status          TEXT NOT NULL CHECK (status IN ('dispatched', 'completed', 'failed')),
    error           TEXT,
    created_at_ms   INTEGER NOT NULL,
    finished_at_ms  INTEGER
);

CREATE TABLE receipts (
    receipt_id     TEXT PRIMARY KEY,
    job_id         TEXT NOT NULL UNIQUE REFERENCES jobs(job_id),
    client_id      TEXT NOT NULL REFERENCES clients(client_id),
    receipt_json   TEXT NOT NULL,
    logits         BLOB NOT NULL,
    created_at_ms  INTEGER NOT NULL
);

CREATE INDEX receipts_by_client ON receipts(client_id);
