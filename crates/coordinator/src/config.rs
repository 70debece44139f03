//! Coordinator configuration: a typed struct with defaults, loaded from an
//! optional TOML file and then `PROOFMESH_*` environment variables, and
//! validated before the service starts. Bad config is an error, never a panic.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// Why configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or environment did not parse into the config type.
    #[error("invalid configuration: {0}")]
    Parse(String),
    /// A value is out of range.
    #[error("invalid configuration: {field} {reason}")]
    Invalid {
        /// Field name.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Longest metrics-statement epoch: 365 days.
pub const MAX_STATEMENT_EPOCH_S: u64 = 365 * 86_400;

/// Everything the coordinator can be told.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CoordinatorConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Directory for the database and the coordinator key.
    pub data_dir: PathBuf,
    /// Largest accepted request body, bytes.
    pub max_body_bytes: usize,
    /// Upper bound for `max_tokens`.
    pub max_tokens_limit: u32,
    /// `max_tokens` when the request gives none.
    pub default_max_tokens: u32,
    /// Temperature when the request gives none. proofmesh defaults to greedy
    /// (0.0): reproducible answers that are cheapest to verify.
    pub default_temperature: f32,
    /// Top logits per token the provider commits to, unless the request says.
    pub default_top_k_logits: u32,
    /// Most providers tried for one request before giving up.
    pub max_attempts: u32,
    /// Whole-request deadline, seconds.
    pub request_timeout_s: u64,
    /// Jobs that may wait for a provider at once (across all models); one
    /// more is answered 429 `queue_full` with `Retry-After`.
    pub queue_max_jobs: usize,
    /// How long an interactive job waits for a provider that can meet its
    /// time-to-first-token objective before it is served best-effort (the
    /// missed objective is recorded), ms. A hard objective
    /// (`x-proofmesh-workload: interactive;ttft_ms=N;hard`) gets 503 then.
    pub interactive_wait_ms: u64,
    /// GGUF files of the models served: their tokenizers are read at start
    /// (not the weights) so placement counts each prompt's tokens exactly.
    /// A model without one is estimated by a byte bound.
    pub model_files: Vec<PathBuf>,
    /// Heartbeat interval providers are told to keep, ms.
    pub heartbeat_ms: u64,
    /// A provider silent for this long is disconnected, ms.
    pub provider_timeout_ms: u64,
    /// Share of jobs audited, in thousandths (default 50 = 5%).
    pub audit_rate_milli: u32,
    /// Audit rate for providers with fewer than `new_provider_audits` passed audits.
    pub audit_rate_new_milli: u32,
    /// Audit rate for providers whose reputation is below 0.9.
    pub audit_rate_low_rep_milli: u32,
    /// Passed audits after which a provider is no longer "new".
    pub new_provider_audits: u32,
    /// Fee for `verification: "always"`, in basis points of the job's charge.
    pub verification_fee_bps: u32,
    /// Stake credited to a provider at first registration, micro-units.
    pub initial_stake_micros: i64,
    /// Stake slashed per failed audit, micro-units.
    pub slash_micros: i64,
    /// Failed audits after which a provider is excluded from scheduling.
    pub max_failed_audits: u32,
    /// Verifier keys (`ed25519:…`) whose audit reports this coordinator accepts.
    pub trusted_verifiers: Vec<String>,
    /// Protocol fee on each released charge, basis points (default 500 = 5%).
    pub protocol_fee_bps: u32,
    /// Transparency log origin (checkpoint first line and note key name).
    pub log_origin: String,
    /// Log batch bound: entries (Tessera: 256).
    pub log_batch_max_entries: usize,
    /// Log batch linger after its first entry, ms; 0 (default): adaptive
    /// group commit, an idle log commits at once (see proofmesh-log).
    pub log_batch_max_age_ms: u64,
    /// Length of a metrics-statement epoch, seconds (default 86400: UTC
    /// days). Epochs are aligned to the unix epoch: `[k·len, (k+1)·len)`.
    pub statement_epoch_s: u64,
    /// How often a connected provider's attestation is re-checked with a
    /// fresh nonce, seconds (it is also checked at every (re)connection).
    pub attestation_recheck_s: u64,
    /// Appraisal policy for attestation evidence (a TOML table, e.g.
    /// `{ type = "tdx", min_tcb = "UpToDate" }`); without one, evidence is
    /// judged by verification and key binding alone.
    pub attestation_policy: Option<proofmesh_attest::Policy>,
    /// Zero-knowledge models this coordinator accepts proofs for (issue 9):
    /// each a registry name and the verifying key file from the operator's
    /// `proofmesh zk setup` (the key commits to the model digest). Providers
    /// may only advertise these, with these keys.
    pub zk_models: Vec<ZkModelConfig>,
    /// TEST SEAM ONLY (never read from files or the environment): verify
    /// attestation at a pinned time and against a pinned binding, so tests
    /// can admit real public evidence that was made for someone else's key
    /// and nonce. The verification itself is the production code.
    #[serde(skip)]
    pub attestation_test_seam: Option<AttestTestSeam>,
}

