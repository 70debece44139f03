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
    /// ... or when its oldest entry has waited this long.
    pub batch_max_age_ms: u64,
    /// Appends waiting for the sequencer before callers are slowed down.
    pub queue_capacity: usize,
}

impl Default for LogConfig {
    /// Tessera's defaults: 256 entries or 250 ms.
    fn default() -> Self {
        Self {
            origin: "proofmesh.local/log".into(),
            batch_max_entries: 256,
            batch_max_age_ms: 250,
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
        if !(1..=60_000).contains(&self.batch_max_age_ms) {
            return bad("batch_max_age_ms", "must be 1..=60000");
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
            batch_max_age_ms: 0,
            ..LogConfig::default()
        };
        assert!(c.validate().is_err());
    }
}
