-- Proved inference (issue 9): proofs that failed verification, kept as
-- evidence. Each row holds the provider-signed receipt that names the proof
-- and the bundle it sent: anyone can re-check that the signature is the
-- provider's and that the proof does not verify. A failure counts as a
-- failed audit in provider_stats (slash, exclusion).
CREATE TABLE zk_proof_failures (
    job_id          TEXT NOT NULL,
    provider_key    TEXT NOT NULL,
    reason          TEXT NOT NULL,
    receipt_json    TEXT NOT NULL,
    bundle_json     TEXT NOT NULL,
    slash_micros    INTEGER NOT NULL,
    at_ms           INTEGER NOT NULL,
    PRIMARY KEY (job_id, provider_key)
);

CREATE INDEX zk_proof_failures_provider ON zk_proof_failures(provider_key, at_ms);