/// One registered zero-knowledge model (TOML: `[[zk_models]]` with `name`
/// and `vk`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ZkModelConfig {
    /// Registry name clients ask for, e.g. `digits-mlp`.
    pub name: String,
    /// The verifying key file.
    pub vk: PathBuf,
}

/// See [`CoordinatorConfig::attestation_test_seam`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestTestSeam {
    /// Unix seconds at which to verify (inside the sample's validity).
    pub now_s: u64,
    /// The report data the sample carries.
    pub report_data: [u8; 64],
    /// The nonce the sample's GPU evidence carries.
    pub gpu_nonce: [u8; 32],
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from(".proofmesh/coordinator"),
            max_body_bytes: 1 << 20,
            max_tokens_limit: 2048,
            default_max_tokens: 256,
            default_temperature: 0.0,
            default_top_k_logits: 8,
            max_attempts: 3,
            request_timeout_s: 300,
            queue_max_jobs: 4_096,
            interactive_wait_ms: 2_000,
            model_files: Vec::new(),
            heartbeat_ms: 2_000,
            provider_timeout_ms: 10_000,
            audit_rate_milli: 50,
            audit_rate_new_milli: 500,
            audit_rate_low_rep_milli: 250,
            new_provider_audits: 10,
            verification_fee_bps: 5_000,
            initial_stake_micros: 10_000_000,
            slash_micros: 1_000_000,
            max_failed_audits: 3,
            trusted_verifiers: Vec::new(),
            protocol_fee_bps: proofmesh_ledger::SettlementConfig::default().protocol_fee_bps,
            log_origin: proofmesh_log::LogConfig::default().origin,
            log_batch_max_entries: proofmesh_log::LogConfig::default().batch_max_entries,
            log_batch_max_age_ms: proofmesh_log::LogConfig::default().batch_max_age_ms,
            statement_epoch_s: proofmesh_ledger::epoch::DAY_S,
            attestation_recheck_s: 3_600,
            attestation_policy: None,
            zk_models: Vec::new(),
            attestation_test_seam: None,
        }
    }
}

