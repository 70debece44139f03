-- Double-entry ledger (proofmesh-ledger / proofmesh-settlement): current
-- balances and the append-only journal. A batch of journal rows and the
-- balance changes they cause commit in one transaction; every balance update
-- is guarded by the balance the writer saw, so a stale writer changes nothing.
CREATE TABLE ledger_balances (
    account   TEXT NOT NULL,
    currency  TEXT NOT NULL,
    balance   INTEGER NOT NULL,
    PRIMARY KEY (account, currency)
);

CREATE TABLE ledger_journal (
    seq      INTEGER PRIMARY KEY CHECK (seq >= 0),
    tx_key   TEXT NOT NULL UNIQUE,          -- idempotency key
    tx_hash  BLOB NOT NULL CHECK (length(tx_hash) = 32),
    reason   TEXT NOT NULL,
    link     TEXT,                          -- e.g. job:<id>, receipt:<id>
    tx_json  TEXT NOT NULL,
    at_ms    INTEGER NOT NULL
);

-- Which journal rows touch which account (for usage and earnings reads).
CREATE TABLE ledger_postings (
    seq       INTEGER NOT NULL REFERENCES ledger_journal(seq),
    account   TEXT NOT NULL,
    currency  TEXT NOT NULL,
    delta     INTEGER NOT NULL,
    PRIMARY KEY (seq, account, currency)
);
CREATE INDEX ledger_postings_by_account ON ledger_postings(account, seq);
