//! Tests for C2SP tlog-tiles entry bundles (`src/bundle.rs`): round trips
//! and rejection of every malformed bundle. (The proofmesh entry format is
//! tested in `proofmesh-log`'s `tests/entry.rs`.)

use proofmesh_tlog::{decode_bundle, encode_bundle, TlogError, MAX_ENTRY_SIZE};

#[test]
fn bundles_round_trip_and_reject_malformed() {
    let entries: Vec<Vec<u8>> = (0..256u32)
        .map(|i| vec![i as u8; (i % 7) as usize])
        .collect();
    let bundle = encode_bundle(&entries).unwrap();
    let back = decode_bundle(&bundle).unwrap();
    assert_eq!(back.len(), 256);
    for (a, b) in entries.iter().zip(&back) {
        assert_eq!(a.as_slice(), *b);
    }
    assert_eq!(&bundle[..2], &0u16.to_be_bytes());
    assert!(decode_bundle(&[]).unwrap().is_empty());

    let mut too_many = entries.clone();
    too_many.push(vec![]);
    assert!(matches!(
        encode_bundle(&too_many),
        Err(TlogError::BundleTooLarge { count: 257, .. })
    ));
    let mut extra = bundle.clone();
    extra.extend_from_slice(&[0, 0]);
    assert!(matches!(
        decode_bundle(&extra),
        Err(TlogError::BundleTooLarge { .. })
    ));

    assert_eq!(
        decode_bundle(&[0]),
        Err(TlogError::BundleTruncated { offset: 0 })
    );
    assert_eq!(
        decode_bundle(&[0, 2, 9]),
        Err(TlogError::BundleTruncated { offset: 0 })
    );
    assert_eq!(
        decode_bundle(&[0, 1, 9, 0]),
        Err(TlogError::BundleTruncated { offset: 3 })
    );
    assert!(matches!(
        encode_bundle(&[vec![0u8; MAX_ENTRY_SIZE + 1]]),
        Err(TlogError::EntryTooLarge { .. })
    ));
    let max = encode_bundle(&[vec![7u8; MAX_ENTRY_SIZE]]).unwrap();
    assert_eq!(decode_bundle(&max).unwrap()[0].len(), MAX_ENTRY_SIZE);
}
