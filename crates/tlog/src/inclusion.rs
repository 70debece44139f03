//! Offline check that a receipt is in the log: the receipt's attached
//! [`LogInclusion`] names a leaf index, a signed checkpoint and an RFC 6962
//! §2.1.1 audit path; this verifies the checkpoint's signature (C2SP
//! tlog-checkpoint / signed-note) and the path from the receipt's leaf hash
//! to the checkpoint root.
//!
//! Why here: `proofmesh receipt verify`, monitors and tests all need the same
//! check, and it must not depend on trusting the coordinator that served the
//! receipt: the only inputs are the receipt and the log's verifier key.

use base64::prelude::*;
use proofmesh_receipt::{LogInclusion, Receipt};
use tlog_tiles::Hash;

use crate::checkpoint::{CheckpointVerifier, VerifiedCheckpoint};
use crate::entry::LogEntry;
use crate::error::TlogError;
use crate::tree::{verify_inclusion, MAX_INCLUSION_PROOF_LEN};

fn bad(reason: impl Into<String>) -> TlogError {
    TlogError::BadInclusion {
        reason: reason.into(),
    }
}

/// Decodes base64 proof hashes, bounding their number.
pub fn decode_proof(proof: &[String]) -> Result<Vec<Hash>, TlogError> {
    if proof.len() > MAX_INCLUSION_PROOF_LEN {
        return Err(TlogError::ProofTooLong {
            len: proof.len(),
            max: MAX_INCLUSION_PROOF_LEN,
        });
    }
    proof
        .iter()
        .map(|h| {
            let bytes = BASE64_STANDARD
                .decode(h)
                .map_err(|_| bad("proof hash is not base64"))?;
            let arr: [u8; 32] = bytes
                .try_into()
                .map_err(|_| bad("proof hash is not 32 bytes"))?;
            Ok(Hash(arr))
        })
        .collect()
}

/// Encodes proof hashes as base64 strings (the [`LogInclusion`] form).
pub fn encode_proof(proof: &[Hash]) -> Vec<String> {
    proof.iter().map(|h| BASE64_STANDARD.encode(h.0)).collect()
}

/// Verifies `receipt.log` against the log key in `verifier`: the checkpoint
/// signature, that it names the claimed tree size, and the inclusion of the
/// receipt's loggable form (see [`LogEntry::receipt`]). Returns the checkpoint.
pub fn verify_receipt_inclusion(
    receipt: &Receipt,
    verifier: &CheckpointVerifier,
) -> Result<VerifiedCheckpoint, TlogError> {
    let inc: &LogInclusion = receipt
        .log
        .as_ref()
        .ok_or_else(|| bad("the receipt carries no log inclusion"))?;
    let cp = verifier.verify(inc.checkpoint.as_bytes())?;
    if cp.size != inc.tree_size {
        return Err(bad(format!(
            "checkpoint is for size {}, the proof for size {}",
            cp.size, inc.tree_size
        )));
    }
    let proof = decode_proof(&inc.inclusion_proof)?;
    let leaf = LogEntry::receipt(receipt).leaf_hash()?;
    verify_inclusion(inc.index, cp.size, &leaf, &proof, &cp.root)?;
    Ok(cp)
}
