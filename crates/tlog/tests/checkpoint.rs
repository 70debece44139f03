//! Tests for signed checkpoints (`src/checkpoint.rs`): C2SP tlog-checkpoint
//! bodies in C2SP signed-notes. Golden vectors: Go sumdb/note keys, notes and
//! negative cases (`testdata/mod/sumdb_note_vectors.json`), Go
//! sumdb/tlog tree-note bodies (`mod/sumdb_tlog_vectors.json`), and the C2SP
//! signed-note example (`C2SP/signed_note_example.json`).

mod common;

use common::{b64_hash, json};
use proofmesh_tlog::{leaf_hash, CheckpointSigner, CheckpointVerifier, Hash, TlogError};
use rand::{rngs::StdRng, SeedableRng};
use signed_note::{Note, StandardSigner, StandardVerifier, Verifier, VerifierList};

const ORIGIN: &str = "log.proofmesh.example/v1";

fn signer(seed: u8) -> CheckpointSigner {
    CheckpointSigner::from_seed(ORIGIN, &[seed; 32]).unwrap()
}

fn verifier_for(s: &CheckpointSigner) -> CheckpointVerifier {
    CheckpointVerifier::new(s.origin(), s.verifier_key()).unwrap()
}

/// A note over arbitrary `text`, signed with a library-generated key named
/// `name`; returns the note and that key's verifier key.
fn library_signed(name: &str, text: &str) -> (Vec<u8>, String) {
    let (skey, vkey) = signed_note::generate_key(&mut StdRng::seed_from_u64(7), name);
    let signer = StandardSigner::new(&skey).unwrap();
    let mut note = Note::new(text.as_bytes(), &[]).unwrap();
    note.add_sigs(&[&signer]).unwrap();
    (note.to_bytes(), vkey)
}

#[test]
fn sign_then_verify_round_trip() {
    let s = signer(9);
    let root = leaf_hash(b"root");
    let note = s.sign(42, &root, &["ext one", "ext-two"]).unwrap();
    let text = String::from_utf8(note.clone()).unwrap();
    assert!(text.starts_with(&format!(
        "{ORIGIN}\n42\n{root}\next one\next-two\n\n— {ORIGIN} "
    )));
    let c = verifier_for(&s).verify(&note).unwrap();
    assert_eq!((c.origin.as_str(), c.size, c.root), (ORIGIN, 42, root));
    assert_eq!(c.extensions, ["ext one", "ext-two"]);
    let plain = verifier_for(&s)
        .verify(&s.sign(0, &Hash::default(), &[]).unwrap())
        .unwrap();
    assert!(plain.extensions.is_empty());
}

#[test]
fn rejects_other_key_and_tampering() {
    let s = signer(9);
    let note = s.sign(42, &leaf_hash(b"root"), &[]).unwrap();
    let other = verifier_for(&signer(10));
    assert!(matches!(
        other.verify(&note),
        Err(TlogError::BadSignature { .. })
    ));

    // Body changed after signing.
    let text = String::from_utf8(note.clone()).unwrap();
    let forged = text.replacen("\n42\n", "\n43\n", 1);
    assert!(matches!(
        verifier_for(&s).verify(forged.as_bytes()),
        Err(TlogError::BadSignature { .. })
    ));

    // Signature bytes changed.
    let sig_start = text.rfind(' ').unwrap() + 1;
    let mut bad = note.clone();
    bad[sig_start + 10] = if bad[sig_start + 10] == b'A' {
        b'B'
    } else {
        b'A'
    };
    assert!(verifier_for(&s).verify(&bad).is_err());
}

#[test]
fn accepts_extra_cosignatures_by_unknown_keys() {
    let s = signer(9);
    let mut note = Note::from_bytes(&s.sign(5, &leaf_hash(b"r"), &[]).unwrap()).unwrap();
    let (skey, _) = signed_note::generate_key(&mut StdRng::seed_from_u64(1), "witness.example");
    note.add_sigs(&[&StandardSigner::new(&skey).unwrap()])
        .unwrap();
    assert_eq!(verifier_for(&s).verify(&note.to_bytes()).unwrap().size, 5);
}

