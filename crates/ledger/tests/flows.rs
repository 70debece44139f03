//! End-to-end flows across modules: signed receipts settled through the
//! ledger agree with the metrics statement recomputed from the same receipts;
//! pool distribution, settlement batch and covenant evaluation run on the
//! result; and concurrent escrows from one small balance never overdraw it
//! when the check/commit split is used the way a store would.

use std::sync::{Arc, RwLock};

use proofmesh_ledger::settle::{
    deposit, escrow_at_dispatch, refund_failed_audit, release_held, settle_completed,
};
use proofmesh_ledger::*;
use proofmesh_receipt::testing::sample_body;
use proofmesh_receipt::{
    receipt_body_digest, AuditBody, AuditOutcome, AuditReport, Identity, Receipt, AUDIT_VERSION,
};

struct Keys {
    provider: Identity,
    coord: Identity,
    verifier: Identity,
}

fn keys() -> Keys {
    Keys {
        provider: Identity::from_seed([11; 32]),
        coord: Identity::from_seed([12; 32]),
        verifier: Identity::from_seed([13; 32]),
    }
}

fn receipt(k: &Keys, i: u32, epoch: Epoch) -> Receipt {
    let mut body = sample_body(&k.provider, &k.coord, 100 + i * 37, 1 + i % 60);
    body.receipt_id = format!("rcpt_{i}");
    body.job_id = format!("job_{i}");
    body.dispatched_at_ms = epoch.start_ms() + u64::from(i) * 60_000;
    body.finished_at_ms = body.dispatched_at_ms + 1_500;
    let mut r = Receipt::sign_as_provider(body, &k.provider);
    r.countersign(&k.coord);
    r
}

fn audit(k: &Keys, r: &Receipt, outcome: AuditOutcome) -> AuditReport {
    let body = AuditBody {
        version: AUDIT_VERSION,
        audit_id: format!("aud_{}", r.body.receipt_id),
        receipt_id: r.body.receipt_id.clone(),
        receipt_digest: receipt_body_digest(&r.body),
        verifier_key: k.verifier.public().clone(),
        outcome,
        reason: String::new(),
        positions_checked: 4,
        checked_at_ms: r.body.finished_at_ms + 10,
    };
    AuditReport::sign(body, &k.verifier)
}

fn usd(m: u64) -> Amount {
    Amount::from_micros(Currency::Usd, m).unwrap()
}

/// Settles one receipt through escrow → settle → (audit). Returns the audit report, if any.
fn settle_one(
    l: &mut Ledger,
    k: &Keys,
    r: &Receipt,
    i: u32,
    cfg: &SettlementConfig,
    pool: &PoolShare,
) -> Option<AuditReport> {
    let job = JobParties {
        job_id: r.body.job_id.clone(),
        client: "acme".into(),
        provider: k.provider.public().to_string(),
    };
    let at = r.body.dispatched_at_ms;
    let price = ModelPrice::from_receipt_price(&r.body.price).unwrap();
    let e = escrow_at_dispatch(
        &job,
        &price,
        r.body.prompt_tokens,
        r.body.sampling.max_tokens,
        None,
    )
    .unwrap();
    let held = e.settlement.breakdown.held;
    l.apply(e.settlement.tx, at).unwrap();
    let charge = receipt_charge(&r.body).unwrap();
    let audited = i % 4 == 0;
    let decision = if audited {
        AuditDecision::Hold
    } else {
        AuditDecision::NotAudited
    };
    let s = settle_completed(
        &job,
        &r.body.receipt_id,
        held,
        charge,
        cfg,
        Some(pool),
        decision,
    )
    .unwrap();
    l.apply(s.tx, at + 1).unwrap();
    if !audited {
        return None;
    }
    let failed = i % 8 == 0;
    let outcome = if failed {
        AuditOutcome::Failed
    } else {
        AuditOutcome::Passed
    };
    let report = audit(k, r, outcome);
    let stake = l.balance(
        &AccountId::ProviderStake(job.provider.clone()),
        Currency::Usd,
    );
    let tx = if failed {
        refund_failed_audit(&job, &report.body.audit_id, charge, usd(stake as u64), cfg)
            .unwrap()
            .tx
    } else {
        release_held(&job, &report.body.audit_id, charge, cfg, Some(pool))
            .unwrap()
            .tx
    };
    l.apply(tx, at + 2).unwrap();
    Some(report)
}

