//! Log settings, validated before the log opens.

use serde::{Deserialize, Serialize};

use crate::error::LogError;

/// How the log sequences and names itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// The checkpoint origin line and note key name, e.g. `example.com/log`
    /// (C2SP tlog-checkpoint: a schema-less URL; no spaces or `+`).
    pub origin: String,
    /// A batch is committed as soon as it holds this many entries.
    pub batch_max_entries: usize,
    /// How long a batch lingers after its first entry for more, ms. 0 (the
    /// default): no timer; commit as soon as the sequencer is free, with
    /// whatever is queued (adaptive group commit, see `sequencer.rs`).
    pub batch_max_age_ms: u64,
    /// Appends waiting for the sequencer before callers are slowed down.
    pub queue_capacity: usize,
}

impl Default for LogConfig {
    /// At most 256 entries a batch (Tessera's bound), no linger.
    fn default() -> Self {
        Self {
            origin: "proofmesh.local/log".into(),
            batch_max_entries: 256,
            batch_max_age_ms: 0,
            queue_capacity: 16_384,
        }
    }
}

impl LogConfig {
    /// Rejects values the sequencer cannot work with.
    pub fn validate(&self) -> Result<(), LogError> {
        let bad = |field, reason: &str| {
            Err(LogError::Config {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.origin.is_empty()
            || self.origin.contains(char::is_whitespace)
            || self.origin.contains('+')
        {
            return bad("origin", "must be non-empty with no whitespace or '+'");
        }
        if !(1..=65_536).contains(&self.batch_max_entries) {
            return bad("batch_max_entries", "must be 1..=65536");
        }
        if self.batch_max_age_ms > 60_000 {
            return bad("batch_max_age_ms", "must be 0..=60000");
        }
        if !(1..=1_048_576).contains(&self.queue_capacity) {
            return bad("queue_capacity", "must be 1..=1048576");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_named() {
        LogConfig::default().validate().unwrap();
        let c = LogConfig {
            origin: "has space".into(),
            ..LogConfig::default()
        };
        assert!(matches!(
            c.validate(),
            Err(LogError::Config {
                field: "origin",
                ..
            })
        ));
        let c = LogConfig {
            batch_max_entries: 0,
            ..LogConfig::default()
        };
        assert!(matches!(
            c.validate(),
            Err(LogError::Config {
                field: "batch_max_entries",
                ..
            })
        ));
        let c = LogConfig {
            batch_max_age_ms: 60_001,
            ..LogConfig::default()
        };
        assert!(c.validate().is_err());
    }
}
