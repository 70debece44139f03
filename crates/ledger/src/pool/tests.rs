//! Unit tests of pools: exact distribution, the tie-break, transfers.

use super::*;
use crate::ledger::Ledger;

fn usd(m: u64) -> Amount {
    Amount::from_micros(Currency::Usd, m).unwrap()
}

fn pool(alloc: &[(&str, u64)]) -> RevenuePool {
    RevenuePool::new(
        "pool-a",
        "ed25519:p1",
        2_000,
        Currency::Usd,
        alloc.iter().map(|(h, u)| (h.to_string(), *u)),
    )
    .unwrap()
}

fn epoch() -> Epoch {
    Epoch::daily(20_000).unwrap()
}

fn micros(d: &Distribution) -> Vec<(&str, u64)> {
    d.payouts
        .iter()
        .map(|p| (p.holder.as_str(), p.micros))
        .collect()
}

#[test]
fn remainders_go_to_largest_remainder_then_holder_id() {
    // 100 over 3 equal holders: 33 each, 1 left; equal remainders → "a".
    let p = pool(&[("c", 1), ("a", 1), ("b", 1)]);
    let d = distribute(&p, usd(100), epoch()).unwrap();
    assert_eq!(micros(&d), vec![("a", 34), ("b", 33), ("c", 33)]);
    // 10 over units 1,2,3 (U=6): exact 1.67, 3.33, 5 → floors 1,3,5; the
    // one left goes to the largest remainder (a: 10 mod 6 = 4 > 2).
    let p = pool(&[("a", 1), ("b", 2), ("c", 3)]);
    let d = distribute(&p, usd(10), epoch()).unwrap();
    assert_eq!(micros(&d), vec![("a", 2), ("b", 3), ("c", 5)]);
    assert_eq!(d.rule, ROUNDING_RULE);
}

#[test]
fn distribution_moves_exactly_the_amount_through_the_ledger() {
    let p = pool(&[("a", 7), ("b", 11), ("c", 13)]);
    let mut l = Ledger::new();
    l.apply(
        crate::settle::transfer(
            "fund".into(),
            Reason::Adjustment,
            None,
            AccountId::External,
            AccountId::Pool("pool-a".into()),
            usd(1_000),
        )
        .unwrap(),
        1,
    )
    .unwrap();
    let d = distribute(&p, usd(1_000), epoch()).unwrap();
    let sum: u64 = d.payouts.iter().map(|x| x.micros).sum();
    assert_eq!(sum, 1_000);
    l.apply(d.transaction(), 2).unwrap();
    assert_eq!(
        l.balance(&AccountId::Pool("pool-a".into()), Currency::Usd),
        0
    );
    for x in &d.payouts {
        let got = l.balance(&AccountId::Holder(x.holder.clone()), Currency::Usd);
        assert_eq!(got as u64, x.micros);
    }
    // Same epoch again: idempotent, not a second payment.
    assert!(l.apply(d.transaction(), 3).unwrap().replayed);
}

#[test]
fn distribution_errors() {
    let p = pool(&[("a", 1)]);
    assert!(matches!(
        distribute(&p, usd(0), epoch()),
        Err(PoolError::NothingToDistribute { .. })
    ));
    let eur = Amount::from_micros(Currency::Eur, 5).unwrap();
    assert!(matches!(
        distribute(&p, eur, epoch()),
        Err(PoolError::Money(MoneyError::CurrencyMismatch { .. }))
    ));
    let empty = pool(&[]);
    assert!(matches!(
        distribute(&empty, usd(5), epoch()),
        Err(PoolError::NoUnits { .. })
    ));
}

#[test]
fn transfers_are_checked_and_idempotent() {
    let mut p = pool(&[("a", 10), ("b", 5)]);
    let t = UnitTransfer {
        key: "t1".into(),
        pool: "pool-a".into(),
        from: "a".into(),
        to: "c".into(),
        units: 4,
    };
    assert!(p.transfer(&t).unwrap());
    assert!(!p.transfer(&t).unwrap(), "retry must not move units again");
    assert_eq!((p.units("a"), p.units("c")), (6, 4));
    let mut other = t.clone();
    other.units = 5;
    assert!(matches!(
        p.transfer(&other),
        Err(PoolError::ConflictingKey { .. })
    ));
    let too_many = UnitTransfer {
        key: "t2".into(),
        units: 7,
        ..t.clone()
    };
    assert!(matches!(
        p.transfer(&too_many),
        Err(PoolError::InsufficientUnits {
            has: 6,
            wanted: 7,
            ..
        })
    ));
    let all = UnitTransfer {
        key: "t3".into(),
        units: 6,
        ..t.clone()
    };
    p.transfer(&all).unwrap();
    assert_eq!(p.holders().count(), 2, "an emptied holder is dropped");
    assert_eq!(p.total_units(), 15);
    for (bad, key) in [(0, "t4"), (1, "t5")] {
        let x = UnitTransfer {
            key: key.into(),
            from: "b".into(),
            to: if bad == 0 { "c".into() } else { "b".into() },
            units: bad,
            ..t.clone()
        };
        assert!(matches!(p.transfer(&x), Err(PoolError::BadTransfer { .. })));
    }
}

#[test]
fn construction_validates() {
    assert!(matches!(
        RevenuePool::new("p", "prov", 10_001, Currency::Usd, []),
        Err(PoolError::Money(MoneyError::BpsOutOfRange { .. }))
    ));
    assert!(matches!(
        RevenuePool::new(
            "p",
            "prov",
            1,
            Currency::Usd,
            [("a".into(), u64::MAX), ("b".into(), 1)]
        ),
        Err(PoolError::UnitOverflow { .. })
    ));
    assert!(matches!(
        RevenuePool::new("p p", "prov", 1, Currency::Usd, []),
        Err(PoolError::InvalidId { .. })
    ));
    let p = pool(&[("a", 1), ("a", 2)]);
    assert_eq!(p.units("a"), 3);
    assert_eq!(p.share().share_bps, 2_000);
}

#[test]
fn statement_hash_covers_payouts() {
    let p = pool(&[("a", 1), ("b", 2)]);
    let d = distribute(&p, usd(10), epoch()).unwrap();
    let mut e = d.clone();
    e.payouts[0].micros += 1;
    e.payouts[1].micros -= 1;
    assert_ne!(d.hash(), e.hash());
    let json = serde_json::to_string(&d).unwrap();
    assert_eq!(serde_json::from_str::<Distribution>(&json).unwrap(), d);
}