/// One settled epoch: the ledger, the evidence, and the pool.
struct Settled {
    ledger: Ledger,
    receipts: Vec<Receipt>,
    audits: Vec<AuditReport>,
    pool: RevenuePool,
    cfg: SettlementConfig,
}

fn settle_epoch(k: &Keys, epoch: Epoch) -> Settled {
    let provider = k.provider.public().to_string();
    let cfg = SettlementConfig {
        protocol_fee_bps: 700,
        slash: SlashRule::StakeBps { bps: 2_000 },
    };
    let holders = [("alice".to_string(), 3), ("bob".to_string(), 7)];
    let pool = RevenuePool::new("fleet-1", &provider, 2_500, Currency::Usd, holders).unwrap();
    let mut l = Ledger::new();
    let start = epoch.start_ms();
    l.apply(deposit("acme", usd(50_000_000), "wire-1").unwrap(), start)
        .unwrap();
    let stake = settle::post_stake(&provider, usd(1_000_000), "stake-1").unwrap();
    l.apply(stake, start).unwrap();
    let receipts: Vec<Receipt> = (0..40).map(|i| receipt(k, i, epoch)).collect();
    let audits = receipts
        .iter()
        .enumerate()
        .filter_map(|(i, r)| settle_one(&mut l, k, r, i as u32, &cfg, &pool.share()))
        .collect();
    Settled {
        ledger: l,
        receipts,
        audits,
        pool,
        cfg,
    }
}

fn recompute(k: &Keys, epoch: Epoch, s: &Settled) -> statement::Computed {
    let params = StatementParams {
        currency: Currency::Usd,
        protocol_fee_bps: s.cfg.protocol_fee_bps,
        heartbeat_grace_ms: 60_000,
        verifiers: vec![k.verifier.public().clone()],
    };
    let hb: Vec<Heartbeat> = (0..1440u64)
        .map(|m| Heartbeat {
            provider: k.provider.public().clone(),
            at_ms: epoch.start_ms() + m * 60_000,
        })
        .collect();
    let (p, c) = (k.provider.public(), k.coord.public());
    compute_statement(p, c, epoch, &params, &s.receipts, &s.audits, &hb).unwrap()
}

#[test]
fn ledger_and_recomputed_statement_agree() {
    let k = keys();
    let epoch = Epoch::daily(20_100).unwrap();
    let s = settle_epoch(&k, epoch);
    let c = recompute(&k, epoch, &s);
    let (f, l) = (&c.figures, &s.ledger);
    assert!(c.ignored.is_empty(), "{:?}", c.ignored);
    assert_eq!(f.jobs_served, 40);
    assert_eq!((f.audits_passed, f.audits_failed), (5, 5));
    assert_eq!(f.uptime_bps, 10_000);
    // The statement's net revenue is exactly what the ledger credited to the
    // provider's earnings plus its pool; refunds are what clients got back.
    let bal = |a: AccountId| l.balance(&a, Currency::Usd);
    let earnings = bal(AccountId::ProviderEarnings(k.provider.public().to_string()));
    let pool_bal = bal(AccountId::Pool("fleet-1".into()));
    let fee = bal(AccountId::ProtocolFee);
    assert_eq!(f.net_revenue_micros as i64, earnings + pool_bal);
    assert_eq!(f.revenue_micros as i64, earnings + pool_bal + fee);
    let client = bal(AccountId::Client("acme".into()));
    assert_eq!(client, 50_000_000 - f.revenue_micros as i64);
    assert_eq!(bal(AccountId::Insurance) > 0, f.audits_failed > 0);
}

