//! The text form of inclusion proofs: audit-path hashes (RFC 6962 §2.1.1)
//! as standard base64 strings, the form a receipt's attached log inclusion
//! and the log's HTTP API carry them in.
//!
//! Why here: every reader of such a proof (`proofmesh receipt verify`,
//! monitors, the log service answering requests) decodes it with the same
//! bound on its length, before [`crate::verify_inclusion`] checks it.

use base64::prelude::*;
use tlog_tiles::Hash;

use crate::error::TlogError;
use crate::tree::MAX_INCLUSION_PROOF_LEN;

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

/// Encodes proof hashes as base64 strings (the form [`decode_proof`] reads).
pub fn encode_proof(proof: &[Hash]) -> Vec<String> {
    proof.iter().map(|h| BASE64_STANDARD.encode(h.0)).collect()
}
