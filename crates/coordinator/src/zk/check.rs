//! Pure checks of a proving provider's answer against the job it was sent.
//!
//! Two kinds of rejection, because they have different consequences:
//!
//! - [`ZkRejection::Result`]: the answer is not a claim about this job by
//!   this provider (wrong ids, rates or digests of the request, a bad
//!   signature). It is refused and the job retried elsewhere, as a chat
//!   result that fails its checks is.
//! - [`ZkRejection::Proof`]: the provider *signed* a receipt for this job,
//!   but the proof does not back it (the pairing check fails, or the bundle
//!   is for another input, nonce, key or output than the signed receipt
//!   says). That is a false claim under the provider's key, and it is
//!   treated like a failed audit. The signed receipt and the bundle are the
//!   evidence anyone can re-check.

use proofmesh_receipt::zk::zk_sampling;
use proofmesh_receipt::PublicKey;
use proofmesh_wire::{ZkJobResult, ZkJobSpec};

use super::ZkModel;
use crate::dispatch_check::{mismatch, DispatchTerms};

/// Why an answer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZkRejection {
    /// Not an attributable claim about this job: refuse and retry.
    #[error("result rejected: {0}")]
    Result(String),
    /// A signed claim whose proof fails: a failed audit.
    #[error("proof failed: {0}")]
    Proof(String),
}

fn result_err(what: &str) -> ZkRejection {
    ZkRejection::Result(mismatch(what))
}

/// Checks `result` from `provider` for `spec` of `model`.
pub fn check(
    model: &ZkModel,
    spec: &ZkJobSpec,
    provider: &PublicKey,
    coordinator: &PublicKey,
    result: &ZkJobResult,
) -> Result<(), ZkRejection> {
    check_receipt(spec, provider, coordinator, result)?;
    check_proof(model, spec, result).map_err(ZkRejection::Proof)
}

/// The receipt is this provider's signed claim about this job.
fn check_receipt(
    spec: &ZkJobSpec,
    provider: &PublicKey,
    coordinator: &PublicKey,
    result: &ZkJobResult,
) -> Result<(), ZkRejection> {
    let b = &result.receipt.body;
    let same = |what: &str, ok: bool| if ok { Ok(()) } else { Err(result_err(what)) };
    // The zk job's fixed shape first, so its errors name what is zk-specific.
    same(
        "token counts (1 inference, 0 completion tokens)",
        b.prompt_tokens == 1 && b.completion_tokens == 0,
    )?;
    same("finish_reason (must be stop)", b.finish_reason == "stop")?;
    same("zk reference (missing)", b.zk.is_some())?;
    let sampling = zk_sampling();
    DispatchTerms {
        receipt_id: &spec.receipt_id,
        job_id: &spec.job_id,
        client: &spec.client,
        model: &spec.model,
        provider,
        coordinator,
        request_digest: spec.request_digest(),
        sampling: &sampling,
        attestation: &spec.attestation,
        dispatched_at_ms: spec.dispatched_at_ms,
        price: &spec.price,
    }
    .check(&result.receipt)
    .map_err(ZkRejection::Result)
}

