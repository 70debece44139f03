-- Verification: what audits need (the request and the served evidence),
-- audit records, and per-provider stake and reputation counters.
ALTER TABLE jobs ADD COLUMN request_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE jobs ADD COLUMN verification TEXT NOT NULL DEFAULT 'sampled';
-- receipts.logits holds the logit fingerprint bytes.
ALTER TABLE receipts ADD COLUMN evidence_json TEXT NOT NULL DEFAULT '{}';

CREATE TABLE provider_stats (
    provider_key     TEXT PRIMARY KEY,
    stake_micros     INTEGER NOT NULL,
    jobs_completed   INTEGER NOT NULL DEFAULT 0,
    audits_passed    INTEGER NOT NULL DEFAULT 0,
    audits_failed    INTEGER NOT NULL DEFAULT 0,
    slashed_micros   INTEGER NOT NULL DEFAULT 0,
    excluded         INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE audits (
    audit_id        TEXT PRIMARY KEY,
    receipt_id      TEXT NOT NULL UNIQUE REFERENCES receipts(receipt_id),
    provider_key    TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'passed', 'failed')),
    why             TEXT NOT NULL,
    verifier_key    TEXT,
    report_json     TEXT,
    fee_micros      INTEGER NOT NULL DEFAULT 0,
    refund_micros   INTEGER NOT NULL DEFAULT 0,
    slash_micros    INTEGER NOT NULL DEFAULT 0,
    created_at_ms   INTEGER NOT NULL,
    finished_at_ms  INTEGER
);

CREATE INDEX audits_pending ON audits(status, created_at_ms);
