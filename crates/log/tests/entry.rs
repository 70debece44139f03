//! Tests for the log entry encoding (`src/entry.rs`): round trips of every
//! entry types, the RFC 6962 §2.1 leaf hash (recomputed independently with
//! `sha2`), golden leaf hashes of every entry type, rejection of every
//! malformed form, and entries in C2SP tlog-tiles entry bundles.

use proofmesh_ledger::{
    distribute, genesis_hash, Allocation, Amount, BatchBody, Currency, Epoch, Hash32,
    HeartbeatsBody, PoolCharter, SignedBatch, SignedCharter, SignedDistribution, SignedHeartbeats,
    SignedStatement, SignedTransfer, StatementBody, StatementFigures, StatementParams,
    UnitTransfer,
};
use proofmesh_log::entry::{
    ENTRY_HEADER_LEN, ENTRY_VERSION, MAX_ENTRY_SIZE, TAG_AUDIT_REPORT, TAG_HEARTBEATS,
    TAG_POOL_CHARTER, TAG_POOL_DISTRIBUTION, TAG_POOL_TRANSFER, TAG_RECEIPT, TAG_SETTLEMENT_BATCH,
    TAG_STATEMENT,
};
use proofmesh_log::{EntryError, LogEntry};
use proofmesh_receipt::{
    receipt_body_digest, testing::sample_receipt, AuditBody, AuditOutcome, AuditReport, Identity,
    AUDIT_VERSION,
};
use proofmesh_tlog::{decode_bundle, encode_bundle, leaf_hash};
use sha2::{Digest, Sha256};

fn receipt_entry() -> LogEntry {
    LogEntry::Receipt(sample_receipt("rcpt_1", "job_1"))
}

fn audit_entry() -> LogEntry {
    let r = sample_receipt("rcpt_1", "job_1");
    let verifier = Identity::from_seed([3; 32]);
    let body = AuditBody {
        version: AUDIT_VERSION,
        audit_id: "aud_1".into(),
        receipt_id: r.body.receipt_id.clone(),
        receipt_digest: receipt_body_digest(&r.body),
        verifier_key: verifier.public().clone(),
        outcome: AuditOutcome::Passed,
        reason: String::new(),
        positions_checked: 8,
        checked_at_ms: 1_700_000_001_000,
    };
    LogEntry::AuditReport(AuditReport::sign(body, &verifier))
}

fn statement_entry() -> LogEntry {
    let coord = Identity::from_seed([2; 32]);
    let body = StatementBody {
        version: proofmesh_ledger::statement::STATEMENT_VERSION,
        provider: Identity::from_seed([1; 32]).public().clone(),
        coordinator: coord.public().clone(),
        epoch: Epoch::daily(19_000).unwrap(),
        params: StatementParams {
            currency: Currency::Usd,
            protocol_fee_bps: 500,
            heartbeat_grace_ms: 10_000,
            verifiers: vec![Identity::from_seed([3; 32]).public().clone()],
        },
        figures: StatementFigures {
            revenue_micros: 1_234,
            jobs_served: 2,
            ..Default::default()
        },
        prev_statement_hash: genesis_hash(),
    };
    LogEntry::Statement(SignedStatement::sign(body, &coord).unwrap())
}

fn heartbeats_entry() -> LogEntry {
    let coord = Identity::from_seed([2; 32]);
    let body = HeartbeatsBody {
        version: proofmesh_ledger::statement::heartbeats::HEARTBEATS_VERSION,
        provider: Identity::from_seed([1; 32]).public().clone(),
        coordinator: coord.public().clone(),
        from_ms: 1_700_000_000_000,
        to_ms: 1_700_000_600_000,
        beats_ms: vec![1_700_000_000_001, 1_700_000_005_000],
    };
    LogEntry::Heartbeats(SignedHeartbeats::sign(body, &coord).unwrap())
}

fn charter() -> SignedCharter {
    let p = Identity::from_seed([1; 32]);
    let c = PoolCharter {
        version: 1,
        pool: "pool-1".into(),
        provider: p.public().clone(),
        share_bps: 1_000,
        currency: Currency::Usd,
        holders: vec![Allocation {
            holder: Identity::from_seed([4; 32]).public().to_string(),
            units: 10,
        }],
        created_ms: 5,
    };
    SignedCharter::sign(c, &p).unwrap()
}