#[test]
fn rejects_wrong_origin() {
    let root = leaf_hash(b"r");
    let (note, vkey) = library_signed("log.a", &format!("log.b\n5\n{root}\n"));
    let v = CheckpointVerifier::new("log.a", &vkey).unwrap();
    assert_eq!(
        v.verify(&note),
        Err(TlogError::WrongOrigin {
            expected: "log.a".into(),
            found: "log.b".into()
        })
    );
    let (good, _) = library_signed("log.a", &format!("log.a\n5\n{root}\n"));
    assert_eq!(v.verify(&good).unwrap().root, root);
}

#[test]
fn rejects_malformed_bodies_even_when_signed() {
    let root = leaf_hash(b"r");
    let bodies = [
        "log.a\n5\n".to_owned(),
        format!("log.a\n0x5\n{root}\n"),
        format!("log.a\n05\n{root}\n"),
        format!("log.a\n-5\n{root}\n"),
        format!("log.a\n18446744073709551616\n{root}\n"),
        "log.a\n5\nnot-base64\n".to_owned(),
        "log.a\n5\nAAAA\n".to_owned(),
        format!("log.a\n5\n{root}\next\n\n"),
        format!("\n5\n{root}\n"),
    ];
    for body in bodies {
        let (note, vkey) = library_signed("log.a", &body);
        let v = CheckpointVerifier::new("log.a", &vkey).unwrap();
        assert!(
            matches!(v.verify(&note), Err(TlogError::MalformedCheckpoint { .. })),
            "accepted {body:?}"
        );
    }
}

#[test]
fn rejects_bad_origins_extensions_and_keys() {
    for origin in ["", "has space", "a+b", "tab\there", "nl\nx"] {
        assert!(matches!(
            CheckpointSigner::from_seed(origin, &[1; 32]),
            Err(TlogError::InvalidOrigin { .. })
        ));
    }
    let s = signer(9);
    for line in ["", "a\nb"] {
        assert!(matches!(
            s.sign(1, &Hash::default(), &[line]),
            Err(TlogError::InvalidExtension { .. })
        ));
    }
    let other_name = CheckpointSigner::from_seed("other.example", &[9; 32]).unwrap();
    assert!(matches!(
        CheckpointVerifier::new(ORIGIN, other_name.verifier_key()),
        Err(TlogError::BadVerifierKey { .. })
    ));
    assert!(matches!(
        CheckpointVerifier::new(ORIGIN, "garbage"),
        Err(TlogError::BadVerifierKey { .. })
    ));
    assert!(matches!(
        CheckpointVerifier::new("bad origin", s.verifier_key()),
        Err(TlogError::InvalidOrigin { .. })
    ));
}

/// Go sumdb/note: published keys, the EnochRoot key from an all-zero seed,
/// and negative vectors, checked through our verifier.
#[test]
fn go_note_vectors_through_checkpoint_api() {
    let v = json("mod/sumdb_note_vectors.json");
    let peter_vkey = v["keys"]["PeterNeumann"]["vkey"].as_str().unwrap();
    let enoch_vkey = v["keys"]["EnochRoot"]["vkey"].as_str().unwrap();
    assert_eq!(
        CheckpointSigner::from_seed("EnochRoot", &[0; 32])
            .unwrap()
            .verifier_key(),
        enoch_vkey
    );

    // A checkpoint signed with our signer under Go's published key name
    // verifies with Go's published verifier key: key ID and encoding agree.
    let peter = CheckpointVerifier::new("PeterNeumann", peter_vkey).unwrap();
    let zero_seed_enoch = CheckpointSigner::from_seed("EnochRoot", &[0; 32]).unwrap();
    let cp = zero_seed_enoch.sign(3, &leaf_hash(b"x"), &[]).unwrap();
    assert_eq!(
        CheckpointVerifier::new("EnochRoot", enoch_vkey)
            .unwrap()
            .verify(&cp)
            .unwrap()
            .size,
        3
    );
    assert!(matches!(
        peter.verify(&cp),
        Err(TlogError::BadSignature { .. })
    ));

    let mut saw = 0;
    for vec in v["vectors"].as_array().unwrap() {
        let name = vec["name"].as_str().unwrap();
        if let Some(note) = vec["signed_note"].as_str() {
            // These notes are not checkpoints: our verifier must refuse them,
            // for the right reason.
            let err = peter.verify(note.as_bytes()).unwrap_err();
            let want_sig_error = name == "open_corrupted_sig";
            let is_sig_error = matches!(err, TlogError::BadSignature { .. });
            let is_malformed = matches!(err, TlogError::MalformedCheckpoint { .. });
            assert!(
                if want_sig_error {
                    is_sig_error
                } else {
                    is_malformed
                },
                "{name}: {err:?}"
            );
            saw += 1;
        }
        if let Some(vkey) = vec["vkey"].as_str() {
            assert!(matches!(
                CheckpointVerifier::new("PeterNeumann", vkey),
                Err(TlogError::BadVerifierKey { .. })
            ));
            saw += 1;
        }
    }
    assert!(saw >= 6, "only {saw} note vectors exercised");
    for bad in v["malformed_notes_expect_error"].as_array().unwrap() {
        let err = peter.verify(bad.as_str().unwrap().as_bytes()).unwrap_err();
        assert!(
            matches!(err, TlogError::MalformedCheckpoint { .. }),
            "{bad}: {err:?}"
        );
    }
}

