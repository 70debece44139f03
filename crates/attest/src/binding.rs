//! Binding evidence to a provider key and a coordinator-issued nonce.
//!
//! Evidence is useless unless it names the key that signs receipts. At
//! registration the coordinator issues a fresh 32-byte nonce; the provider
//! puts [`report_data_for`]`(its Ed25519 public key, nonce)` into the TEE
//! report-data field (TDX REPORTDATA, SGX REPORTDATA, SNP REPORT_DATA — all
//! 64 bytes) and passes the raw nonce as the SPDM requester nonce of every
//! GPU's GET_MEASUREMENTS. Construction (version 1):
//!
//! ```text
//! report_data = SHA-512( "proofmesh/attest/report-data/v1" ‖ 0x00 ‖
//!                        provider_pubkey[32] ‖ nonce[32] )        (64 bytes)
//! gpu nonce   = nonce                                              (32 bytes)
//! ```
//!
//! The domain tag keeps the value from colliding with any other use of the
//! key; fixed-length fields make the encoding unambiguous. The GPU carries
//! the nonce itself (SPDM has only 32 bytes); it is tied to the key through
//! the TEE report, which binds the same nonce. Freshness (the nonce was
//! issued by us, recently, and used once) is the coordinator's job: this
//! module only checks that the evidence names the given key and nonce.

use crate::verdict::{GpuVerdict, TeeVerdict};
use sha2::Digest;

/// Domain separation tag of the report-data construction.
pub const REPORT_DATA_DOMAIN: &[u8] = b"proofmesh/attest/report-data/v1";

/// Why evidence is not bound to (key, nonce).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    /// The report data matches the nonce under a different key: evidence
    /// produced for (or moved from) another provider.
    #[error("TEE report data names a different provider key")]
    WrongKey,
    /// The report data matches neither this nonce with this key nor, as far
    /// as we can tell, anything we issued: stale or replayed evidence.
    #[error("TEE report data does not bind this nonce (stale, replayed or foreign)")]
    WrongNonce,
    /// A GPU's requester nonce is not the issued nonce.
    #[error("GPU {index} evidence carries a different nonce")]
    GpuWrongNonce { index: usize },
}

/// The 64 bytes a provider must put into its TEE report data.
pub fn report_data_for(provider_pubkey: &[u8; 32], nonce: &[u8; 32]) -> [u8; 64] {
    let mut h = sha2::Sha512::new();
    h.update(REPORT_DATA_DOMAIN);
    h.update([0u8]);
    h.update(provider_pubkey);
    h.update(nonce);
    h.finalize().into()
}

/// The SPDM requester nonce a provider must use for every GPU.
pub fn gpu_nonce_for(nonce: &[u8; 32]) -> [u8; 32] {
    *nonce
}

/// Check that verified evidence names `provider_pubkey` and `nonce`.
///
/// `known_keys` lets the caller say which other registered keys exist, so a
/// report made for another provider is named [`BindingError::WrongKey`]
/// rather than [`BindingError::WrongNonce`] (both are rejections).
pub fn check_binding(
    tee: &TeeVerdict,
    gpus: &[GpuVerdict],
    provider_pubkey: &[u8; 32],
    nonce: &[u8; 32],
    known_keys: &[[u8; 32]],
) -> Result<(), BindingError> {
    check_report_data(&tee.report_data, provider_pubkey, nonce, known_keys)?;
    check_gpu_nonces(gpus, nonce)
}

/// The binding check on raw report data. This is the seam tests use with
/// real samples (which cannot carry our binding): they feed the sample's
/// verified report data and the key/nonce whose binding it is.
pub fn check_report_data(
    report_data: &[u8; 64],
    provider_pubkey: &[u8; 32],
    nonce: &[u8; 32],
    known_keys: &[[u8; 32]],
) -> Result<(), BindingError> {
    if *report_data == report_data_for(provider_pubkey, nonce) {
        return Ok(());
    }
    if known_keys
        .iter()
        .any(|k| k != provider_pubkey && *report_data == report_data_for(k, nonce))
    {
        return Err(BindingError::WrongKey);
    }
    Err(BindingError::WrongNonce)
}

/// Every GPU must have signed over the issued nonce.
pub fn check_gpu_nonces(gpus: &[GpuVerdict], nonce: &[u8; 32]) -> Result<(), BindingError> {
    let want = gpu_nonce_for(nonce);
    for (index, g) in gpus.iter().enumerate() {
        if g.nonce != want {
            return Err(BindingError::GpuWrongNonce { index });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn construction_is_pinned() {
        // Known-answer test: changing the construction breaks deployed providers.
        let rd = report_data_for(&[1; 32], &[2; 32]);
        let mut h = sha2::Sha512::new();
        h.update(b"proofmesh/attest/report-data/v1\0");
        h.update([1u8; 32]);
        h.update([2u8; 32]);
        assert_eq!(rd.as_slice(), h.finalize().as_slice());
        assert_ne!(
            rd,
            report_data_for(&[2; 32], &[1; 32]),
            "fields are ordered"
        );
    }

    #[test]
    fn wrong_key_and_wrong_nonce_are_named() {
        let (me, other, nonce) = ([1u8; 32], [9u8; 32], [2u8; 32]);
        let mine = report_data_for(&me, &nonce);
        assert_eq!(check_report_data(&mine, &me, &nonce, &[]), Ok(()));
        let theirs = report_data_for(&other, &nonce);
        assert_eq!(
            check_report_data(&theirs, &me, &nonce, &[other]),
            Err(BindingError::WrongKey)
        );
        assert_eq!(
            check_report_data(&mine, &me, &[3; 32], &[other]),
            Err(BindingError::WrongNonce)
        );
    }
}
