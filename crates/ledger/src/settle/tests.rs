//! Unit tests of the settlement flows, each run through a real [`Ledger`].

use super::*;
use crate::ledger::{Ledger, LedgerError};
use crate::money::Currency;

fn usd(m: u64) -> Amount {
    Amount::from_micros(Currency::Usd, m).unwrap()
}

fn job() -> JobParties {
    JobParties {
        job_id: "job_1".into(),
        client: "alice".into(),
        provider: "ed25519:p1".into(),
    }
}

fn price() -> ModelPrice {
    // 1 micro per token in, 2 per token out (per 1M: 1e6 and 2e6).
    ModelPrice::per_token(Currency::Usd, 1_000_000, 2_000_000)
}

fn cfg() -> SettlementConfig {
    SettlementConfig {
        protocol_fee_bps: 1_000,
        slash: SlashRule::StakeBps { bps: 5_000 },
    }
}

fn bal(l: &Ledger, a: AccountId) -> i64 {
    l.balance(&a, Currency::Usd)
}

/// Ledger with alice holding `credit` and the provider staking `stake`, job escrowed.
fn funded(credit: u64, stake: u64) -> (Ledger, Amount) {
    let mut l = Ledger::new();
    l.apply(deposit("alice", usd(credit), "pay1").unwrap(), 1)
        .unwrap();
    if stake > 0 {
        l.apply(post_stake("ed25519:p1", usd(stake), "st1").unwrap(), 1)
            .unwrap();
    }
    let e = escrow_at_dispatch(&job(), &price(), 10, 100, None).unwrap();
    let escrowed = e.settlement.breakdown.held;
    l.apply(e.settlement.tx, 2).unwrap();
    (l, escrowed)
}

#[test]
fn unaudited_job_pays_provider_fee_and_pool_and_refunds_unused() {
    let (mut l, escrowed) = funded(10_000, 0);
    assert_eq!(escrowed.micros(), 10 + 2 * 100);
    let charge = price().charge(10, 41).unwrap(); // 92
    let pool = PoolShare {
        pool: "pool-a".into(),
        share_bps: 2_500,
    };
    let s = settle_completed(
        &job(),
        "rcpt_1",
        escrowed,
        charge,
        &cfg(),
        Some(&pool),
        AuditDecision::NotAudited,
    )
    .unwrap();
    let b = &s.breakdown;
    assert_eq!(b.fee.micros(), 9); // floor(92 × 10%)
    assert_eq!(b.pool_cut.micros(), 20); // floor(83 × 25%)
    assert_eq!(b.provider_net.micros(), 63);
    assert_eq!(b.refund.micros(), escrowed.micros() - 92);
    l.apply(s.tx, 3).unwrap();
    assert_eq!(bal(&l, AccountId::Client("alice".into())), 10_000 - 92);
    assert_eq!(
        bal(&l, AccountId::ProviderEarnings("ed25519:p1".into())),
        63
    );
    assert_eq!(bal(&l, AccountId::ProtocolFee), 9);
    assert_eq!(bal(&l, AccountId::Pool("pool-a".into())), 20);
    assert_eq!(bal(&l, AccountId::JobEscrow("job_1".into())), 0);
    assert_eq!(l.totals()[&Currency::Usd], 0);
}

#[test]
fn retried_escrow_and_settlement_never_charge_twice() {
    let (mut l, escrowed) = funded(10_000, 0);
    let again = escrow_at_dispatch(&job(), &price(), 10, 100, None).unwrap();
    assert!(l.apply(again.settlement.tx, 5).unwrap().replayed);
    let charge = usd(50);
    let s = || {
        settle_completed(
            &job(),
            "r",
            escrowed,
            charge,
            &cfg(),
            None,
            AuditDecision::NotAudited,
        )
        .unwrap()
    };
    l.apply(s().tx, 6).unwrap();
    assert!(l.apply(s().tx, 7).unwrap().replayed);
    assert_eq!(bal(&l, AccountId::Client("alice".into())), 10_000 - 50);
    // Same job, different charge: a conflict, not a second charge.
    let other = settle_completed(
        &job(),
        "r",
        escrowed,
        usd(60),
        &cfg(),
        None,
        AuditDecision::NotAudited,
    )
    .unwrap();
    assert!(matches!(
        l.apply(other.tx, 8),
        Err(LedgerError::ConflictingKey { .. })
    ));
}

