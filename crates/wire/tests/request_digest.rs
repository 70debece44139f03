//! The request digest is defined once, in `proofmesh_receipt::digest`:
//! `JobSpec::request_digest` only delegates, and the verifier calls the
//! receipt function directly. Golden vectors recorded from the method
//! before the definition moved pin both to the same bytes.

use proofmesh_receipt::{request_digest, Digest, RequestForDigest, SamplingRecord};
use proofmesh_wire::{ChatMessage, JobSpec, PriceRate};

fn msg(role: &str, content: &str) -> ChatMessage {
    ChatMessage {
        role: role.into(),
        content: content.into(),
    }
}

fn spec(messages: Vec<ChatMessage>, sampling: SamplingRecord) -> JobSpec {
    JobSpec {
        job_id: "job_1".into(),
        receipt_id: "rcpt_1".into(),
        client: Digest::of(b"client"),
        model: Digest::of(b"model"),
        messages,
        sampling,
        dispatched_at_ms: 1_700_000_000_000,
        price: PriceRate {
            currency: "USD".into(),
            input_per_mtok_micros: 100,
            output_per_mtok_micros: 200,
        },
        stream: true,
        attestation: None,
    }
}

fn specs() -> Vec<JobSpec> {
    let greedy = SamplingRecord {
        temperature_milli: 0,
        top_p_milli: 1000,
        seed: 0,
        max_tokens: 16,
        stop: vec![],
        top_k_logits: 8,
    };
    let seeded = SamplingRecord {
        temperature_milli: 700,
        top_p_milli: 900,
        seed: 0xdead_beef_cafe,
        max_tokens: 256,
        stop: vec!["\n\n".into(), "</s>".into()],
        top_k_logits: 4,
    };
    vec![
        spec(vec![msg("user", "Hi")], greedy.clone()),
        spec(
            vec![
                msg("system", "You are terse."),
                msg("user", "Name a prime."),
                msg("assistant", "7"),
                msg("user", "Another, ünïcode ✓"),
            ],
            seeded.clone(),
        ),
        spec(vec![], seeded),
    ]
}

/// `JobSpec::request_digest` of [`specs`], recorded before the verifier
/// stopped building a `JobSpec` to call it.
const GOLDEN: [&str; 3] = [
    "sha256:10d2efb1a2147d6e48a23f5448282246acc704f287600f90909e447d8b91d68d",
    "sha256:5c3a74529140c54db3a194a5c3e4a72ac0522aab7bf47c94a44bc36701334aca",
    "sha256:10310fda9e1d8986a15c381d5be60697920347f49c0309279d308a70d1a7b307",
];

#[test]
fn method_and_receipt_function_agree_on_golden_vectors() {
    let specs = specs();
    assert_eq!(specs.len(), GOLDEN.len());
    for (s, golden) in specs.iter().zip(GOLDEN) {
        let pairs: Vec<(&str, &str)> = s
            .messages
            .iter()
            .map(|m| (m.role.as_str(), m.content.as_str()))
            .collect();
        let direct = request_digest(RequestForDigest {
            model: &s.model,
            messages: &pairs,
            sampling: &s.sampling,
        });
        assert_eq!(direct.as_str(), golden);
        assert_eq!(s.request_digest(), direct);
    }
}

#[test]
fn the_digest_ignores_what_is_not_the_request() {
    // Ids, client, price, streaming and dispatch time are not part of the
    // request: the verifier, which has none of them, gets the same digest.
    let base = specs().remove(1);
    let mut other = base.clone();
    other.job_id = "job_2".into();
    other.receipt_id = "rcpt_2".into();
    other.client = Digest::of(b"someone else");
    other.price.input_per_mtok_micros = 0;
    other.stream = false;
    other.dispatched_at_ms = 0;
    assert_eq!(base.request_digest(), other.request_digest());
    // The conversation, model and sampling are.
    let mut changed = base.clone();
    changed.messages[1].content.push('!');
    assert_ne!(base.request_digest(), changed.request_digest());
    let mut changed = base.clone();
    changed.sampling.seed += 1;
    assert_ne!(base.request_digest(), changed.request_digest());
    let mut changed = base.clone();
    changed.model = Digest::of(b"another model");
    assert_ne!(base.request_digest(), changed.request_digest());
}
