//! Unit and property tests of the fingerprint codec and entry comparison.

use super::*;
use proptest::prelude::*;

fn logits(seed: u32, n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| {
            ((i as u32).wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(0x9e37_79b9)) as f32
                / u32::MAX as f32
                * 8.0
        })
        .collect()
}

#[test]
fn exact_round_trip_and_size() {
    let rows: Vec<Vec<f32>> = (0..5).map(|s| logits(s, 50)).collect();
    let fp = fingerprint_from_logits(FingerprintMode::Exact, 8, &rows).unwrap();
    let bytes = fp.encode().unwrap();
    assert_eq!(bytes.len(), HEADER_LEN + 5 * ENTRY_LEN);
    assert_eq!(&bytes[..4], b"PMFP");
    assert_eq!(Fingerprint::decode(&bytes).unwrap(), fp);
    assert_ne!(fp.entries[0], fp.entries[1]);
}

#[test]
fn exact_entry_sees_every_bit_of_the_top_k() {
    let l = logits(3, 40);
    let top = TopKLogits::from_logits(&l, 8);
    let mut bumped = l.clone();
    let last_id = top.ids[7] as usize;
    bumped[last_id] = f32::from_bits(bumped[last_id].to_bits() + 1);
    let a = fingerprint_from_logits(FingerprintMode::Exact, 8, std::slice::from_ref(&l)).unwrap();
    let b = fingerprint_from_logits(FingerprintMode::Exact, 8, &[bumped]).unwrap();
    assert_ne!(a.entries, b.entries);
    let from_top = exact_fingerprint_from_top_k(8, &[top]).unwrap();
    assert_eq!(from_top.entries, a.entries);
}

#[test]
fn decode_names_each_malformation() {
    let fp = fingerprint_from_logits(FingerprintMode::Exact, 4, &[logits(1, 9)]).unwrap();
    let good = fp.encode().unwrap();
    let with = |i: usize, b: u8| {
        let mut v = good.clone();
        v[i] = b;
        Fingerprint::decode(&v).unwrap_err()
    };
    assert!(matches!(with(0, b'X'), VerifyError::BadMagic { .. }));
    assert!(matches!(
        with(4, 2),
        VerifyError::BadVersion { version: 2, .. }
    ));
    assert!(matches!(with(5, 7), VerifyError::BadMode { mode: 7 }));
    assert!(matches!(with(6, 0), VerifyError::BadK { k: 0, .. }));
    assert!(matches!(with(7, 1), VerifyError::BadReserved { value: 1 }));
    assert!(matches!(with(8, 2), VerifyError::Truncated { .. }));
    assert!(matches!(
        with(11, 0xff),
        VerifyError::TooManyPositions { .. }
    ));
    assert!(matches!(
        Fingerprint::decode(&good[..good.len() - 1]),
        Err(VerifyError::Truncated { .. })
    ));
    assert!(matches!(
        Fingerprint::decode(&good[..5]),
        Err(VerifyError::Truncated { needed: 12, .. })
    ));
    let mut long = good.clone();
    long.push(0);
    assert!(matches!(
        Fingerprint::decode(&long),
        Err(VerifyError::TrailingBytes { extra: 1, .. })
    ));
    let mut tol = good.clone();
    tol[5] = 1; // tolerant with k = 4
    assert!(matches!(
        Fingerprint::decode(&tol),
        Err(VerifyError::BadK { .. })
    ));
}

#[test]
fn encode_refuses_oversized_fingerprints() {
    let fp = Fingerprint {
        mode: FingerprintMode::Exact,
        k: 1,
        entries: vec![[0; 8]; MAX_POSITIONS as usize + 1],
    };
    assert!(matches!(
        fp.encode(),
        Err(VerifyError::TooManyPositions { .. })
    ));
}

