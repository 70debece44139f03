//! C2SP tlog-cosignature (cosignature/v1): a witness cosignature on our
//! checkpoint verifies, is over exactly `cosignature/v1\ntime <t>\n<body>`,
//! keeps the log signature valid, and fails for a changed timestamp, another
//! key, a missing quorum or a malformed key.

use base64::prelude::*;
use ed25519_dalek::{Signature, SigningKey, Verifier};
use proofmesh_tlog::{
    verify_cosigned, CheckpointSigner, CheckpointVerifier, Hash, TlogError, WitnessSigner,
    WitnessVerifier,
};

const ORIGIN: &str = "example.com/log";

fn log() -> (CheckpointSigner, CheckpointVerifier, Vec<u8>) {
    let s = CheckpointSigner::from_seed(ORIGIN, &[1u8; 32]).unwrap();
    let v = CheckpointVerifier::new(ORIGIN, s.verifier_key()).unwrap();
    let note = s.sign(12, &Hash([7u8; 32]), &[]).unwrap();
    (s, v, note)
}

/// The signature line of `name` in a note: base64 of key id || sig bytes.
fn sig_bytes(note: &[u8], name: &str) -> Vec<u8> {
    let text = String::from_utf8(note.to_vec()).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("\u{2014} {name} ")))
        .unwrap();
    BASE64_STANDARD
        .decode(line.rsplit(' ').next().unwrap())
        .unwrap()
}

#[test]
fn cosignature_verifies_and_signs_the_v1_message() {
    let (_, logv, note) = log();
    let seed = [3u8; 32];
    let mut w = WitnessSigner::from_seed("witness.example/w1", &seed).unwrap();
    let wv = WitnessVerifier::new(&w.verifier_key()).unwrap();
    let cosigned = w.cosign(&note, 1_700_000_000).unwrap();

    // The log's own signature still verifies on the cosigned note.
    assert_eq!(logv.verify(&cosigned).unwrap().size, 12);
    let (cp, who) = verify_cosigned(&cosigned, &logv, std::slice::from_ref(&wv), 1).unwrap();
    assert_eq!(cp.size, 12);
    assert_eq!(who.len(), 1);
    assert_eq!(who[0].timestamp, 1_700_000_000);

    // Independently: key id (4) || timestamp (8, BE) || Ed25519 over the
    // spec's message.
    let raw = sig_bytes(&cosigned, "witness.example/w1");
    assert_eq!(raw.len(), 4 + 72);
    assert_eq!(
        u64::from_be_bytes(raw[4..12].try_into().unwrap()),
        1_700_000_000
    );
    let body = String::from_utf8(note.clone()).unwrap();
    let body = body.split("\n\n").next().unwrap().to_owned() + "\n";
    let msg = format!("cosignature/v1\ntime 1700000000\n{body}");
    let sig = Signature::from_slice(&raw[12..]).unwrap();
    SigningKey::from_bytes(&seed)
        .verifying_key()
        .verify(msg.as_bytes(), &sig)
        .unwrap();
}

#[test]
fn forged_or_missing_cosignatures_are_refused() {
    let (_, logv, note) = log();
    let mut w = WitnessSigner::from_seed("witness.example/w1", &[3u8; 32]).unwrap();
    let wv = WitnessVerifier::new(&w.verifier_key()).unwrap();
    let cosigned = w.cosign(&note, 100).unwrap();

    // A quorum of 1 on an uncosigned note fails, naming the shortfall.
    let e = verify_cosigned(&note, &logv, std::slice::from_ref(&wv), 1).unwrap_err();
    assert!(matches!(e, TlogError::BadSignature { .. }), "{e}");

    // Another witness's key does not count.
    let other = WitnessSigner::from_seed("witness.example/w1", &[4u8; 32]).unwrap();
    let ov = WitnessVerifier::new(&other.verifier_key()).unwrap();
    assert!(verify_cosigned(&cosigned, &logv, &[ov], 1).is_err());

    // Changing the timestamp inside the signature breaks it.
    let text = String::from_utf8(cosigned.clone()).unwrap();
    let line = text.lines().last().unwrap();
    let mut raw = BASE64_STANDARD
        .decode(line.rsplit(' ').next().unwrap())
        .unwrap();
    raw[11] ^= 1;
    let forged = text.replace(
        line.rsplit(' ').next().unwrap(),
        &BASE64_STANDARD.encode(&raw),
    );
    assert!(verify_cosigned(forged.as_bytes(), &logv, std::slice::from_ref(&wv), 1).is_err());

    // Malformed witness keys are named errors.
    for bad in [
        "",
        "w+1+2",
        "w1+00000000+AQ==",
        &w.verifier_key().replace("+", "+0"),
    ] {
        assert!(WitnessVerifier::new(bad).is_err(), "{bad:?}");
    }
    // A log (0x01) key is not a witness key.
    let (s, _, _) = log();
    assert!(WitnessVerifier::new(s.verifier_key()).is_err());
}
