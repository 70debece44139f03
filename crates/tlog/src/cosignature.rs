//! Witness cosignatures on checkpoints, per C2SP tlog-cosignature
//! (`cosignature/v1`): a witness that checked a checkpoint is consistent with
//! everything it saw before adds a signed-note signature line whose key ID is
//! derived with algorithm byte 0x04 and whose signature bytes are
//! `timestamp (u64 big-endian seconds) || Ed25519 signature` over
//!
//! ```text
//! cosignature/v1
//! time <timestamp>
//! <checkpoint body>
//! ```
//!
//! Why by hand: neither signed_note 0.2 nor tlog_tiles 0.2 implements
//! cosignature/v1; signed_note does expose `Signer`/`Verifier` traits and
//! `key_id`, so this module plugs the v1 message format into them and the
//! note parsing, line format and key IDs stay signed_note's.

use base64::prelude::*;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use signed_note::{Note, NoteError, VerifierList};

use crate::checkpoint::{CheckpointVerifier, VerifiedCheckpoint};
use crate::error::TlogError;

/// signed-note algorithm byte for cosignature/v1 (C2SP signed-note table).
const ALG_COSIGNATURE_V1: u8 = 0x04;
/// timestamp (8) + Ed25519 signature (64).
const COSIG_LEN: usize = 72;

fn message(timestamp: u64, body: &[u8]) -> Vec<u8> {
    let mut m = format!("cosignature/v1\ntime {timestamp}\n").into_bytes();
    m.extend_from_slice(body);
    m
}

fn key_id(name: &str, key: &VerifyingKey) -> u32 {
    let mut k = vec![ALG_COSIGNATURE_V1];
    k.extend_from_slice(key.as_bytes());
    signed_note::key_id(name, &k)
}

fn check_name(name: &str) -> Result<(), TlogError> {
    if !signed_note::is_key_name_valid(name) {
        return Err(TlogError::InvalidOrigin {
            origin: name.to_owned(),
            reason: "a witness name must be non-empty with no whitespace or '+'",
        });
    }
    Ok(())
}

/// A witness's cosigning key.
pub struct WitnessSigner {
    name: String,
    key: SigningKey,
    timestamp: u64,
}

impl std::fmt::Debug for WitnessSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WitnessSigner")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl signed_note::Signer for WitnessSigner {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        key_id(&self.name, &self.key.verifying_key())
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        let sig = self.key.sign(&message(self.timestamp, msg));
        let mut out = self.timestamp.to_be_bytes().to_vec();
        out.extend_from_slice(&sig.to_bytes());
        Ok(out)
    }
}

impl WitnessSigner {
    /// A witness named `name` (e.g. `witness.example/w1`) from a 32-byte seed.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self, TlogError> {
        check_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            key: SigningKey::from_bytes(seed),
            timestamp: 0,
        })
    }

    /// The witness's verifier key: `<name>+<key id hex>+<base64(0x04||pub)>`.
    pub fn verifier_key(&self) -> String {
        let vk = self.key.verifying_key();
        let mut k = vec![ALG_COSIGNATURE_V1];
        k.extend_from_slice(vk.as_bytes());
        format!(
            "{}+{:08x}+{}",
            self.name,
            key_id(&self.name, &vk),
            BASE64_STANDARD.encode(k)
        )
    }

    /// Cosigns a checkpoint note at `timestamp` (unix seconds) and returns
    /// the note with the cosignature appended. The caller must already have
    /// verified the log's signature and consistency: a cosignature says so.
    pub fn cosign(&mut self, note: &[u8], timestamp: u64) -> Result<Vec<u8>, TlogError> {
        let malformed = |e: NoteError| TlogError::MalformedCheckpoint {
            reason: e.to_string(),
        };
        let mut n = Note::from_bytes(note).map_err(malformed)?;
        self.timestamp = timestamp;
        n.add_sigs(&[&*self]).map_err(|e| TlogError::Signing {
            reason: e.to_string(),
        })?;
        Ok(n.to_bytes())
    }
}

/// Verifies one witness's cosignatures.
#[derive(Clone)]
pub struct WitnessVerifier {
    name: String,
    key: VerifyingKey,
    id: u32,
}

impl std::fmt::Debug for WitnessVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WitnessVerifier")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl signed_note::Verifier for WitnessVerifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        self.id
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        if sig.len() != COSIG_LEN {
            return false;
        }
        let Some((ts, sig)) = sig.split_first_chunk::<8>() else {
            return false;
        };
        let Ok(sig) = ed25519_dalek::Signature::from_slice(sig) else {
            return false;
        };
        self.key
            .verify_strict(&message(u64::from_be_bytes(*ts), msg), &sig)
            .is_ok()
    }
}

impl WitnessVerifier {
    /// Parses a cosignature/v1 verifier key.
    pub fn new(vkey: &str) -> Result<Self, TlogError> {
        let bad = |reason: &str| TlogError::BadVerifierKey {
            vkey: vkey.to_owned(),
            reason: reason.to_owned(),
        };
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected <name>+<id>+<key>"));
        };
        check_name(name)?;
        let raw = BASE64_STANDARD
            .decode(b64)
            .map_err(|_| bad("key is not base64"))?;
        let Some((&ALG_COSIGNATURE_V1, public)) = raw.split_first() else {
            return Err(bad("not a cosignature/v1 (0x04) key"));
        };
        let public: [u8; 32] = public.try_into().map_err(|_| bad("key is not 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&public).map_err(|_| bad("not an Ed25519 key"))?;
        let id = u32::from_str_radix(id_hex, 16).map_err(|_| bad("key id is not hex"))?;
        if id_hex.len() != 8 || id != key_id(name, &key) {
            return Err(bad("key id does not match the key"));
        }
        Ok(Self {
            name: name.to_owned(),
            key,
            id,
        })
    }

    /// The witness name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A witness cosignature that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosigned {
    /// Witness name.
    pub witness: String,
    /// When it cosigned, unix seconds.
    pub timestamp: u64,
}

/// Verifies a checkpoint signed by the log AND cosigned by at least `quorum`
/// of `witnesses`; returns the checkpoint and the witnesses that cosigned.
pub fn verify_cosigned(
    note: &[u8],
    log: &CheckpointVerifier,
    witnesses: &[WitnessVerifier],
    quorum: usize,
) -> Result<(VerifiedCheckpoint, Vec<Cosigned>), TlogError> {
    let cp = log.verify(note)?;
    let parsed = Note::from_bytes(note).map_err(|e| TlogError::MalformedCheckpoint {
        reason: e.to_string(),
    })?;
    let mut found = Vec::new();
    for w in witnesses {
        let list = VerifierList::new(vec![Box::new(w.clone())]);
        match parsed.verify(&list) {
            Ok((sigs, _)) => {
                for s in sigs {
                    let ts = s
                        .signature()
                        .first_chunk::<8>()
                        .copied()
                        .unwrap_or_default();
                    found.push(Cosigned {
                        witness: w.name().to_owned(),
                        timestamp: u64::from_be_bytes(ts),
                    });
                }
            }
            Err(NoteError::UnverifiedNote) => {}
            Err(e) => {
                return Err(TlogError::BadSignature {
                    key_name: w.name().to_owned(),
                    reason: e.to_string(),
                })
            }
        }
    }
    if found.len() < quorum {
        return Err(TlogError::BadSignature {
            key_name: "witnesses".into(),
            reason: format!(
                "{} of the required {quorum} witness cosignatures",
                found.len()
            ),
        });
    }
    Ok((cp, found))
}
