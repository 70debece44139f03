//! Tests of metrics statements: recomputation from evidence, signatures,
//! detection of inflated figures, and the hash chain.

use super::*;
use proofmesh_receipt::testing::sample_body;
use proofmesh_receipt::{receipt_body_digest, AuditBody, AuditOutcome, AuditReport, Receipt};

const DAY_MS: u64 = 86_400_000;

struct World {
    provider: Identity,
    coord: Identity,
    verifier: Identity,
    epoch: Epoch,
}

fn world() -> World {
    World {
        provider: Identity::from_seed([1; 32]),
        coord: Identity::from_seed([2; 32]),
        verifier: Identity::from_seed([3; 32]),
        epoch: Epoch::daily(19_000).unwrap(),
    }
}

fn params(w: &World) -> StatementParams {
    StatementParams {
        currency: Currency::Usd,
        protocol_fee_bps: 1_000,
        heartbeat_grace_ms: 60_000,
        verifiers: vec![w.verifier.public().clone()],
    }
}

/// A countersigned receipt finishing `offset_ms` into the epoch after running `run_ms`.
fn receipt(
    w: &World,
    id: &str,
    offset_ms: u64,
    run_ms: u64,
    prompt: u32,
    signer: &Identity,
) -> Receipt {
    let mut body = sample_body(&w.provider, signer, prompt, 8);
    body.receipt_id = format!("rcpt_{id}");
    body.job_id = format!("job_{id}");
    body.finished_at_ms = w.epoch.start_ms() + offset_ms;
    body.dispatched_at_ms = body.finished_at_ms - run_ms;
    let mut r = Receipt::sign_as_provider(body, &w.provider);
    r.countersign(signer);
    r
}

fn audit(r: &Receipt, id: &str, outcome: AuditOutcome, by: &Identity) -> AuditReport {
    AuditReport::sign(
        AuditBody {
            version: proofmesh_receipt::AUDIT_VERSION,
            audit_id: id.into(),
            receipt_id: r.body.receipt_id.clone(),
            receipt_digest: receipt_body_digest(&r.body),
            verifier_key: by.public().clone(),
            outcome,
            reason: String::new(),
            positions_checked: 8,
            checked_at_ms: r.body.finished_at_ms + 1,
        },
        by,
    )
}

fn beats(w: &World, every_ms: u64, until_ms: u64) -> Vec<Heartbeat> {
    (0..until_ms / every_ms)
        .map(|i| Heartbeat {
            provider: w.provider.public().clone(),
            at_ms: w.epoch.start_ms() + i * every_ms,
        })
        .collect()
}

fn charge(r: &Receipt) -> u64 {
    r.body.price.charged_micros
}

fn compute(w: &World, rs: &[Receipt], audits: &[AuditReport], hb: &[Heartbeat]) -> Computed {
    compute_statement(
        w.provider.public(),
        w.coord.public(),
        w.epoch,
        &params(w),
        rs,
        audits,
        hb,
    )
    .unwrap()
}

#[test]
fn figures_follow_only_from_valid_evidence() {
    let w = world();
    let good_a = receipt(&w, "a", 1_000_000, 10_000, 1000, &w.coord);
    let good_b = receipt(&w, "b", 1_005_000, 10_000, 3000, &w.coord); // overlaps a
    let mut failed = receipt(&w, "c", 2_000_000, 4_000, 500, &w.coord);
    failed
        .audits
        .push(audit(&failed, "aud_c", AuditOutcome::Failed, &w.verifier));
    let outside = receipt(&w, "d", DAY_MS + 5, 10, 1000, &w.coord);
    let other_coord = receipt(&w, "e", 3_000_000, 10, 1000, &Identity::from_seed([7; 32]));
    let mut tampered = receipt(&w, "f", 3_000_000, 10, 1000, &w.coord);
    tampered.body.price.charged_micros += 1_000;
    let pass_a = audit(&good_a, "aud_a", AuditOutcome::Passed, &w.verifier);
    let rogue = audit(&good_b, "aud_b", AuditOutcome::Passed, &w.provider);
    let rs = [
        good_a.clone(),
        good_b.clone(),
        failed.clone(),
        outside,
        other_coord,
        tampered,
        good_a.clone(),
    ];
    let hb = beats(&w, 60_000, DAY_MS / 2); // every minute (= grace) for half the day
    let c = compute(&w, &rs, &[pass_a.clone(), rogue, pass_a], &hb);
    let f = &c.figures;
    let fee = |m: u64| m * 1_000 / 10_000;
    assert_eq!(f.jobs_served, 3);
    assert_eq!(f.revenue_micros, charge(&good_a) + charge(&good_b));
    assert_eq!(
        f.net_revenue_micros,
        charge(&good_a) - fee(charge(&good_a)) + charge(&good_b) - fee(charge(&good_b))
    );
    assert_eq!(f.refunded_micros, charge(&failed));
    assert_eq!((f.audits_passed, f.audits_failed), (1, 1));
    assert_eq!(f.heartbeats, hb.len() as u64);
    assert_eq!(f.uptime_ms, DAY_MS / 2);
    assert_eq!(f.uptime_bps, 5_000);
    assert_eq!(f.busy_ms, 15_000 + 4_000);
    assert_eq!(
        f.utilization_bps,
        (19_000u128 * 10_000 / (DAY_MS as u128 / 2)) as u32
    );
    let ids: Vec<&str> = c.ignored.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, vec!["rcpt_e", "rcpt_f", "aud_b"], "{:?}", c.ignored);
}