impl CoordinatorConfig {
    /// Defaults, then `file` (if given), then `PROOFMESH_*` variables
    /// (e.g. `PROOFMESH_LISTEN=0.0.0.0:8080`), then validation.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(CoordinatorConfig::default()));
        if let Some(f) = file {
            if !f.exists() {
                return Err(ConfigError::Parse(format!(
                    "config file {} does not exist",
                    f.display()
                )));
            }
            fig = fig.merge(Toml::file(f));
        }
        let fields = [
            "listen",
            "data_dir",
            "max_body_bytes",
            "max_tokens_limit",
            "default_max_tokens",
            "default_temperature",
            "default_top_k_logits",
            "max_attempts",
            "request_timeout_s",
            "queue_max_jobs",
            "interactive_wait_ms",
            "heartbeat_ms",
            "provider_timeout_ms",
            "audit_rate_milli",
            "audit_rate_new_milli",
            "audit_rate_low_rep_milli",
            "new_provider_audits",
            "verification_fee_bps",
            "initial_stake_micros",
            "slash_micros",
            "max_failed_audits",
            "trusted_verifiers",
            "protocol_fee_bps",
            "log_origin",
            "log_batch_max_entries",
            "log_batch_max_age_ms",
            "statement_epoch_s",
            "attestation_recheck_s",
        ];
        fig = fig.merge(Env::prefixed("PROOFMESH_").only(&fields));
        let cfg: CoordinatorConfig = fig
            .extract()
            .map_err(|e| ConfigError::Parse(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Range checks.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field, reason: &str| {
            Err(ConfigError::Invalid {
                field,
                reason: reason.into(),
            })
        };
        if self.max_body_bytes < 1024 {
            return bad("max_body_bytes", "must be at least 1024");
        }
        if self.max_tokens_limit == 0 {
            return bad("max_tokens_limit", "must be positive");
        }
        if self.default_max_tokens == 0 || self.default_max_tokens > self.max_tokens_limit {
            return bad("default_max_tokens", "must be in 1..=max_tokens_limit");
        }
        if !(0.0..=2.0).contains(&self.default_temperature) {
            return bad("default_temperature", "must be in 0..=2");
        }
        if self.default_top_k_logits > 64 {
            return bad("default_top_k_logits", "must be at most 64");
        }
        if self.max_attempts == 0 {
            return bad("max_attempts", "must be at least 1");
        }
        if self.heartbeat_ms == 0 || self.provider_timeout_ms < 2 * self.heartbeat_ms {
            return bad(
                "provider_timeout_ms",
                "must be at least twice heartbeat_ms (and heartbeat_ms > 0)",
            );
        }
        for (field, v) in [
            ("audit_rate_milli", self.audit_rate_milli),
            ("audit_rate_new_milli", self.audit_rate_new_milli),
            ("audit_rate_low_rep_milli", self.audit_rate_low_rep_milli),
        ] {
            if v > 1000 {
                return bad(field, "must be at most 1000 (thousandths)");
            }
        }
        if self.slash_micros < 0 || self.initial_stake_micros < 0 {
            return bad(
                "slash_micros",
                "stake and slash amounts must not be negative",
            );
        }
        for k in &self.trusted_verifiers {
            if proofmesh_receipt::PublicKey::parse(k).is_err() {
                return bad(
                    "trusted_verifiers",
                    &format!("{k:?} is not an ed25519:<hex> key"),
                );
            }
        }
        if self.request_timeout_s == 0 {
            return bad("request_timeout_s", "must be positive");
        }
        if self.queue_max_jobs == 0 {
            return bad("queue_max_jobs", "must be positive");
        }
        if self.interactive_wait_ms > self.request_timeout_s.saturating_mul(1000) {
            return bad("interactive_wait_ms", "must not exceed request_timeout_s");
        }
        for f in &self.model_files {
            if !f.is_file() {
                return bad("model_files", &format!("{} does not exist", f.display()));
            }
        }
        if self.statement_epoch_s == 0 || self.statement_epoch_s > MAX_STATEMENT_EPOCH_S {
            return bad(
                "statement_epoch_s",
                "must be in 1..=31536000 (one second to 365 days)",
            );
        }
        if self.attestation_recheck_s < 10 {
            return bad("attestation_recheck_s", "must be at least 10 seconds");
        }
        if self.protocol_fee_bps > 10_000 {
            return bad("protocol_fee_bps", "must be at most 10000 (basis points)");
        }
        let mut names = std::collections::HashSet::new();
        for m in &self.zk_models {
            let ok = !m.name.is_empty()
                && m.name.len() <= 64
                && m.name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !ok {
                return bad(
                    "zk_models",
                    &format!("name {:?} must be 1-64 of [A-Za-z0-9._-]", m.name),
                );
            }
            if !names.insert(m.name.to_ascii_lowercase()) {
                return bad("zk_models", &format!("name {:?} is given twice", m.name));
            }
            if !m.vk.is_file() {
                return bad(
                    "zk_models",
                    &format!("verifying key {} does not exist", m.vk.display()),
                );
            }
        }
        if let Err(proofmesh_log::LogError::Config { field, reason }) = self.log().validate() {
            return Err(ConfigError::Invalid {
                field: match field {
                    "origin" => "log_origin",
                    "batch_max_entries" => "log_batch_max_entries",
                    "batch_max_age_ms" => "log_batch_max_age_ms",
                    other => other,
                },
                reason,
            });
        }
        Ok(())
    }

    /// Settlement rules: the protocol fee, and the slash on a failed audit
    /// (`slash_micros`, capped by the stake).
    pub fn settlement(&self) -> proofmesh_ledger::SettlementConfig {
        proofmesh_ledger::SettlementConfig {
            protocol_fee_bps: self.protocol_fee_bps,
            slash: proofmesh_ledger::SlashRule::Fixed {
                micros: u64::try_from(self.slash_micros).unwrap_or(0),
            },
        }
    }

    /// The transparency log's settings.
    pub fn log(&self) -> proofmesh_log::LogConfig {
        proofmesh_log::LogConfig {
            origin: self.log_origin.clone(),
            batch_max_entries: self.log_batch_max_entries,
            batch_max_age_ms: self.log_batch_max_age_ms,
            ..proofmesh_log::LogConfig::default()
        }
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err, reason = "figment::Jail's closure signature")]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        CoordinatorConfig::default().validate().unwrap();
    }

    #[test]
    fn file_and_env_override_and_validate() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "c.toml",
                "max_tokens_limit = 100\ndefault_max_tokens = 50\n",
            )?;
            jail.set_env("PROOFMESH_MAX_ATTEMPTS", "5");
            let c = CoordinatorConfig::load(Some(Path::new("c.toml"))).unwrap();
            assert_eq!(
                (c.max_tokens_limit, c.default_max_tokens, c.max_attempts),
                (100, 50, 5)
            );
            jail.set_env("PROOFMESH_MAX_ATTEMPTS", "0");
            let e = CoordinatorConfig::load(Some(Path::new("c.toml"))).unwrap_err();
            assert!(e.to_string().contains("max_attempts"), "{e}");
            jail.set_env("PROOFMESH_MAX_ATTEMPTS", "lots");
            assert!(CoordinatorConfig::load(None).is_err());
            jail.set_env("PROOFMESH_MAX_ATTEMPTS", "3");
            jail.set_env("PROOFMESH_STATEMENT_EPOCH_S", "3600");
            let c = CoordinatorConfig::load(None).unwrap();
            assert_eq!(c.statement_epoch_s, 3600);
            jail.set_env("PROOFMESH_STATEMENT_EPOCH_S", "0");
            let e = CoordinatorConfig::load(None).unwrap_err();
            assert!(e.to_string().contains("statement_epoch_s"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn zk_models_are_validated() {
        let dir = tempfile::tempdir().unwrap();
        let vk = dir.path().join("m.vk");
        std::fs::write(&vk, b"vk").unwrap();
        let mut c = CoordinatorConfig {
            zk_models: vec![ZkModelConfig {
                name: "digits-mlp".into(),
                vk: vk.clone(),
            }],
            ..Default::default()
        };
        c.validate().unwrap();
        c.zk_models.push(c.zk_models[0].clone());
        assert!(c.validate().unwrap_err().to_string().contains("twice"));
        c.zk_models = vec![ZkModelConfig {
            name: "no spaces".into(),
            vk: vk.clone(),
        }];
        assert!(c.validate().is_err());
        c.zk_models = vec![ZkModelConfig {
            name: "m".into(),
            vk: dir.path().join("missing.vk"),
        }];
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("does not exist"));
    }

    #[test]
    fn unknown_keys_and_missing_files_are_errors() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("c.toml", "max_tokenz = 1\n")?;
            assert!(CoordinatorConfig::load(Some(Path::new("c.toml"))).is_err());
            assert!(CoordinatorConfig::load(Some(Path::new("missing.toml"))).is_err());
            Ok(())
        });
    }
}
