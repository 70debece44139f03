-- Transparency log (proofmesh-log): the sequenced entries and every signed
-- checkpoint. An entry batch and the checkpoint covering it are written in
-- one transaction, so an acknowledged entry is always durable and covered.
CREATE TABLE log_entries (
    idx        INTEGER PRIMARY KEY CHECK (idx >= 0),   -- 0-based leaf index
    leaf_hash  BLOB NOT NULL CHECK (length(leaf_hash) = 32),
    entry      BLOB NOT NULL,                          -- proofmesh-tlog entry encoding
    entry_key  TEXT UNIQUE                             -- 'receipt:<id>' / 'audit:<id>'
);

CREATE TABLE log_checkpoints (
    tree_size      INTEGER PRIMARY KEY CHECK (tree_size >= 0),
    root           BLOB NOT NULL CHECK (length(root) = 32),
    note           BLOB NOT NULL,                      -- C2SP signed note, verbatim
    created_at_ms  INTEGER NOT NULL
);