#[test]
fn tolerant_entry_packs_ids_and_logprob() {
    let l = vec![0.0f32, 3.0, 1.0, 2.5];
    let e = TolerantEntry::from_logits(&l).unwrap();
    assert_eq!((e.top1, e.top2), (1, Some(3)));
    let expect = 3.0 - log_sum_exp(&l);
    assert!((e.top1_logprob as f64 - expect).abs() < 1e-3);
    assert_eq!(TolerantEntry::unpack(&e.pack()), e);
    assert!(e.check(&l, 0.0).is_ok());
    let single = TolerantEntry::from_logits(&[1.0]).unwrap();
    assert_eq!(single.top2, None);
    assert_eq!(single.top1_logprob, 0.0);
    assert!(single.check(&[1.0], 0.0).is_ok());
}

#[test]
fn tolerant_check_allows_small_drift_and_near_tie_swaps_only() {
    let base = vec![0.0f32, 3.0, 1.0, 2.98];
    let claimed = TolerantEntry::from_logits(&base).unwrap();
    // verifier sees a slightly different distribution where 3 leads 1
    let swapped = vec![0.0f32, 2.99, 1.0, 3.0];
    assert!(claimed.check(&swapped, 0.02).is_ok());
    assert!(claimed.check(&swapped, 0.0).is_err());
    let far = vec![0.0f32, 2.0, 1.0, 3.0];
    let err = claimed.check(&far, 0.05).unwrap_err();
    assert!(err.contains("top-1"), "{err}");
    let shifted = vec![0.0f32, 3.0, 1.0, 2.98, 1.5];
    let err = claimed.check(&shifted, 0.05).unwrap_err();
    assert!(err.contains("log-prob"), "{err}");
    let bad_top2 = TolerantEntry {
        top2: Some(0),
        ..claimed
    };
    assert!(bad_top2.check(&base, 0.05).is_err());
    let out_of_vocab = TolerantEntry {
        top1: 99,
        ..claimed
    };
    assert!(out_of_vocab.check(&base, 0.05).is_err());
}

#[test]
fn tolerant_rejects_ids_beyond_24_bits() {
    let mut l = vec![0.0f32; (1 << 24) + 1];
    l[1 << 24] = 5.0;
    assert!(matches!(
        TolerantEntry::from_logits(&l),
        Err(VerifyError::IdTooLarge { .. })
    ));
}

#[test]
fn digest_is_sha256_of_the_encoding() {
    let d = fingerprint_digest(b"abc");
    assert_eq!(
        d.as_str(),
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

proptest! {
    #[test]
    fn encode_decode_round_trip(
        tolerant in any::<bool>(),
        k in 1u8..=255,
        entries in proptest::collection::vec(any::<[u8; 8]>(), 0..64),
    ) {
        let (mode, k) = if tolerant { (FingerprintMode::Tolerant, 2) } else { (FingerprintMode::Exact, k) };
        let fp = Fingerprint { mode, k, entries };
        let bytes = fp.encode().unwrap();
        prop_assert_eq!(bytes.len(), HEADER_LEN + ENTRY_LEN * fp.len());
        prop_assert_eq!(Fingerprint::decode(&bytes).unwrap(), fp);
    }

    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Fingerprint::decode(&bytes);
    }

    #[test]
    fn decode_never_panics_on_valid_headers(
        mode in 0u8..3, k in any::<u8>(), count in any::<u32>(),
        body in proptest::collection::vec(any::<u8>(), 0..100),
    ) {
        let mut bytes = b"PMFP".to_vec();
        bytes.extend_from_slice(&[1, mode, k, 0]);
        bytes.extend_from_slice(&count.to_le_bytes());
        bytes.extend_from_slice(&body);
        if let Ok(fp) = Fingerprint::decode(&bytes) {
            prop_assert_eq!(fp.len() as u32, count);
            prop_assert_eq!(fp.encode().unwrap(), bytes);
        }
    }

    #[test]
    fn tolerant_unpack_pack_is_identity_for_non_nan(e in any::<[u8; 8]>()) {
        let t = TolerantEntry::unpack(&e);
        prop_assume!(!t.top1_logprob.is_nan());
        prop_assert_eq!(t.pack(), e);
    }
}