fn pool_entries() -> Vec<(LogEntry, u8)> {
    let c = charter();
    let holder = Identity::from_seed([4; 32]);
    let t = UnitTransfer {
        key: "t1".into(),
        pool: "pool-1".into(),
        from: holder.public().to_string(),
        to: Identity::from_seed([5; 32]).public().to_string(),
        units: 3,
    };
    let coord = Identity::from_seed([2; 32]);
    let epoch = Epoch::daily(19_000).unwrap();
    let pool = c.verify().unwrap();
    let d = distribute(&pool, Amount::from_micros(Currency::Usd, 7).unwrap(), epoch).unwrap();
    let body = BatchBody::build(coord.public(), epoch, 0, &[], Hash32([0; 32])).unwrap();
    vec![
        (LogEntry::PoolCharter(c), TAG_POOL_CHARTER),
        (
            LogEntry::PoolTransfer(SignedTransfer::sign(t, &holder).unwrap()),
            TAG_POOL_TRANSFER,
        ),
        (
            LogEntry::PoolDistribution(SignedDistribution::sign(d, &coord)),
            TAG_POOL_DISTRIBUTION,
        ),
        (
            LogEntry::SettlementBatch(SignedBatch::sign(body, &coord).unwrap()),
            TAG_SETTLEMENT_BATCH,
        ),
    ]
}

/// The JSON an entry's object serialises to.
fn object_json(entry: &LogEntry) -> Vec<u8> {
    match entry {
        LogEntry::Receipt(r) => serde_json::to_vec(r).unwrap(),
        LogEntry::AuditReport(a) => serde_json::to_vec(a).unwrap(),
        LogEntry::Statement(st) => serde_json::to_vec(st).unwrap(),
        LogEntry::Heartbeats(h) => serde_json::to_vec(h).unwrap(),
        LogEntry::PoolCharter(c) => serde_json::to_vec(c).unwrap(),
        LogEntry::PoolTransfer(t) => serde_json::to_vec(t).unwrap(),
        LogEntry::PoolDistribution(d) => serde_json::to_vec(d).unwrap(),
        LogEntry::SettlementBatch(b) => serde_json::to_vec(b).unwrap(),
    }
}

/// Builds an entry by hand from the documented layout.
fn raw(tag: u8, version: u8, json: &[u8]) -> Vec<u8> {
    let mut v = vec![tag, version];
    v.extend_from_slice(&(json.len() as u32).to_be_bytes());
    v.extend_from_slice(json);
    v
}

#[test]
fn round_trips_every_type_with_documented_layout() {
    let mut all = vec![
        (receipt_entry(), TAG_RECEIPT),
        (audit_entry(), TAG_AUDIT_REPORT),
        (statement_entry(), TAG_STATEMENT),
        (heartbeats_entry(), TAG_HEARTBEATS),
    ];
    all.extend(pool_entries());
    for (entry, tag) in all {
        assert_eq!(entry.tag(), tag);
        let bytes = entry.encode().unwrap();
        assert_eq!(bytes, raw(tag, ENTRY_VERSION, &object_json(&entry)));
        assert_eq!(LogEntry::decode(&bytes).unwrap(), entry);
    }
    assert_eq!((TAG_STATEMENT, TAG_HEARTBEATS), (0x03, 0x04));
    assert_eq!(
        (
            TAG_POOL_CHARTER,
            TAG_POOL_TRANSFER,
            TAG_POOL_DISTRIBUTION,
            TAG_SETTLEMENT_BATCH
        ),
        (0x05, 0x06, 0x07, 0x08)
    );
}