#[test]
fn held_job_is_paid_only_after_a_passed_audit() {
    let (mut l, escrowed) = funded(10_000, 1_000);
    let charge = usd(100);
    let s = settle_completed(
        &job(),
        "r",
        escrowed,
        charge,
        &cfg(),
        None,
        AuditDecision::Hold,
    )
    .unwrap();
    l.apply(s.tx, 3).unwrap();
    assert_eq!(bal(&l, AccountId::AuditHold("job_1".into())), 100);
    assert_eq!(bal(&l, AccountId::ProviderEarnings("ed25519:p1".into())), 0);
    l.apply(
        release_held(&job(), "aud_1", charge, &cfg(), None)
            .unwrap()
            .tx,
        4,
    )
    .unwrap();
    assert_eq!(bal(&l, AccountId::AuditHold("job_1".into())), 0);
    assert_eq!(
        bal(&l, AccountId::ProviderEarnings("ed25519:p1".into())),
        90
    );
    // A later "failed" verdict for the same job cannot also apply.
    let stake = usd(bal(&l, AccountId::ProviderStake("ed25519:p1".into())) as u64);
    let fail = refund_failed_audit(&job(), "aud_1", charge, stake, &cfg()).unwrap();
    assert!(matches!(
        l.apply(fail.tx, 5),
        Err(LedgerError::ConflictingKey { .. })
    ));
}

#[test]
fn failed_audit_refunds_in_full_and_slashes_stake() {
    let (mut l, escrowed) = funded(10_000, 1_000);
    let charge = usd(100);
    let s = settle_completed(
        &job(),
        "r",
        escrowed,
        charge,
        &cfg(),
        None,
        AuditDecision::Hold,
    )
    .unwrap();
    l.apply(s.tx, 3).unwrap();
    let fail = refund_failed_audit(&job(), "aud_1", charge, usd(1_000), &cfg()).unwrap();
    assert_eq!(fail.breakdown.slashed.micros(), 500);
    assert_eq!(fail.tx.reason, Reason::Slash);
    l.apply(fail.tx, 4).unwrap();
    assert_eq!(bal(&l, AccountId::Client("alice".into())), 10_000);
    assert_eq!(bal(&l, AccountId::ProviderStake("ed25519:p1".into())), 500);
    assert_eq!(bal(&l, AccountId::Insurance), 500);
    assert_eq!(bal(&l, AccountId::AuditHold("job_1".into())), 0);
}

#[test]
fn clawback_after_release_is_bounded_by_stake() {
    let (mut l, escrowed) = funded(10_000, 60);
    let charge = usd(100);
    let s = settle_completed(
        &job(),
        "r",
        escrowed,
        charge,
        &cfg(),
        None,
        AuditDecision::NotAudited,
    )
    .unwrap();
    l.apply(s.tx, 3).unwrap();
    let c = clawback_failed_audit(&job(), "aud_1", charge, usd(60), &cfg()).unwrap();
    assert_eq!(c.breakdown.refund.micros(), 60);
    assert_eq!(c.breakdown.shortfall.micros(), 40);
    assert_eq!(c.breakdown.slashed.micros(), 0);
    l.apply(c.tx, 4).unwrap();
    assert_eq!(bal(&l, AccountId::ProviderStake("ed25519:p1".into())), 0);
    assert_eq!(
        bal(&l, AccountId::Client("alice".into())),
        10_000 - 100 + 60
    );
}