#[test]
fn epoch_close_distributes_batches_signs_and_evaluates() {
    let k = keys();
    let epoch = Epoch::daily(20_100).unwrap();
    let mut s = settle_epoch(&k, epoch);
    let c = recompute(&k, epoch, &s);
    let l = &mut s.ledger;
    let pool_bal = l.balance(&AccountId::Pool("fleet-1".into()), Currency::Usd);
    let d = distribute(&s.pool, usd(pool_bal as u64), epoch).unwrap();
    l.apply(d.transaction(), epoch.end_ms() - 1).unwrap();
    let paid: i64 = ["alice", "bob"]
        .iter()
        .map(|h| l.balance(&AccountId::Holder((*h).into()), Currency::Usd))
        .sum();
    assert_eq!(paid, pool_bal);
    let zero = Hash32([0; 32]);
    let batch = BatchBody::build(k.coord.public(), epoch, 0, l.journal(), zero).unwrap();
    assert_eq!(batch.count, l.len());
    SignedBatch::sign(batch, &k.coord)
        .unwrap()
        .verify()
        .unwrap();

    let net = c.figures.net_revenue_micros;
    let stmt = SignedStatement::sign(c.clone().into_body(genesis_hash()), &k.coord).unwrap();
    let chain = std::slice::from_ref(&stmt);
    verify_chain(chain, Some(k.coord.public()), Some(&genesis_hash())).unwrap();
    assert!(recheck(&stmt.body.figures, &c.figures).is_empty());
    let policy = CovenantPolicy::from_toml_str(&format!(
        "min_uptime_bps = 9900\nmin_dscr = 1.25\ndebt_service_micros = {}\nmax_failed_audit_rate_bps = 50",
        net * 4 / 5
    ))
    .unwrap();
    let report = evaluate(&policy, std::slice::from_ref(&stmt.body)).unwrap();
    // 5 of 10 audits failed: the audit covenant fails, the others pass.
    let verdicts: Vec<bool> = report.checks.iter().map(|c| c.passed).collect();
    assert_eq!(verdicts, vec![true, true, false], "{report}");
    assert_eq!(
        Ledger::replay(l.journal()).unwrap().balances(),
        l.balances()
    );
}

#[test]
fn concurrent_escrows_never_overdraw_a_small_balance() {
    let price = ModelPrice::per_token(Currency::Usd, 1_000_000, 1_000_000);
    let cost = price.charge(10, 90).unwrap().micros(); // 100 micro-units each
    let ledger = Arc::new(RwLock::new(Ledger::new()));
    ledger
        .write()
        .unwrap()
        .apply(deposit("small", usd(cost * 7 + 50), "p").unwrap(), 0)
        .unwrap();
    let threads: Vec<_> = (0..100)
        .map(|i| {
            let ledger = Arc::clone(&ledger);
            let price = price.clone();
            std::thread::spawn(move || {
                let job = JobParties {
                    job_id: format!("j{i}"),
                    client: "small".into(),
                    provider: "p".into(),
                };
                let tx = escrow_at_dispatch(&job, &price, 10, 90, None)
                    .unwrap()
                    .settlement
                    .tx;
                loop {
                    // Check under a read lock (as a store reads), commit under a write lock.
                    let checked = ledger.read().unwrap().check(&tx);
                    let fx = match checked {
                        Ok(Checked::Fresh(fx)) => fx,
                        Ok(Checked::AlreadyApplied(_)) => return true,
                        Err(LedgerError::InsufficientFunds { .. }) => return false,
                        Err(e) => panic!("{e}"),
                    };
                    match ledger.write().unwrap().commit(fx, tx.clone(), 1) {
                        Ok(_) => return true,
                        Err(LedgerError::Stale { .. }) => continue,
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    let ok = threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .filter(|x| *x)
        .count();
    let l = ledger.read().unwrap();
    assert_eq!(ok, 7);
    assert_eq!(
        l.balance(&AccountId::Client("small".into()), Currency::Usd),
        50
    );
    assert_eq!(l.totals()[&Currency::Usd], 0);
}