#[test]
fn statement_and_heartbeat_entries_are_strict() {
    for entry in [statement_entry(), heartbeats_entry()] {
        let tag = entry.tag();
        let json = object_json(&entry);
        let mut v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let pretty = serde_json::to_vec_pretty(&v).unwrap();
        assert_eq!(
            LogEntry::decode(&raw(tag, 1, &pretty)),
            Err(EntryError::NonCanonicalJson { tag })
        );
        v["body"]["extra"] = serde_json::Value::Bool(true);
        let extra = serde_json::to_vec(&v).unwrap();
        assert!(matches!(
            LogEntry::decode(&raw(tag, 1, &extra)),
            Err(EntryError::EntryJson { tag: t, .. }) if t == tag
        ));
        // A receipt under this tag, and this object under the receipt tag.
        let receipt_json = object_json(&receipt_entry());
        assert!(matches!(
            LogEntry::decode(&raw(tag, 1, &receipt_json)),
            Err(EntryError::EntryJson { tag: t, .. }) if t == tag
        ));
        assert!(matches!(
            LogEntry::decode(&raw(TAG_RECEIPT, 1, &json)),
            Err(EntryError::EntryJson {
                tag: TAG_RECEIPT,
                ..
            })
        ));
    }
    // Statements and heartbeat logs are not confused with each other.
    let hb = object_json(&heartbeats_entry());
    assert!(matches!(
        LogEntry::decode(&raw(TAG_STATEMENT, 1, &hb)),
        Err(EntryError::EntryJson {
            tag: TAG_STATEMENT,
            ..
        })
    ));
    // Decoding checks form, not signatures: a tampered statement decodes
    // (and re-encodes identically), and its signature then fails.
    let LogEntry::Statement(mut st) = statement_entry() else {
        unreachable!()
    };
    st.body.figures.revenue_micros += 1;
    let bytes = LogEntry::Statement(st).encode().unwrap();
    let LogEntry::Statement(back) = LogEntry::decode(&bytes).unwrap() else {
        panic!("a statement entry decodes as a statement")
    };
    assert!(back.verify(0).is_err());
}

/// The encoded length and leaf hash of each test entry, recorded from
/// `proofmesh_tlog::entry` before the format moved to this crate: the byte
/// format (and so every leaf hash in a running log) must not change.
#[test]
fn golden_leaf_hashes_of_every_entry_type() {
    let golden: [(u8, usize, &str); 8] = [
        (
            1,
            1346,
            "2324adb951a1ba4c84b2b91708e6d04c7f367deb99a2c813bfd85b6a07598776",
        ),
        (
            2,
            476,
            "6c8da2b6316c65bb159f9907d2f6e5305f4718ea1f7368dd4c4754a451be7be3",
        ),
        (
            3,
            864,
            "e5335f3b4f53c09f340dcd8fb7ab56e95aba53a7cc6cae8925518ddd4e38737b",
        ),
        (
            4,
            433,
            "f35ba8605e3ed5fb146c105a109d1fc00f79912248faad2531a0b6bf44738f87",
        ),
        (
            5,
            434,
            "11a0b06b3826951d65a92b4f8c44be2e1bf353da6faa4f755eba27ab2f6459a5",
        ),
        (
            6,
            374,
            "1933f61d2c99beb4c00b93275666f948a15d2fb115f86607a4811b1faca05abe",
        ),
        (
            7,
            540,
            "55f31cc6b1995586f0f81cd1794fb2c433102729bbcb532301b63b8100fdd968",
        ),
        (
            8,
            493,
            "f6bc589df09007f8e4f1a9a1110736ed9ce43df880a4b7c1aa8ab65dba6f9203",
        ),
    ];
    let mut all = vec![
        receipt_entry(),
        audit_entry(),
        statement_entry(),
        heartbeats_entry(),
    ];
    all.extend(pool_entries().into_iter().map(|(e, _)| e));
    assert_eq!(all.len(), golden.len());
    for (entry, (tag, len, hash)) in all.iter().zip(golden) {
        let bytes = entry.encode().unwrap();
        assert_eq!(entry.tag(), tag);
        assert_eq!(bytes.len(), len, "entry type {tag:#04x}");
        assert_eq!(
            hex::encode(entry.leaf_hash().unwrap().0),
            hash,
            "entry type {tag:#04x}"
        );
        assert_eq!(LogEntry::decode(&bytes).unwrap(), *entry);
    }
}

#[test]
fn leaf_hash_is_sha256_of_zero_prefix_and_entry() {
    let bytes = receipt_entry().encode().unwrap();
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(&bytes);
    let want: [u8; 32] = h.finalize().into();
    assert_eq!(leaf_hash(&bytes).0, want);
    assert_eq!(receipt_entry().leaf_hash().unwrap().0, want);
    assert_ne!(audit_entry().leaf_hash().unwrap().0, want);
}

