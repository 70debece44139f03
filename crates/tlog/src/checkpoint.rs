//! Signed checkpoints: a C2SP tlog-checkpoint body (origin line, decimal tree
//! size, base64 root hash, optional extension lines) wrapped in a C2SP
//! signed-note with one Ed25519 signature whose key name is the origin
//! (tlog-checkpoint "Signatures": the key name SHOULD be the origin).
//!
//! Why: the checkpoint is what the log commits to and what witnesses, monitors
//! and `proofmesh verify` check. Body formatting/parsing is tlog_tiles'
//! `Checkpoint`; note signing/verification is signed_note's
//! `StandardSigner`/`StandardVerifier`. Written here: building the signer from
//! the coordinator's 32-byte Ed25519 seed (signed_note only parses
//! `PRIVATE+KEY+...` strings), and a verifier that pins the origin and reports
//! structured errors.

use base64::prelude::*;
use ed25519_dalek::SigningKey;
use signed_note::{Note, NoteError, StandardSigner, StandardVerifier, VerifierList};
use tlog_tiles::{Checkpoint, Hash};

use crate::error::TlogError;

/// signed-note algorithm byte for Ed25519.
const ALG_ED25519: u8 = 0x01;

/// Signs checkpoints for one log.
#[derive(Clone)]
pub struct CheckpointSigner {
    signer: StandardSigner,
    origin: String,
    verifier_key: String,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("verifier_key", &self.verifier_key)
            .finish_non_exhaustive()
    }
}

/// Reports whether `origin` can be both a checkpoint origin line and a
/// signed-note key name (non-empty, no whitespace, no `+`).
fn check_origin(origin: &str) -> Result<(), TlogError> {
    if !signed_note::is_key_name_valid(origin) {
        return Err(TlogError::InvalidOrigin {
            origin: origin.to_owned(),
            reason: "must be non-empty with no whitespace or '+'",
        });
    }
    Ok(())
}

impl CheckpointSigner {
    /// A signer for log `origin` from a 32-byte Ed25519 seed (the same bytes
    /// `proofmesh_receipt::Identity::from_seed` takes).
    pub fn from_seed(origin: &str, seed: &[u8; 32]) -> Result<Self, TlogError> {
        check_origin(origin)?;
        let sk = SigningKey::from_bytes(seed);
        let verifier_key = signed_note::new_ed25519_verifier_key(origin, &sk.verifying_key());
        let mut public = vec![ALG_ED25519];
        public.extend_from_slice(sk.verifying_key().as_bytes());
        let mut private = vec![ALG_ED25519];
        private.extend_from_slice(seed);
        // signed_note builds signers only from this text form.
        let skey = format!(
            "PRIVATE+KEY+{origin}+{:08x}+{}",
            signed_note::key_id(origin, &public),
            BASE64_STANDARD.encode(&private)
        );
        let signer = StandardSigner::new(&skey).map_err(|e| TlogError::Signing {
            reason: e.to_string(),
        })?;
        Ok(Self {
            signer,
            origin: origin.to_owned(),
            verifier_key,
        })
    }

    /// The log origin (also the note key name).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The signed-note verifier key, `<origin>+<key id hex>+<base64(0x01||pub)>`.
    pub fn verifier_key(&self) -> &str {
        &self.verifier_key
    }

    /// Signs the checkpoint for `size` leaves with `root`; `extensions` are
    /// extra body lines (each non-empty, no newline). Returns the note bytes.
    pub fn sign(&self, size: u64, root: &Hash, extensions: &[&str]) -> Result<Vec<u8>, TlogError> {
        let mut ext = String::new();
        for line in extensions {
            if line.is_empty() || line.contains('\n') {
                return Err(TlogError::InvalidExtension {
                    line: (*line).to_owned(),
                });
            }
            ext.push_str(line);
            ext.push('\n');
        }
        let body = Checkpoint::new(&self.origin, size, *root, &ext).map_err(|e| {
            TlogError::MalformedCheckpoint {
                reason: e.to_string(),
            }
        })?;
        let mut note =
            Note::new(&body.to_bytes(), &[]).map_err(|e| TlogError::MalformedCheckpoint {
                reason: e.to_string(),
            })?;
        note.add_sigs(&[&self.signer])
            .map_err(|e| TlogError::Signing {
                reason: e.to_string(),
            })?;
        Ok(note.to_bytes())
    }
}

