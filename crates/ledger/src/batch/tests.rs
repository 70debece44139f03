//! Tests of settlement batches against the RFC 6962 reference vectors and
//! with journals built by a real ledger.

use super::*;
use crate::ledger::Ledger;
use crate::money::{Amount, Currency};
use crate::settle::deposit;

/// RFC 6962 reference tree (transparency-dev/merkle testonly constants).
const LEAF_INPUTS: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn rfc_leaves() -> Vec<Hash32> {
    LEAF_INPUTS
        .iter()
        .map(|h| Hash32::of_parts(&[&[0x00], &hex::decode(h).unwrap()]))
        .collect()
}

#[test]
fn roots_match_rfc6962_reference_vectors() {
    let leaves = rfc_leaves();
    for (n, want) in ROOTS.iter().enumerate() {
        assert_eq!(merkle_root(&leaves[..n]).to_hex(), *want, "size {n}");
    }
}

#[test]
fn every_inclusion_proof_verifies_and_wrong_ones_do_not() {
    let leaves: Vec<Hash32> = (0u32..21).map(|i| Hash32::of(&i.to_be_bytes())).collect();
    for n in 1..=leaves.len() {
        let tree = &leaves[..n];
        let root = merkle_root(tree);
        let size = n as u64;
        for i in 0..size {
            let proof = inclusion_proof(tree, i).unwrap();
            let leaf = &tree[i as usize];
            assert!(
                verify_inclusion(leaf, i, size, &proof, &root),
                "n={n} i={i}"
            );
            let other = (i + 1) % size;
            if other != i {
                assert!(
                    !verify_inclusion(leaf, other, size, &proof, &root),
                    "n={n} i={i}"
                );
            }
            assert!(!verify_inclusion(&Hash32::of(b"x"), i, size, &proof, &root));
            if let Some(first) = proof.first() {
                let mut bad = proof.clone();
                bad[0] = Hash32::of(&first.0);
                assert!(!verify_inclusion(leaf, i, size, &bad, &root));
            }
        }
    }
    assert!(matches!(
        inclusion_proof(&leaves[..3], 3),
        Err(BatchError::IndexOutOfRange { index: 3, size: 3 })
    ));
}

fn journal(n: u64, epoch: Epoch) -> Vec<JournalEntry> {
    let mut l = Ledger::new();
    for i in 0..n {
        let amt = Amount::from_micros(Currency::Usd, i + 1).unwrap();
        l.apply(
            deposit("c", amt, &format!("p{i}")).unwrap(),
            epoch.start_ms() + i,
        )
        .unwrap();
    }
    l.journal().to_vec()
}

#[test]
fn batch_commits_to_each_entry_and_verifies() {
    let coord = Identity::from_seed([2; 32]);
    let epoch = Epoch::daily(19_000).unwrap();
    let j = journal(5, epoch);
    let body = BatchBody::build(coord.public(), epoch, 0, &j, Hash32([0; 32])).unwrap();
    assert_eq!(body.count, 5);
    let leaves: Vec<Hash32> = j.iter().map(entry_leaf_hash).collect();
    let proof = inclusion_proof(&leaves, 3).unwrap();
    assert!(verify_inclusion(&leaves[3], 3, 5, &proof, &body.root));
    let signed = SignedBatch::sign(body.clone(), &coord).unwrap();
    signed.verify().unwrap();
    let mut forged = signed.clone();
    forged.body.count = 4;
    assert!(forged.verify().is_err());
    assert!(SignedBatch::sign(body.clone(), &Identity::from_seed([3; 32])).is_err());
    let next = BatchBody::build(
        coord.public(),
        Epoch::daily(19_001).unwrap(),
        5,
        &[],
        body.hash(),
    )
    .unwrap();
    assert_eq!(next.root, merkle_root(&[]));
    assert_eq!(next.prev_batch_hash, body.hash());
}

#[test]
fn batch_rejects_gaps_tampering_and_foreign_epochs() {
    let coord = Identity::from_seed([2; 32]);
    let epoch = Epoch::daily(19_000).unwrap();
    let j = journal(3, epoch);
    let zero = Hash32([0; 32]);
    assert!(matches!(
        BatchBody::build(
            coord.public(),
            epoch,
            0,
            &[j[0].clone(), j[2].clone()],
            zero
        ),
        Err(BatchError::Sequence { position: 1, .. })
    ));
    let mut t = j.clone();
    t[1].tx.key = "other".into();
    assert!(matches!(
        BatchBody::build(coord.public(), epoch, 0, &t, zero),
        Err(BatchError::EntryHash { seq: 1 })
    ));
    let earlier = Epoch::daily(18_999).unwrap();
    assert!(matches!(
        BatchBody::build(coord.public(), earlier, 0, &j, zero),
        Err(BatchError::OutsideEpoch { seq: 0, .. })
    ));
    // Changing an entry's time changes its leaf.
    let mut moved = j[0].clone();
    moved.at_ms += 1;
    assert_ne!(entry_leaf_hash(&moved), entry_leaf_hash(&j[0]));
}