#[test]
fn rejects_truncated_and_bad_headers() {
    let good = receipt_entry().encode().unwrap();
    for n in 0..ENTRY_HEADER_LEN {
        assert_eq!(
            LogEntry::decode(&good[..n]),
            Err(EntryError::EntryTruncated {
                len: n,
                min: ENTRY_HEADER_LEN
            })
        );
    }
    for tag in [0u8, 9, 0x10, 0x7f, 0xff] {
        let mut b = good.clone();
        b[0] = tag;
        assert_eq!(
            LogEntry::decode(&b),
            Err(EntryError::UnknownEntryType { tag })
        );
    }
    for version in [0u8, 2, 0xff] {
        let mut b = good.clone();
        b[1] = version;
        assert_eq!(
            LogEntry::decode(&b),
            Err(EntryError::UnsupportedEntryVersion {
                tag: TAG_RECEIPT,
                version
            })
        );
    }
}

#[test]
fn rejects_length_mismatch() {
    let good = receipt_entry().encode().unwrap();
    let actual = good.len() - ENTRY_HEADER_LEN;
    let mut short = good.clone();
    short.pop();
    assert_eq!(
        LogEntry::decode(&short),
        Err(EntryError::EntryLengthMismatch {
            declared: actual as u64,
            actual: actual - 1
        })
    );
    let mut long = good.clone();
    long.push(b' ');
    assert!(matches!(
        LogEntry::decode(&long),
        Err(EntryError::EntryLengthMismatch { .. })
    ));
    let mut huge_prefix = good;
    huge_prefix[2..6].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        LogEntry::decode(&huge_prefix),
        Err(EntryError::EntryLengthMismatch { .. })
    ));
}

#[test]
fn rejects_non_canonical_wrong_type_and_unknown_fields() {
    let r = sample_receipt("rcpt_1", "job_1");
    let pretty = serde_json::to_vec_pretty(&r).unwrap();
    assert_eq!(
        LogEntry::decode(&raw(TAG_RECEIPT, 1, &pretty)),
        Err(EntryError::NonCanonicalJson { tag: TAG_RECEIPT })
    );
    let mut spaced = serde_json::to_vec(&r).unwrap();
    spaced.push(b' ');
    assert_eq!(
        LogEntry::decode(&raw(TAG_RECEIPT, 1, &spaced)),
        Err(EntryError::NonCanonicalJson { tag: TAG_RECEIPT })
    );
    // An audit report under the receipt tag, and vice versa.
    let audit_json = object_json(&audit_entry());
    assert!(matches!(
        LogEntry::decode(&raw(TAG_RECEIPT, 1, &audit_json)),
        Err(EntryError::EntryJson {
            tag: TAG_RECEIPT,
            ..
        })
    ));
    let receipt_json = serde_json::to_vec(&r).unwrap();
    assert!(matches!(
        LogEntry::decode(&raw(TAG_AUDIT_REPORT, 1, &receipt_json)),
        Err(EntryError::EntryJson {
            tag: TAG_AUDIT_REPORT,
            ..
        })
    ));
    let mut v: serde_json::Value = serde_json::from_slice(&receipt_json).unwrap();
    v["extra"] = serde_json::Value::Bool(true);
    let extra = serde_json::to_vec(&v).unwrap();
    assert!(matches!(
        LogEntry::decode(&raw(TAG_RECEIPT, 1, &extra)),
        Err(EntryError::EntryJson { .. })
    ));
    assert!(matches!(
        LogEntry::decode(&raw(TAG_RECEIPT, 1, b"\xff\xfe")),
        Err(EntryError::EntryJson { .. })
    ));
}

#[test]
fn enforces_size_bound() {
    let mut r = sample_receipt("rcpt_1", "job_1");
    r.body.finish_reason = "x".repeat(MAX_ENTRY_SIZE);
    let err = LogEntry::Receipt(r).encode().unwrap_err();
    assert!(
        matches!(err, EntryError::EntryTooLarge { max: MAX_ENTRY_SIZE, len } if len > MAX_ENTRY_SIZE)
    );
    let big = vec![TAG_RECEIPT; MAX_ENTRY_SIZE + 1];
    assert_eq!(
        LogEntry::decode(&big),
        Err(EntryError::EntryTooLarge {
            len: MAX_ENTRY_SIZE + 1,
            max: MAX_ENTRY_SIZE
        })
    );
}

#[test]
fn encoded_receipt_fits_in_a_bundle() {
    let bytes = receipt_entry().encode().unwrap();
    let bundle = encode_bundle(&[&bytes]).unwrap();
    let got = decode_bundle(&bundle).unwrap();
    assert_eq!(LogEntry::decode(got[0]).unwrap(), receipt_entry());
}
