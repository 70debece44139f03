//! Golden-vector tests for the tree core (`src/tree.rs`) against RFC 6962
//! §2.1 / §2.1.1 / §2.1.2: the transparency-dev/merkle reference tree and its
//! 98 inclusion + 98 consistency proof vectors (`testdata/merkle`),
//! and the Go sumdb/tlog empty-tree hash (`testdata/mod`).

mod common;

use common::{b64_hash, hex_hash, json, json_files, testdata, try_b64_hash};
use proofmesh_tlog::{leaf_hash, verify_consistency, verify_inclusion, Hash, Tree};
use serde_json::Value;

/// A proof array (`null` in some vectors is the empty proof); `None` if
/// any hash is not 32 bytes.
fn hashes(v: &Value) -> Option<Vec<Hash>> {
    if v.is_null() {
        return Some(Vec::new());
    }
    v.as_array()
        .expect("proof array")
        .iter()
        .map(|h| try_b64_hash(h.as_str().expect("string")))
        .collect()
}

fn hash(v: &Value) -> Option<Hash> {
    try_b64_hash(v.as_str().expect("hash string"))
}

fn reference_tree() -> (Tree, Value) {
    let v = json("merkle/rfc6962_reference_tree.json");
    let mut t = Tree::new();
    for input in v["leaf_inputs_hex"].as_array().expect("leaf inputs") {
        let data = hex::decode(input.as_str().expect("hex")).expect("hex");
        t.append(leaf_hash(&data)).unwrap();
    }
    (t, v)
}

#[test]
fn reference_tree_leaf_hashes_and_roots() {
    let (t, v) = reference_tree();
    let want_leaves = v["leaf_hashes_hex"].as_array().unwrap();
    assert_eq!(t.size() as usize, want_leaves.len());
    for (i, h) in want_leaves.iter().enumerate() {
        assert_eq!(
            t.leaf_hash(i as u64).unwrap(),
            hex_hash(h.as_str().unwrap())
        );
    }
    let roots = v["root_hash_by_size_hex"].as_array().unwrap();
    assert_eq!(roots.len(), 9);
    for (size, h) in roots.iter().enumerate() {
        assert_eq!(
            t.root_at(size as u64).unwrap(),
            hex_hash(h.as_str().unwrap()),
            "size {size}"
        );
    }
    assert_eq!(t.root(), hex_hash(roots[8].as_str().unwrap()));
}

#[test]
fn empty_tree_hash_matches_go_tlog() {
    let v = json("mod/sumdb_tlog_vectors.json");
    assert_eq!(
        Tree::new().root(),
        hex_hash(v["empty_tree_hash_hex"].as_str().unwrap())
    );
    let f = &v["format_tree"];
    assert_eq!(
        leaf_hash(f["record"].as_str().unwrap().as_bytes()),
        b64_hash(f["RecordHash_b64"].as_str().unwrap())
    );
}

#[test]
fn inclusion_vectors() {
    let (t, _) = reference_tree();
    let files = json_files("merkle/testdata/inclusion");
    assert!(
        files.len() >= 98,
        "expected 98 inclusion vectors in {}",
        testdata("merkle").display()
    );
    let mut happy = 0;
    for path in &files {
        let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let (idx, size) = (
            v["leafIdx"].as_u64().unwrap(),
            v["treeSize"].as_u64().unwrap(),
        );
        let parsed = (hashes(&v["proof"]), hash(&v["leafHash"]), hash(&v["root"]));
        let (Some(proof), Some(leaf), Some(root)) = parsed else {
            assert!(
                v["wantErr"].as_bool().unwrap(),
                "{}: unparseable hash",
                path.display()
            );
            continue;
        };
        let got = verify_inclusion(idx, size, &leaf, &proof, &root);
        let want_err = v["wantErr"].as_bool().unwrap();
        assert_eq!(got.is_err(), want_err, "{}: {got:?}", path.display());
        if !want_err && size <= t.size() {
            // Our prover must produce the very same audit path.
            assert_eq!(
                t.inclusion_proof(idx, size).unwrap(),
                proof,
                "{}",
                path.display()
            );
            happy += 1;
        }
    }
    assert!(happy >= 5, "only {happy} happy-path proofs compared");
}