/// A checkpoint whose signature by the log key has been verified.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedCheckpoint {
    /// Origin line.
    pub origin: String,
    /// Tree size.
    pub size: u64,
    /// Root hash.
    pub root: Hash,
    /// Extension lines, without their newlines.
    pub extensions: Vec<String>,
}

/// Verifies checkpoints of one log against its verifier key.
#[derive(Clone)]
pub struct CheckpointVerifier {
    verifier: StandardVerifier,
    origin: String,
}

impl std::fmt::Debug for CheckpointVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointVerifier")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl CheckpointVerifier {
    /// A verifier for log `origin` from a signed-note verifier key string,
    /// whose key name must be `origin`.
    pub fn new(origin: &str, vkey: &str) -> Result<Self, TlogError> {
        check_origin(origin)?;
        let bad = |reason: String| TlogError::BadVerifierKey {
            vkey: vkey.to_owned(),
            reason,
        };
        let verifier = StandardVerifier::new(vkey).map_err(|e| bad(e.to_string()))?;
        if signed_note::Verifier::name(&verifier) != origin {
            return Err(bad(format!("key name is not the origin {origin:?}")));
        }
        Ok(Self {
            verifier,
            origin: origin.to_owned(),
        })
    }

    /// Parses a signed checkpoint note, checks the log's signature (other
    /// signatures, e.g. witness cosignatures, are ignored), and checks the
    /// body names this log.
    pub fn verify(&self, note: &[u8]) -> Result<VerifiedCheckpoint, TlogError> {
        let malformed = |reason: String| TlogError::MalformedCheckpoint { reason };
        let note = Note::from_bytes(note).map_err(|e| malformed(e.to_string()))?;
        let known = VerifierList::new(vec![Box::new(self.verifier.clone())]);
        note.verify(&known).map_err(|e| TlogError::BadSignature {
            key_name: self.origin.clone(),
            reason: match e {
                NoteError::UnverifiedNote => "no signature by the log key".to_owned(),
                other => other.to_string(),
            },
        })?;
        let body = Checkpoint::from_bytes(note.text()).map_err(|e| malformed(e.to_string()))?;
        if body.origin() != self.origin {
            return Err(TlogError::WrongOrigin {
                expected: self.origin.clone(),
                found: body.origin().to_owned(),
            });
        }
        Ok(VerifiedCheckpoint {
            origin: body.origin().to_owned(),
            size: body.size(),
            root: *body.hash(),
            extensions: body.extension().lines().map(str::to_owned).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note_vectors() -> serde_json::Value {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/mod/sumdb_note_vectors.json");
        let bytes = std::fs::read(&p)
            .unwrap_or_else(|e| panic!("golden vector {} is missing: {e}", p.display()));
        serde_json::from_slice(&bytes).unwrap()
    }

    /// Go sumdb/note `TestSign`: the signer built from the published
    /// PeterNeumann seed reproduces Go's signed note byte for byte (Ed25519
    /// is deterministic), and its verifier key is the published one.
    #[test]
    fn seed_signer_reproduces_go_signature() {
        let v = note_vectors();
        let peter = &v["keys"]["PeterNeumann"];
        let skey = peter["skey"].as_str().unwrap();
        let b64 = skey.splitn(5, '+').nth(4).unwrap();
        let private = BASE64_STANDARD.decode(b64).unwrap();
        assert_eq!(private[0], ALG_ED25519);
        let seed: [u8; 32] = private[1..].try_into().unwrap();
        let s = CheckpointSigner::from_seed("PeterNeumann", &seed).unwrap();
        assert_eq!(s.verifier_key(), peter["vkey"].as_str().unwrap());

        let vector = &v["vectors"][0];
        assert_eq!(vector["name"], "sign_peter");
        let mut note = Note::new(vector["text"].as_str().unwrap().as_bytes(), &[]).unwrap();
        note.add_sigs(&[&s.signer]).unwrap();
        assert_eq!(
            String::from_utf8(note.to_bytes()).unwrap(),
            vector["want_signed_note"].as_str().unwrap()
        );
    }
}