#[test]
fn input_order_does_not_matter() {
    let w = world();
    let rs: Vec<Receipt> = (0..6)
        .map(|i| {
            receipt(
                &w,
                &i.to_string(),
                100_000 * (i + 1),
                50_000 + i * 7,
                100 + i as u32,
                &w.coord,
            )
        })
        .collect();
    let hb = beats(&w, 45_000, DAY_MS);
    let a = compute(&w, &rs, &[], &hb);
    let mut rev_rs = rs.clone();
    rev_rs.reverse();
    let mut rev_hb = hb.clone();
    rev_hb.reverse();
    assert_eq!(compute(&w, &rev_rs, &[], &rev_hb).figures, a.figures);
    assert_eq!(a.figures.uptime_bps, 10_000);
}

#[test]
fn inflated_statement_is_caught_by_recomputation() {
    let w = world();
    let rs = [receipt(&w, "a", 1_000, 500, 1000, &w.coord)];
    let honest = compute(&w, &rs, &[], &[]);
    let mut inflated = honest.figures.clone();
    inflated.revenue_micros *= 10;
    inflated.uptime_bps = 9_999;
    let m = recheck(&inflated, &honest.figures);
    let fields: Vec<&str> = m.iter().map(|x| x.field).collect();
    assert_eq!(fields, vec!["revenue_micros", "uptime_bps"]);
    assert_eq!(m[0].recomputed, honest.figures.revenue_micros);
    assert!(recheck(&honest.figures, &honest.figures).is_empty());
}

fn chain(w: &World, n: u64) -> Vec<SignedStatement> {
    let mut prev = genesis_hash();
    let mut out = Vec::new();
    for day in 0..n {
        let epoch = Epoch::daily(19_000 + day).unwrap();
        let c = compute_statement(
            w.provider.public(),
            w.coord.public(),
            epoch,
            &params(w),
            &[],
            &[],
            &beats(w, 60_000, DAY_MS),
        )
        .unwrap();
        let body = c.into_body(prev.clone());
        prev = body.hash();
        out.push(SignedStatement::sign(body, &w.coord).unwrap());
    }
    out
}

#[test]
fn signatures_verify_and_tampering_is_detected() {
    let w = world();
    let s = chain(&w, 1).remove(0);
    s.verify(0).unwrap();
    let mut t = s.clone();
    t.body.figures.revenue_micros += 1;
    assert!(matches!(
        t.verify(0),
        Err(StatementError::BadSignature { .. })
    ));
    assert!(matches!(
        SignedStatement::sign(s.body.clone(), &w.provider),
        Err(StatementError::WrongSigner { .. })
    ));
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(serde_json::from_str::<SignedStatement>(&json).unwrap(), s);
    let extra = json.replacen("{\"body\":{", "{\"body\":{\"x\":1,", 1);
    assert!(serde_json::from_str::<SignedStatement>(&extra).is_err());
}

#[test]
fn chain_detects_dropped_reordered_and_foreign_statements() {
    let w = world();
    let c = chain(&w, 3);
    verify_chain(&c, Some(w.coord.public()), Some(&genesis_hash())).unwrap();
    verify_chain(&c[1..], None, None).unwrap();
    let dropped = [c[0].clone(), c[2].clone()];
    assert!(matches!(
        verify_chain(&dropped, None, None),
        Err(StatementError::BrokenChain { index: 1, .. })
    ));
    let reordered = [c[1].clone(), c[0].clone()];
    assert!(matches!(
        verify_chain(&reordered, None, None),
        Err(StatementError::Sequence { index: 1, .. })
    ));
    assert!(matches!(
        verify_chain(&c[1..], None, Some(&genesis_hash())),
        Err(StatementError::BrokenChain { index: 0, .. })
    ));
    let other = Identity::from_seed([8; 32]);
    assert!(matches!(
        verify_chain(&c, Some(other.public()), None),
        Err(StatementError::Sequence { index: 0, .. })
    ));
}

#[test]
fn every_figure_is_covered_by_the_hash() {
    let w = world();
    let base = chain(&w, 1).remove(0).body;
    let setters: [fn(&mut StatementFigures); 11] = [
        |f| f.revenue_micros += 1,
        |f| f.net_revenue_micros += 1,
        |f| f.refunded_micros += 1,
        |f| f.jobs_served += 1,
        |f| f.audits_passed += 1,
        |f| f.audits_failed += 1,
        |f| f.heartbeats += 1,
        |f| f.uptime_ms += 1,
        |f| f.uptime_bps += 1,
        |f| f.busy_ms += 1,
        |f| f.utilization_bps += 1,
    ];
    for set in setters {
        let mut b = base.clone();
        set(&mut b.figures);
        assert_ne!(b.hash(), base.hash());
    }
    let mut b = base.clone();
    b.params.verifiers.clear();
    assert_ne!(b.hash(), base.hash());
}