/// The bundle backs the signed receipt, is for this job's input under the
/// registered key, and its proof verifies.
fn check_proof(model: &ZkModel, spec: &ZkJobSpec, result: &ZkJobResult) -> Result<(), String> {
    let bundle = &result.bundle;
    let zk = result
        .receipt
        .body
        .zk
        .as_ref()
        .ok_or("receipt has no zk reference")?;
    if zk.vk_digest != model.entry.vk_digest {
        return Err("verifying key (receipt) is not the registered one".into());
    }
    if bundle.input != spec.input {
        return Err("input (bundle) is not the job's".into());
    }
    proofmesh_wire::bundle_matches_receipt(&result.receipt.body, bundle)?;
    proofmesh_zkml::verify_bundle(&model.vk, bundle).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proofmesh_receipt::{Identity, Receipt};
    use proofmesh_wire::PriceRate;
    use rand::SeedableRng;

    struct Fixture {
        model: ZkModel,
        qm: proofmesh_zkml::QuantModel,
        pk: proofmesh_zkml::ProvingKey,
        provider: Identity,
        coordinator: Identity,
    }

    fn fixture() -> Fixture {
        let qm = proofmesh_zkml::digits_model().unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (pk, vk) = proofmesh_zkml::setup(&qm, &mut rng).unwrap();
        Fixture {
            model: ZkModel::from_vk("digits-mlp", vk.to_bytes()).unwrap(),
            qm,
            pk,
            provider: Identity::from_seed([1; 32]),
            coordinator: Identity::from_seed([2; 32]),
        }
    }

    fn spec(f: &Fixture, job: &str, input: Vec<i8>) -> ZkJobSpec {
        ZkJobSpec {
            job_id: job.into(),
            receipt_id: format!("rcpt_{job}"),
            client: proofmesh_receipt::client_hash("c"),
            model: proofmesh_receipt::Digest::try_from(f.model.digest()).unwrap(),
            input,
            dispatched_at_ms: 1_000,
            price: PriceRate {
                currency: "USD".into(),
                input_per_mtok_micros: 5_000_000,
                output_per_mtok_micros: 0,
            },
            attestation: None,
        }
    }

    /// Proves `prove_for` (its input and nonce), then signs a receipt for
    /// `spec` over whatever bundle `edit` leaves.
    fn answer(
        f: &Fixture,
        spec: &ZkJobSpec,
        prove_for: &ZkJobSpec,
        edit: impl FnOnce(&mut proofmesh_zkml::ProofBundle),
    ) -> ZkJobResult {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut bundle =
            proofmesh_zkml::prove(&f.pk, &f.qm, &prove_for.input, &prove_for.nonce(), &mut rng)
                .unwrap();
        edit(&mut bundle);
        let body = proofmesh_provider::zk_receipt_body(
            spec,
            f.provider.public(),
            f.coordinator.public(),
            &bundle,
            2_000,
        )
        .unwrap();
        ZkJobResult {
            receipt: Receipt::sign_as_provider(body, &f.provider),
            bundle,
        }
    }

    fn run(f: &Fixture, spec: &ZkJobSpec, r: &ZkJobResult) -> Result<(), ZkRejection> {
        check(
            &f.model,
            spec,
            f.provider.public(),
            f.coordinator.public(),
            r,
        )
    }

    fn proof_failure(r: Result<(), ZkRejection>, needle: &str) {
        match r {
            Err(ZkRejection::Proof(why)) => assert!(why.contains(needle), "{why}"),
            other => panic!("expected a proof failure with {needle:?}, got {other:?}"),
        }
    }

    #[test]
    fn every_false_claim_is_a_proof_failure_and_every_misdirected_one_a_rejection() {
        let f = fixture();
        let job = spec(&f, "job_a", vec![3; 64]);
        let honest = answer(&f, &job, &job, |_| {});
        run(&f, &job, &honest).unwrap();

        // A made-up output, signed: the pairing check fails.
        let lie = answer(&f, &job, &job, |b| {
            b.class = (b.class + 1) % 10;
            b.logits[b.class as usize] = 127;
        });
        proof_failure(run(&f, &job, &lie), "does not verify");
        // A flipped proof byte, signed with the new proof's digest.
        let flipped = answer(&f, &job, &job, |b| {
            use base64::Engine as _;
            let e = base64::engine::general_purpose::STANDARD;
            let mut raw = e.decode(&b.proof).unwrap();
            raw[5] ^= 1;
            b.proof = e.encode(raw);
        });
        assert!(matches!(
            run(&f, &job, &flipped),
            Err(ZkRejection::Proof(_))
        ));
        // Another job's proof (replayed nonce), another input's proof.
        let other = spec(&f, "job_b", vec![3; 64]);
        proof_failure(run(&f, &job, &answer(&f, &job, &other, |_| {})), "nonce");
        let other_input = spec(&f, "job_a", vec![-7; 64]);
        proof_failure(
            run(&f, &job, &answer(&f, &job, &other_input, |_| {})),
            "input",
        );
        // A bundle that claims another verifying key.
        let foreign = answer(&f, &job, &job, |b| b.vk_digest = "00".repeat(32));
        proof_failure(run(&f, &job, &foreign), "verifying key");

        // Not a claim about this job by this provider: rejected, not blamed.
        let mut wrong_job = honest.clone();
        wrong_job.receipt.body.job_id = "job_x".into();
        assert!(matches!(
            run(&f, &job, &wrong_job),
            Err(ZkRejection::Result(_))
        ));
        let mut unsigned = honest.clone();
        unsigned.receipt =
            Receipt::sign_as_provider(unsigned.receipt.body, &Identity::from_seed([9; 32]));
        assert!(matches!(
            run(&f, &job, &unsigned),
            Err(ZkRejection::Result(_))
        ));
    }
}
