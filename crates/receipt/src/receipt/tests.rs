//! Unit and property tests for receipts: round trips, tampering, arithmetic.

use super::*;
use proptest::prelude::*;

use crate::testing::sample_body as body;

fn signed() -> Receipt {
    let p = Identity::from_seed([1; 32]);
    let c = Identity::from_seed([2; 32]);
    let mut r = Receipt::sign_as_provider(body(&p, &c, 16, 8), &p);
    r.countersign(&c);
    r
}

#[test]
fn signed_receipt_verifies_and_pins() {
    let r = signed();
    let v = r.verify(None).unwrap();
    assert_eq!(v.coordinator, r.body.coordinator_key);
    let other = Identity::from_seed([3; 32]);
    assert!(matches!(
        r.verify(Some(other.public())),
        Err(ReceiptError::UntrustedKey {
            role: "coordinator",
            ..
        })
    ));
}

#[test]
fn json_roundtrip_verifies() {
    let r = signed();
    let back = Receipt::from_json(r.to_json_pretty().as_bytes()).unwrap();
    assert_eq!(back, r);
    back.verify(None).unwrap();
}

#[test]
fn flipping_any_byte_fails_verification() {
    let json = signed().to_json_pretty().into_bytes();
    for i in 0..json.len() {
        for mask in [0x01u8, 0x20] {
            let mut t = json.clone();
            t[i] ^= mask;
            let outcome = Receipt::from_json(&t).and_then(|r| r.verify(None));
            assert!(
                outcome.is_err(),
                "flipping byte {i} ({:?}) with mask {mask:#x} still verified",
                json[i] as char
            );
        }
    }
}

#[test]
fn missing_countersignature_is_named() {
    let mut r = signed();
    r.coordinator_signature = None;
    assert_eq!(r.verify(None), Err(ReceiptError::MissingCountersignature));
}

#[test]
fn body_change_breaks_provider_signature() {
    let mut r = signed();
    r.body.completion_tokens += 1;
    r.body.price.charged_micros = charge_micros(16, 9, 100_000, 200_000);
    assert!(matches!(
        r.verify(None),
        Err(ReceiptError::ProviderSignature { .. })
    ));
}

#[test]
fn wrong_charge_is_named() {
    let p = Identity::from_seed([1; 32]);
    let c = Identity::from_seed([2; 32]);
    let mut b = body(&p, &c, 16, 8);
    b.price.charged_micros += 1;
    let mut r = Receipt::sign_as_provider(b, &p);
    r.countersign(&c);
    assert!(matches!(
        r.verify(None),
        Err(ReceiptError::PriceMismatch { .. })
    ));
}

#[test]
fn unknown_fields_are_rejected() {
    let mut v: serde_json::Value = serde_json::from_str(&signed().to_json_pretty()).unwrap();
    v["body"]["note"] = serde_json::json!("unsigned");
    let err = Receipt::from_json(v.to_string().as_bytes()).unwrap_err();
    assert!(matches!(err, ReceiptError::Malformed { .. }));
}

#[test]
fn charge_rounds_up() {
    assert_eq!(charge_micros(0, 0, 5, 5), 0);
    assert_eq!(charge_micros(1, 0, 1, 0), 1);
    assert_eq!(charge_micros(1_000_000, 0, 7, 0), 7);
    assert_eq!(charge_micros(1_000_001, 0, 1, 0), 2);
}

proptest! {
    #[test]
    fn any_consistent_receipt_roundtrips(prompt in 0u32..100_000, completion in 0u32..64,
                                         seed in any::<u64>(), stop in proptest::collection::vec(".{0,8}", 0..3)) {
        let p = Identity::from_seed([4; 32]);
        let c = Identity::from_seed([5; 32]);
        let mut b = body(&p, &c, prompt, completion);
        b.sampling.seed = seed;
        b.sampling.stop = stop;
        let mut r = Receipt::sign_as_provider(b, &p);
        r.countersign(&c);
        let back = Receipt::from_json(serde_json::to_string(&r).unwrap().as_bytes()).unwrap();
        prop_assert!(back.verify(Some(c.public())).is_ok());
    }

    #[test]
    fn charge_is_monotone(a in 0u32..1_000_000, b in 0u32..1_000_000, r in 0u64..10_000_000) {
        prop_assert!(charge_micros(a, 0, r, 0) <= charge_micros(a.saturating_add(b), 0, r, 0));
    }
}

fn signed_zk() -> Receipt {
    let p = Identity::from_seed([1; 32]);
    let c = Identity::from_seed([2; 32]);
    let mut b = body(&p, &c, 1, 0);
    b.zk = Some(crate::zk::ZkRef {
        vk_digest: "ab".repeat(32),
        proof_digest: Digest::of(b"proof"),
    });
    let mut r = Receipt::sign_as_provider(b, &p);
    r.countersign(&c);
    r
}

#[test]
fn zk_reference_is_signed_and_every_byte_matters() {
    let r = signed_zk();
    r.verify(None).unwrap();
    // Present and absent encode differently, so the field cannot be dropped.
    let mut dropped = r.clone();
    dropped.body.zk = None;
    assert!(matches!(
        dropped.verify(None),
        Err(ReceiptError::ProviderSignature { .. })
    ));
    let mut swapped = r.clone();
    if let Some(z) = swapped.body.zk.as_mut() {
        z.proof_digest = Digest::of(b"another proof");
    }
    assert!(matches!(
        swapped.verify(None),
        Err(ReceiptError::ProviderSignature { .. })
    ));
    let json = r.to_json_pretty().into_bytes();
    for i in 0..json.len() {
        let mut t = json.clone();
        t[i] ^= 0x01;
        let outcome = Receipt::from_json(&t).and_then(|r| r.verify(None));
        assert!(outcome.is_err(), "flipping byte {i} still verified");
    }
}

#[test]
fn chat_receipts_keep_their_encoding() {
    // A receipt without the zk field encodes exactly as before the field
    // existed: the encoding ends with the charge.
    let r = signed();
    let enc = r.body.canonical();
    assert!(!enc.windows(6).any(|w| w == b"zk_vk_"));
}