/// Go sumdb/note `TestOpen` semantics, via the signed_note crate we build on.
#[test]
fn go_note_vectors_open_with_signed_note() {
    let v = json("mod/sumdb_note_vectors.json");
    let key = |n: &str| -> Box<dyn Verifier> {
        Box::new(StandardVerifier::new(v["keys"][n]["vkey"].as_str().unwrap()).unwrap())
    };
    for vec in v["vectors"].as_array().unwrap() {
        let Some(text) = vec["signed_note"].as_str() else {
            continue;
        };
        let names: Vec<&str> = vec["verifiers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        let known = VerifierList::new(names.iter().map(|n| key(n)).collect());
        let got = Note::from_bytes(text.as_bytes()).and_then(|n| n.verify(&known));
        match vec["name"].as_str().unwrap() {
            "open_peter_and_enoch" => {
                let (ok, unverified) = got.unwrap();
                assert_eq!(
                    ok.iter().map(|s| s.name()).collect::<Vec<_>>(),
                    ["PeterNeumann"]
                );
                assert_eq!(
                    unverified.iter().map(|s| s.name()).collect::<Vec<_>>(),
                    ["EnochRoot"]
                );
            }
            "open_both" => assert_eq!(got.unwrap().0.len(), 2),
            name => assert!(got.is_err(), "{name} verified"),
        }
    }
}

#[test]
fn c2sp_signed_note_example() {
    let v = json("C2SP/signed_note_example.json");
    let vkey = v["vkey"].as_str().unwrap();
    let note = v["signed_note"].as_str().unwrap();
    let known = VerifierList::new(vec![Box::new(StandardVerifier::new(vkey).unwrap())]);
    let (ok, _) = Note::from_bytes(note.as_bytes())
        .unwrap()
        .verify(&known)
        .unwrap();
    assert_eq!(ok[0].name(), "example.com/foo");
    // Through our API: the signature is good but the text is no checkpoint.
    let cv = CheckpointVerifier::new("example.com/foo", vkey).unwrap();
    assert!(matches!(
        cv.verify(note.as_bytes()),
        Err(TlogError::MalformedCheckpoint { .. })
    ));
    let tampered = note.replace("example message", "example massage");
    assert!(matches!(
        cv.verify(tampered.as_bytes()),
        Err(TlogError::BadSignature { .. })
    ));
}

/// Go sumdb/tlog `TestFormatTree`/`TestParseTree`: the checkpoint body we
/// emit (via tlog_tiles) is Go's tree note; the bad bodies do not parse.
#[test]
fn go_tree_note_bodies() {
    let v = json("mod/sumdb_tlog_vectors.json");
    let f = &v["format_tree"];
    let hash = b64_hash(f["RecordHash_b64"].as_str().unwrap());
    let n = f["N"].as_u64().unwrap();
    let body = tlog_tiles::Checkpoint::new("go.sum database tree", n, hash, "").unwrap();
    assert_eq!(
        String::from_utf8(body.to_bytes()).unwrap(),
        f["golden"].as_str().unwrap()
    );
    let bad = v["parse_tree_bad"].as_array().unwrap();
    let parsed: Vec<_> = bad
        .iter()
        .map(|b| tlog_tiles::Checkpoint::from_bytes(b.as_str().unwrap().as_bytes()))
        .collect();
    // The first is well-formed but for another origin: our verifier's origin check rejects it.
    assert_ne!(parsed[0].as_ref().unwrap().origin(), "go.sum database tree");
    assert!(parsed[1..].iter().all(Result::is_err));
}