#[test]
fn client_max_price_caps_escrow_and_tokens() {
    let limit = usd(50);
    let e = escrow_at_dispatch(&job(), &price(), 10, 100, Some(limit)).unwrap();
    assert_eq!(e.settlement.breakdown.held, limit);
    assert_eq!(e.max_completion_tokens, 20); // 10 + 2·20 = 50
    assert!(price().charge(10, e.max_completion_tokens).unwrap() <= limit);
    let err = escrow_at_dispatch(&job(), &price(), 60, 100, Some(limit)).unwrap_err();
    assert!(matches!(err, SettleError::AboveMaxPrice { .. }), "{err}");
    let eur = Amount::from_micros(Currency::Eur, 50).unwrap();
    assert!(matches!(
        escrow_at_dispatch(&job(), &price(), 10, 100, Some(eur)),
        Err(SettleError::Money(MoneyError::CurrencyMismatch { .. }))
    ));
}

#[test]
fn escrow_beyond_balance_is_refused_by_the_ledger() {
    let mut l = Ledger::new();
    l.apply(deposit("alice", usd(100), "p").unwrap(), 1)
        .unwrap();
    let e = escrow_at_dispatch(&job(), &price(), 10, 100, None).unwrap();
    assert!(matches!(
        l.apply(e.settlement.tx, 2),
        Err(LedgerError::InsufficientFunds { .. })
    ));
    assert_eq!(bal(&l, AccountId::Client("alice".into())), 100);
}

#[test]
fn bad_settlements_are_errors() {
    let err = settle_completed(
        &job(),
        "r",
        usd(10),
        usd(11),
        &cfg(),
        None,
        AuditDecision::Hold,
    )
    .unwrap_err();
    assert!(
        matches!(err, SettleError::ChargeExceedsEscrow { .. }),
        "{err}"
    );
    assert!(matches!(
        escrow_at_dispatch(
            &job(),
            &ModelPrice::per_token(Currency::Usd, 0, 0),
            1,
            1,
            None
        ),
        Err(SettleError::NothingToSettle { .. })
    ));
    let bad_pool = PoolShare {
        pool: "p".into(),
        share_bps: 10_001,
    };
    assert!(matches!(
        release_held(&job(), "a", usd(10), &cfg(), Some(&bad_pool)),
        Err(SettleError::Money(MoneyError::BpsOutOfRange { .. }))
    ));
}

#[test]
fn failed_job_refunds_all_escrow() {
    let (mut l, escrowed) = funded(10_000, 0);
    l.apply(settle_failed_job(&job(), escrowed).unwrap().tx, 3)
        .unwrap();
    assert_eq!(bal(&l, AccountId::Client("alice".into())), 10_000);
    assert_eq!(bal(&l, AccountId::JobEscrow("job_1".into())), 0);
}

#[test]
fn slash_rules() {
    let stake = usd(1_000);
    assert_eq!(SlashRule::None.amount(stake).unwrap().micros(), 0);
    assert_eq!(
        SlashRule::Fixed { micros: 5_000 }.amount(stake).unwrap(),
        stake
    );
    assert_eq!(
        SlashRule::StakeBps { bps: 250 }
            .amount(stake)
            .unwrap()
            .micros(),
        25
    );
    let json = r#"{"protocol_fee_bps":300,"slash":{"kind":"fixed","micros":7}}"#;
    let c: SettlementConfig = serde_json::from_str(json).unwrap();
    assert_eq!(c.slash, SlashRule::Fixed { micros: 7 });
}

#[test]
fn withdrawals_leave_the_ledger_and_cannot_overdraw() {
    let mut l = Ledger::new();
    l.apply(post_stake("p", usd(10), "s1").unwrap(), 1).unwrap();
    let w = withdraw(AccountId::ProviderStake("p".into()), usd(11), "w1").unwrap();
    assert_eq!(w.reason, Reason::StakeWithdrawal);
    assert!(l.apply(w, 2).is_err());
    l.apply(
        withdraw(AccountId::ProviderStake("p".into()), usd(10), "w2").unwrap(),
        3,
    )
    .unwrap();
    assert_eq!(bal(&l, AccountId::External), 0);
}
