//! Property tests for the tree core and checkpoints: for random append
//! sequences every RFC 6962 §2.1.1 inclusion proof and every §2.1.2
//! consistency proof verifies, roots equal an independent §2.1 MTH, and two
//! logs that diverge yield signed C2SP checkpoints whose consistency proof
//! fails.

mod common;

use common::naive_mth;
use proofmesh_tlog::{
    leaf_hash, verify_consistency, verify_inclusion, CheckpointSigner, CheckpointVerifier, Hash,
    Tree,
};
use proptest::prelude::*;

fn build(leaves: &[Vec<u8>]) -> (Tree, Vec<Hash>) {
    let mut t = Tree::new();
    let hashes: Vec<Hash> = leaves.iter().map(|l| leaf_hash(l)).collect();
    for (i, h) in hashes.iter().enumerate() {
        assert_eq!(t.append(*h).unwrap(), i as u64);
    }
    (t, hashes)
}

fn leaves(max: usize) -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..12), 1..max)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn every_inclusion_proof_verifies(data in leaves(90)) {
        let (t, hashes) = build(&data);
        for size in 1..=t.size() {
            let root = t.root_at(size).unwrap();
            prop_assert_eq!(root, naive_mth(&hashes[..size as usize]));
            for i in 0..size {
                let proof = t.inclusion_proof(i, size).unwrap();
                prop_assert!(verify_inclusion(i, size, &hashes[i as usize], &proof, &root).is_ok());
                let other = hashes[((i + 1) % size) as usize];
                if other != hashes[i as usize] {
                    prop_assert!(verify_inclusion(i, size, &other, &proof, &root).is_err());
                }
            }
        }
    }

    #[test]
    fn every_consistency_proof_verifies(data in leaves(70)) {
        let (t, _) = build(&data);
        for new in 0..=t.size() {
            let new_root = t.root_at(new).unwrap();
            for old in 0..=new {
                let proof = t.consistency_proof(old, new).unwrap();
                let old_root = t.root_at(old).unwrap();
                prop_assert!(verify_consistency(old, new, &old_root, &new_root, &proof).is_ok());
                if old > 0 && old < new {
                    prop_assert!(verify_consistency(old, new, &new_root, &new_root, &proof).is_err()
                        || old_root == new_root);
                }
            }
        }
    }

    #[test]
    fn diverging_logs_fail_consistency(
        prefix in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..8), 0..40),
        a in leaves(30),
        b in leaves(30),
        seed in any::<[u8; 32]>(),
    ) {
        // Make the first leaf after the common prefix differ.
        let mut b = b;
        b[0] = a[0].iter().copied().chain([0xAA]).collect();
        let (ta, _) = build(&[prefix.clone(), a].concat());
        let (tb, _) = build(&[prefix, b].concat());

        let signer = CheckpointSigner::from_seed("log.example/div", &seed).unwrap();
        let verifier = CheckpointVerifier::new("log.example/div", signer.verifier_key()).unwrap();
        let ca = verifier.verify(&signer.sign(ta.size(), &ta.root(), &[]).unwrap()).unwrap();
        let cb = verifier.verify(&signer.sign(tb.size(), &tb.root(), &[]).unwrap()).unwrap();
        prop_assert_ne!(ca.root, cb.root);

        // Whichever is smaller claims to be a prefix of the larger; the larger
        // log's honest proof must not link them.
        let (small, big, big_tree) =
            if ca.size <= cb.size { (&ca, &cb, &tb) } else { (&cb, &ca, &ta) };
        let proof = big_tree.consistency_proof(small.size, big.size).unwrap();
        prop_assert!(verify_consistency(small.size, big.size, &small.root, &big.root, &proof).is_err());
        // Sanity: that same proof does link the big log to its own prefix.
        let own = big_tree.root_at(small.size).unwrap();
        prop_assert!(verify_consistency(small.size, big.size, &own, &big.root, &proof).is_ok());
    }
}
