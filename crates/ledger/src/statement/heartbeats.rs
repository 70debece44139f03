//! Coordinator-signed heartbeat logs: the uptime evidence behind metrics
//! statements.
//!
//! Why: a statement's uptime is computed from heartbeat observations
//! ([`Heartbeat`]). Providers' heartbeats are unsigned frames on their
//! authenticated session, so the only party that can vouch for them is the
//! coordinator. It records the arrival times it observed in a window and signs
//! them as a [`SignedHeartbeats`], which is appended to the transparency log
//! before any statement that uses it. Anyone holding the log then has exactly
//! the heartbeat data the statement was computed from — which makes uptime
//! *recomputable*, but not independently *observable*: a third party can
//! check that the figure follows from what the coordinator committed to (in
//! advance, in an append-only log), not that the provider was really up.
//!
//! Canonical encoding (domain `proofmesh/heartbeats/v1`, via
//! `proofmesh_receipt::canon::Encoder`), fields in this order: version,
//! provider, coordinator, from_ms, to_ms, beats (the count), then one `at_ms`
//! field per heartbeat. The body must have `from_ms < to_ms`, at most
//! [`MAX_BEATS`] heartbeats, strictly ascending, each in `[from_ms, to_ms)`.

use proofmesh_receipt::canon::Encoder;
use proofmesh_receipt::{Identity, PublicKey, Signature};
use serde::{Deserialize, Serialize};

use super::compute::Heartbeat;

/// The heartbeat-log format version.
pub const HEARTBEATS_VERSION: u32 = 1;

/// Most heartbeats in one body, so that its log entry stays well under the
/// 65,535-byte entry limit (a heartbeat is at most 21 JSON bytes).
pub const MAX_BEATS: usize = 2_000;

const HEARTBEATS_DOMAIN: &str = "proofmesh/heartbeats/v1";

/// Why a heartbeat log is malformed or not authentic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeartbeatsError {
    /// Unknown version.
    #[error("heartbeat log version {found} is not supported (expected {HEARTBEATS_VERSION})")]
    UnsupportedVersion {
        /// Found.
        found: u32,
    },
    /// The body breaks a structural rule (module docs).
    #[error("heartbeat log for {provider} from {from_ms} ms: {reason}")]
    Malformed {
        /// Provider key.
        provider: String,
        /// Window start.
        from_ms: u64,
        /// Which rule.
        reason: &'static str,
    },
    /// The signer is not the coordinator the body names.
    #[error("signing key {signer} is not the heartbeat log's coordinator {coordinator}")]
    WrongSigner {
        /// Key of the identity used.
        signer: String,
        /// Key in the body.
        coordinator: String,
    },
    /// The signature does not verify.
    #[error("heartbeat log for {provider} from {from_ms} ms: signature does not verify under {coordinator}")]
    BadSignature {
        /// Provider key.
        provider: String,
        /// Window start.
        from_ms: u64,
        /// Coordinator key.
        coordinator: String,
    },
}

/// The heartbeats a coordinator observed from one provider in a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatsBody {
    /// [`HEARTBEATS_VERSION`].
    pub version: u32,
    /// The provider observed.
    pub provider: PublicKey,
    /// The coordinator that observed and signs.
    pub coordinator: PublicKey,
    /// Window start, unix ms (inclusive).
    pub from_ms: u64,
    /// Window end, unix ms (exclusive).
    pub to_ms: u64,
    /// Arrival times, unix ms, strictly ascending, inside the window.
    pub beats_ms: Vec<u64>,
}

impl HeartbeatsBody {
    /// Checks the structural rules (module docs).
    pub fn validate(&self) -> Result<(), HeartbeatsError> {
        if self.version != HEARTBEATS_VERSION {
            return Err(HeartbeatsError::UnsupportedVersion {
                found: self.version,
            });
        }
        let bad = |reason| HeartbeatsError::Malformed {
            provider: self.provider.to_string(),
            from_ms: self.from_ms,
            reason,
        };
        if self.from_ms >= self.to_ms {
            return Err(bad("window start must be before its end"));
        }
        if self.beats_ms.len() > MAX_BEATS {
            return Err(bad("too many heartbeats in one log"));
        }
        if self.beats_ms.windows(2).any(|w| w[0] >= w[1]) {
            return Err(bad("heartbeats must be strictly ascending"));
        }
        let inside = |t: &u64| self.from_ms <= *t && *t < self.to_ms;
        if !self.beats_ms.iter().all(inside) {
            return Err(bad("a heartbeat lies outside the window"));
        }
        Ok(())
    }

