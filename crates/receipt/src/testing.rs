//! Test seam: a ready-made, correctly signed receipt for other crates' tests.
//! Not used by production code.

use crate::digest::{client_hash, response_digest, Digest};
use crate::identity::Identity;
use crate::receipt::{charge_micros, Price, Receipt, ReceiptBody, SamplingRecord, RECEIPT_VERSION};

/// A consistent receipt body with the given token counts.
pub fn sample_body(
    provider: &Identity,
    coord: &Identity,
    prompt: u32,
    completion: u32,
) -> ReceiptBody {
    ReceiptBody {
        version: RECEIPT_VERSION,
        receipt_id: "rcpt_0123".into(),
        job_id: "job_0123".into(),
        client: client_hash("client-1"),
        provider_key: provider.public().clone(),
        coordinator_key: coord.public().clone(),
        model: Digest::of(b"model"),
        request_digest: Digest::of(b"req"),
        response_digest: response_digest(&[1, 2, 3], "Paris", "stop"),
        prompt_tokens: prompt,
        completion_tokens: completion,
        finish_reason: "stop".into(),
        sampling: SamplingRecord {
            temperature_milli: 700,
            top_p_milli: 950,
            seed: 42,
            max_tokens: 64,
            stop: vec!["\n\n".into()],
            top_k_logits: 8,
        },
        logits_digest: Digest::of(b"logits"),
        dispatched_at_ms: 1_700_000_000_000,
        finished_at_ms: 1_700_000_000_500,
        price: Price {
            currency: "USD".into(),
            input_per_mtok_micros: 100_000,
            output_per_mtok_micros: 200_000,
            charged_micros: charge_micros(prompt, completion, 100_000, 200_000),
        },
        attestation: None,
        zk: None,
    }
}

/// A provider-signed and coordinator-countersigned receipt with the given ids.
pub fn sample_receipt(receipt_id: &str, job_id: &str) -> Receipt {
    let p = Identity::from_seed([1; 32]);
    let c = Identity::from_seed([2; 32]);
    let mut body = sample_body(&p, &c, 16, 8);
    body.receipt_id = receipt_id.into();
    body.job_id = job_id.into();
    let mut r = Receipt::sign_as_provider(body, &p);
    r.countersign(&c);
    r
}