/// The one vector whose expected result we cannot reproduce: it expects
/// success with 12-byte placeholder roots, which are not hashes and cannot be
/// parsed into one. (No vector with old size 0 has 32-byte roots and an empty
/// proof, so our size-0 policy never disagrees here; it is tested below.)
const EXPECTED_DIFFERENCES: &[&str] = &["sizes-are-equal-one-and-proof-is-empty.json"];

#[test]
fn consistency_vectors() {
    let (t, _) = reference_tree();
    let files = json_files("merkle/testdata/consistency");
    assert!(
        files.len() >= 98,
        "expected 98 consistency vectors in {}",
        testdata("merkle").display()
    );
    let mut differences = Vec::new();
    let mut compared = 0;
    for path in &files {
        let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let (s1, s2) = (v["size1"].as_u64().unwrap(), v["size2"].as_u64().unwrap());
        let want_err = v["wantErr"].as_bool().unwrap();
        let name = path.file_name().unwrap().to_str().unwrap();
        let parsed = (hashes(&v["proof"]), hash(&v["root1"]), hash(&v["root2"]));
        let (Some(proof), Some(root1), Some(root2)) = parsed else {
            if !want_err {
                differences.push(name.to_owned());
            }
            continue;
        };
        let got = verify_consistency(s1, s2, &root1, &root2, &proof);
        assert_eq!(got.is_err(), want_err, "{}: {got:?}", path.display());
        if !want_err && s1 > 0 && s2 <= t.size() {
            compared += 1;
            assert_eq!(
                t.consistency_proof(s1, s2).unwrap(),
                proof,
                "{}",
                path.display()
            );
        }
    }
    differences.sort();
    assert_eq!(differences, EXPECTED_DIFFERENCES);
    assert!(compared >= 5, "only {compared} happy-path proofs compared");
}

#[test]
fn reference_tree_all_proofs_verify_and_tampering_fails() {
    let (t, _) = reference_tree();
    for size in 1..=t.size() {
        let root = t.root_at(size).unwrap();
        for i in 0..size {
            let p = t.inclusion_proof(i, size).unwrap();
            let leaf = t.leaf_hash(i).unwrap();
            verify_inclusion(i, size, &leaf, &p, &root).unwrap();
            let mut bad_leaf = leaf;
            bad_leaf.0[31] ^= 0x80;
            assert!(verify_inclusion(i, size, &bad_leaf, &p, &root).is_err());
            if i + 1 < size {
                assert!(verify_inclusion(i + 1, size, &leaf, &p, &root).is_err());
            }
        }
        for old in 0..=size {
            let p = t.consistency_proof(old, size).unwrap();
            let old_root = t.root_at(old).unwrap();
            verify_consistency(old, size, &old_root, &root, &p).unwrap();
            if old > 0 && old < size {
                let mut bad = p.clone();
                bad[0].0[0] ^= 1;
                assert!(verify_consistency(old, size, &old_root, &root, &bad).is_err());
            }
        }
    }
}

/// Old size 0 (undefined in RFC 6962/9162; transparency-dev rejects it): we
/// follow C2SP tlog-witness and accept exactly an empty proof from the
/// empty-tree root.
#[test]
fn size_zero_consistency_policy() {
    let (t, _) = reference_tree();
    let empty = Tree::new().root();
    let root = t.root();
    assert!(t.consistency_proof(0, 8).unwrap().is_empty());
    verify_consistency(0, 8, &empty, &root, &[]).unwrap();
    verify_consistency(0, 0, &empty, &empty, &[]).unwrap();
    assert!(verify_consistency(0, 0, &empty, &root, &[]).is_err());
    assert!(verify_consistency(0, 8, &root, &root, &[]).is_err());
    assert!(verify_consistency(0, 8, &empty, &root, &[root]).is_err());
    assert!(verify_consistency(1, 0, &root, &empty, &[]).is_err());
}
