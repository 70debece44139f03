//! The checks every provider-signed receipt must pass against the job it was
//! dispatched for, shared by chat jobs (`job.rs`) and proved inferences
//! (`zk/check.rs`): same ids, client, model, keys, request digest, sampling,
//! attestation, dispatch time and rates, a consistent body, and a valid
//! provider signature. Pure: no I/O.

use proofmesh_receipt::{AttestationRef, Digest, PublicKey, Receipt, SamplingRecord};
use proofmesh_wire::PriceRate;

/// What the coordinator dispatched, as the receipt must repeat it.
#[derive(Debug, Clone)]
pub struct DispatchTerms<'a> {
    /// Receipt id the coordinator assigned.
    pub receipt_id: &'a str,
    /// Job id.
    pub job_id: &'a str,
    /// Client digest.
    pub client: &'a Digest,
    /// Model digest.
    pub model: &'a Digest,
    /// The provider the job went to.
    pub provider: &'a PublicKey,
    /// This coordinator.
    pub coordinator: &'a PublicKey,
    /// Digest of the request as dispatched.
    pub request_digest: Digest,
    /// The sampling record the receipt must carry.
    pub sampling: &'a SamplingRecord,
    /// The attestation the job was placed under.
    pub attestation: &'a Option<AttestationRef>,
    /// Dispatch time.
    pub dispatched_at_ms: u64,
    /// The agreed rates.
    pub price: &'a PriceRate,
}

/// `"{what} does not match the job"`.
pub fn mismatch(what: &str) -> String {
    format!("{what} does not match the job")
}

impl DispatchTerms<'_> {
    /// Checks `r` repeats these terms, is self-consistent and is signed by
    /// the provider. The error names the first field that differs.
    pub fn check(&self, r: &Receipt) -> Result<(), String> {
        let b = &r.body;
        let same = |what: &str, ok: bool| if ok { Ok(()) } else { Err(mismatch(what)) };
        same("receipt_id", b.receipt_id == self.receipt_id)?;
        same("job_id", b.job_id == self.job_id)?;
        same("client", &b.client == self.client)?;
        same("model", &b.model == self.model)?;
        same("provider_key", &b.provider_key == self.provider)?;
        same("coordinator_key", &b.coordinator_key == self.coordinator)?;
        same("request_digest", b.request_digest == self.request_digest)?;
        same("sampling", &b.sampling == self.sampling)?;
        same("attestation", &b.attestation == self.attestation)?;
        same(
            "dispatched_at_ms",
            b.dispatched_at_ms == self.dispatched_at_ms,
        )?;
        same("currency", b.price.currency == self.price.currency)?;
        same(
            "input rate",
            b.price.input_per_mtok_micros == self.price.input_per_mtok_micros,
        )?;
        same(
            "output rate",
            b.price.output_per_mtok_micros == self.price.output_per_mtok_micros,
        )?;
        b.check_consistency().map_err(|e| e.to_string())?;
        r.verify_provider_signature().map_err(|e| e.to_string())
    }
}
