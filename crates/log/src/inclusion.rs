//! Offline check that a receipt is in the log: the receipt's attached
//! [`LogInclusion`] names a leaf index, a signed checkpoint and an RFC 6962
//! §2.1.1 audit path; this verifies the checkpoint's signature (C2SP
//! tlog-checkpoint / signed-note) and the path from the receipt's leaf hash
//! to the checkpoint root.
//!
//! Why here: `proofmesh receipt verify`, monitors and tests all need the same
//! check, and it must not depend on trusting the coordinator that served the
//! receipt: the only inputs are the receipt and the log's verifier key. It
//! needs the entry format (the leaf is the receipt's loggable form), so it
//! lives with [`crate::entry`], not in the spec crate `proofmesh_tlog`.

use proofmesh_receipt::{LogInclusion, Receipt};
use proofmesh_tlog::{
    decode_proof, verify_inclusion, CheckpointVerifier, TlogError, VerifiedCheckpoint,
};

use crate::entry::{EntryError, LogEntry};

fn bad(reason: impl Into<String>) -> EntryError {
    EntryError::Tlog(TlogError::BadInclusion {
        reason: reason.into(),
    })
}

/// Verifies `receipt.log` against the log key in `verifier`: the checkpoint
/// signature, that it names the claimed tree size, and the inclusion of the
/// receipt's loggable form (see [`LogEntry::receipt`]). Returns the checkpoint.
pub fn verify_receipt_inclusion(
    receipt: &Receipt,
    verifier: &CheckpointVerifier,
) -> Result<VerifiedCheckpoint, EntryError> {
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