    /// The canonical encoding (module docs give the field order).
    pub fn canonical(&self) -> Vec<u8> {
        let mut e = Encoder::new(HEARTBEATS_DOMAIN);
        e.u64("version", self.version.into())
            .str("provider", self.provider.as_str())
            .str("coordinator", self.coordinator.as_str())
            .u64("from_ms", self.from_ms)
            .u64("to_ms", self.to_ms)
            .u64("beats", self.beats_ms.len() as u64);
        for t in &self.beats_ms {
            e.u64("at_ms", *t);
        }
        e.finish()
    }
}

/// A coordinator-signed heartbeat log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedHeartbeats {
    /// Content.
    pub body: HeartbeatsBody,
    /// Coordinator's Ed25519 signature over `body.canonical()`.
    pub signature: Signature,
}

impl SignedHeartbeats {
    /// Validates and signs as `coordinator`, which must be the key the body names.
    pub fn sign(body: HeartbeatsBody, coordinator: &Identity) -> Result<Self, HeartbeatsError> {
        body.validate()?;
        if coordinator.public() != &body.coordinator {
            return Err(HeartbeatsError::WrongSigner {
                signer: coordinator.public().to_string(),
                coordinator: body.coordinator.to_string(),
            });
        }
        let signature = coordinator.sign(&body.canonical());
        Ok(SignedHeartbeats { body, signature })
    }

    /// Checks the structure and the signature.
    pub fn verify(&self) -> Result<(), HeartbeatsError> {
        self.body.validate()?;
        self.body
            .coordinator
            .verify(&self.body.canonical(), &self.signature)
            .map_err(|_| HeartbeatsError::BadSignature {
                provider: self.body.provider.to_string(),
                from_ms: self.body.from_ms,
                coordinator: self.body.coordinator.to_string(),
            })
    }

    /// The observations, as [`crate::compute_statement`] takes them.
    pub fn heartbeats(&self) -> impl Iterator<Item = Heartbeat> + '_ {
        self.body.beats_ms.iter().map(|&at_ms| Heartbeat {
            provider: self.body.provider.clone(),
            at_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(coord: &Identity, beats: Vec<u64>) -> HeartbeatsBody {
        HeartbeatsBody {
            version: HEARTBEATS_VERSION,
            provider: Identity::from_seed([1; 32]).public().clone(),
            coordinator: coord.public().clone(),
            from_ms: 1_000,
            to_ms: 2_000,
            beats_ms: beats,
        }
    }

    #[test]
    fn signs_verifies_and_round_trips() {
        let coord = Identity::from_seed([2; 32]);
        let s = SignedHeartbeats::sign(body(&coord, vec![1_000, 1_500, 1_999]), &coord).unwrap();
        s.verify().unwrap();
        assert_eq!(
            s.heartbeats().map(|h| h.at_ms).collect::<Vec<_>>(),
            [1_000, 1_500, 1_999]
        );
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<SignedHeartbeats>(&json).unwrap(), s);
        let extra = json.replacen("{\"body\":{", "{\"body\":{\"x\":1,", 1);
        assert!(serde_json::from_str::<SignedHeartbeats>(&extra).is_err());
    }

    #[test]
    fn tampering_and_wrong_signers_are_detected() {
        let coord = Identity::from_seed([2; 32]);
        let s = SignedHeartbeats::sign(body(&coord, vec![1_100, 1_200]), &coord).unwrap();
        let mut added = s.clone();
        added.body.beats_ms.push(1_300);
        assert!(matches!(
            added.verify(),
            Err(HeartbeatsError::BadSignature { .. })
        ));
        let mut widened = s.clone();
        widened.body.to_ms += 1;
        assert!(matches!(
            widened.verify(),
            Err(HeartbeatsError::BadSignature { .. })
        ));
        let other = Identity::from_seed([3; 32]);
        assert!(matches!(
            SignedHeartbeats::sign(s.body.clone(), &other),
            Err(HeartbeatsError::WrongSigner { .. })
        ));
    }

    #[test]
    fn structural_rules_are_enforced() {
        let coord = Identity::from_seed([2; 32]);
        for beats in [
            vec![1_200, 1_100],
            vec![1_100, 1_100],
            vec![999],
            vec![2_000],
        ] {
            assert!(matches!(
                SignedHeartbeats::sign(body(&coord, beats), &coord),
                Err(HeartbeatsError::Malformed { .. })
            ));
        }
        let mut b = body(&coord, vec![]);
        b.to_ms = b.from_ms;
        assert!(matches!(
            b.validate(),
            Err(HeartbeatsError::Malformed { .. })
        ));
        let mut b = body(&coord, (0..=MAX_BEATS as u64).collect());
        b.from_ms = 0;
        b.to_ms = 10_000;
        assert!(matches!(
            b.validate(),
            Err(HeartbeatsError::Malformed { .. })
        ));
        b.beats_ms.pop();
        b.validate().unwrap();
        let mut v = body(&coord, vec![]);
        v.version = 2;
        assert_eq!(
            v.validate(),
            Err(HeartbeatsError::UnsupportedVersion { found: 2 })
        );
    }
}
