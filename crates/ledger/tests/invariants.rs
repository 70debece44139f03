//! Property tests of the ledger's invariants under random operation
//! sequences: the books balance, no non-credit account goes negative, a
//! rejected transaction changes nothing, retries never double charge,
//! replaying the journal reproduces every balance, pools conserve money and
//! units exactly, and overflow is always an error.

use proofmesh_ledger::settle::{
    deposit, escrow_at_dispatch, refund_failed_audit, release_held, settle_completed, transfer,
    withdraw,
};
use proofmesh_ledger::*;
use proptest::prelude::*;

const PROVIDER: &str = "ed25519:prov";

fn accounts() -> Vec<AccountId> {
    vec![
        AccountId::External,
        AccountId::Client("c0".into()),
        AccountId::Client("c1".into()),
        AccountId::ProviderEarnings(PROVIDER.into()),
        AccountId::ProviderStake(PROVIDER.into()),
        AccountId::ProtocolFee,
        AccountId::Insurance,
        AccountId::Pool("pool".into()),
        AccountId::Holder("h0".into()),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Deposit {
        client: u8,
        micros: u64,
        cur: u8,
    },
    Move {
        from: usize,
        to: usize,
        micros: u64,
        cur: u8,
    },
    Withdraw {
        from: usize,
        micros: u64,
    },
    Job {
        client: u8,
        prompt: u32,
        completion: u32,
        hold: bool,
        pass: bool,
    },
    Retry {
        index: usize,
    },
    Conflict {
        index: usize,
    },
}

fn micros() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0u64..5_000,
        1 => Just(Amount::MAX_MICROS),
        1 => (Amount::MAX_MICROS - 10)..=u64::MAX,
        1 => any::<u64>(),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let n = accounts().len();
    prop_oneof![
        (0u8..2, micros(), 0u8..2).prop_map(|(client, micros, cur)| Op::Deposit {
            client,
            micros,
            cur
        }),
        (0..n, 0..n, micros(), 0u8..2).prop_map(|(from, to, micros, cur)| Op::Move {
            from,
            to,
            micros,
            cur
        }),
        (0..n, micros()).prop_map(|(from, micros)| Op::Withdraw { from, micros }),
        (0u8..2, 0u32..3_000, 0u32..300, any::<bool>(), any::<bool>()).prop_map(
            |(client, prompt, completion, hold, pass)| Op::Job {
                client,
                prompt,
                completion,
                hold,
                pass
            }
        ),
        any::<usize>().prop_map(|index| Op::Retry { index }),
        any::<usize>().prop_map(|index| Op::Conflict { index }),
    ]
}

fn cur(c: u8) -> Currency {
    if c == 0 {
        Currency::Usd
    } else {
        Currency::Eur
    }
}

struct Harness {
    ledger: Ledger,
    applied: Vec<Transaction>,
    jobs: u64,
    t: u64,
}

impl Harness {
    /// Applies `tx`, asserting every invariant; returns whether it applied.
    fn apply(&mut self, tx: Transaction) -> bool {
        let before = (self.ledger.balances(), self.ledger.len());
        self.t += 1;
        match self.ledger.apply(tx.clone(), self.t) {
            Ok(a) => {
                if a.replayed {
                    assert_eq!((self.ledger.balances(), self.ledger.len()), before);
                } else {
                    self.applied.push(tx);
                }
            }
            Err(_) => {
                assert_eq!(
                    (self.ledger.balances(), self.ledger.len()),
                    before,
                    "a rejected transaction changed the ledger"
                );
                return false;
            }
        }
        for (c, total) in self.ledger.totals() {
            assert_eq!(total, 0, "books do not balance in {c}");
        }
        for (a, c, b) in self.ledger.balances() {
            assert!(b >= 0 || a.allows_credit(), "{a} is {b} {c}");
        }
        true
    }

    fn job(&mut self, client: u8, prompt: u32, completion: u32, hold: bool, pass: bool) {
        self.jobs += 1;
        let job = JobParties {
            job_id: format!("job{}", self.jobs),
            client: format!("c{client}"),
            provider: PROVIDER.into(),
        };
        let price = ModelPrice::per_token(Currency::Usd, 1_000_000, 2_000_000);
        let cfg = SettlementConfig::default();
        let pool = PoolShare {
            pool: "pool".into(),
            share_bps: 3_000,
        };
        let Ok(e) = escrow_at_dispatch(&job, &price, prompt, 300, None) else {
            return;
        };
        let held = e.settlement.breakdown.held;
        if !self.apply(e.settlement.tx) {
            return;
        }
        let charge = price.charge(prompt, completion).unwrap();
        let decision = if hold {
            AuditDecision::Hold
        } else {
            AuditDecision::NotAudited
        };
        let s = settle_completed(&job, "r", held, charge, &cfg, Some(&pool), decision).unwrap();
        assert!(self.apply(s.tx), "settlement of an escrowed job must apply");
        if hold && !charge.is_zero() {
            let stake = self
                .ledger
                .balance(&AccountId::ProviderStake(PROVIDER.into()), Currency::Usd);
            let stake = Amount::from_micros(Currency::Usd, stake as u64).unwrap();
            let tx = if pass {
                release_held(&job, "a", charge, &cfg, Some(&pool))
                    .unwrap()
                    .tx
            } else {
                refund_failed_audit(&job, "a", charge, stake, &cfg)
                    .unwrap()
                    .tx
            };
            assert!(self.apply(tx), "audit outcome must apply");
        }
    }

    fn run(&mut self, op: Op) {
        let accts = accounts();
        let build = |c: Currency, m: u64| Amount::from_micros(c, m);
        match op {
            Op::Deposit {
                client,
                micros,
                cur: c,
            } => {
                if let Ok(a) = build(cur(c), micros) {
                    if let Ok(tx) = deposit(&format!("c{client}"), a, &format!("p{}", self.t)) {
                        self.apply(tx);
                    }
                }
            }
            Op::Move {
                from,
                to,
                micros,
                cur: c,
            } => {
                if let Ok(a) = build(cur(c), micros) {
                    let key = format!("m{}", self.t);
                    if let Ok(tx) = transfer(
                        key,
                        Reason::Adjustment,
                        None,
                        accts[from].clone(),
                        accts[to].clone(),
                        a,
                    ) {
                        self.apply(tx);
                    }
                }
            }
            Op::Withdraw { from, micros } => {
                if let Ok(a) = build(Currency::Usd, micros) {
                    if let Ok(tx) = withdraw(accts[from].clone(), a, &format!("w{}", self.t)) {
                        self.apply(tx);
                    }
                }
            }
            Op::Job {
                client,
                prompt,
                completion,
                hold,
                pass,
            } => self.job(client, prompt, completion, hold, pass),
            Op::Retry { index } if !self.applied.is_empty() => {
                let tx = self.applied[index % self.applied.len()].clone();
                let before = self.ledger.balances();
                assert!(
                    self.ledger.apply(tx, 0).unwrap().replayed,
                    "retry must be a no-op"
                );
                assert_eq!(self.ledger.balances(), before);
            }
            Op::Conflict { index } if !self.applied.is_empty() => {
                let mut tx = self.applied[index % self.applied.len()].clone();
                tx.reason = if tx.reason == Reason::Adjustment {
                    Reason::Fee
                } else {
                    Reason::Adjustment
                };
                let before = self.ledger.balances();
                let err = self.ledger.apply(tx, 0).unwrap_err();
                assert!(matches!(err, LedgerError::ConflictingKey { .. }), "{err}");
                assert_eq!(self.ledger.balances(), before);
            }
            Op::Retry { .. } | Op::Conflict { .. } => {}
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn ledger_invariants_hold_and_replay_reproduces(ops in proptest::collection::vec(op(), 1..80)) {
        let mut h = Harness { ledger: Ledger::new(), applied: vec![], jobs: 0, t: 0 };
        h.apply(settle::post_stake(PROVIDER, Amount::from_micros(Currency::Usd, 10_000).unwrap(), "s").unwrap());
        for op in ops {
            h.run(op);
        }
        let replayed = Ledger::replay(h.ledger.journal()).unwrap();
        prop_assert_eq!(replayed.balances(), h.ledger.balances());
        prop_assert_eq!(replayed.len(), h.applied.len() as u64);
    }

    #[test]
    fn distribution_conserves_exactly_and_is_fair(
        units in proptest::collection::vec(0u64..=u64::MAX / 64, 1..40),
        amount in 1u64..=Amount::MAX_MICROS,
    ) {
        let alloc: Vec<(String, u64)> = units.iter().enumerate().map(|(i, u)| (format!("h{i:02}"), *u)).collect();
        let pool = RevenuePool::new("p", "prov", 100, Currency::Usd, alloc.clone()).unwrap();
        prop_assume!(pool.total_units() > 0);
        let amt = Amount::from_micros(Currency::Usd, amount).unwrap();
        let epoch = Epoch::daily(1).unwrap();
        let d = distribute(&pool, amt, epoch).unwrap();
        let sum: u128 = d.payouts.iter().map(|p| u128::from(p.micros)).sum();
        prop_assert_eq!(sum, u128::from(amount));
        let total = u128::from(pool.total_units());
        let mut bumped_min_rem = u128::MAX;
        let mut plain_max_rem = 0u128;
        for p in &d.payouts {
            let exact = u128::from(amount) * u128::from(p.units);
            let floor = exact / total;
            let got = u128::from(p.micros);
            prop_assert!(got == floor || got == floor + 1, "{} got {} for floor {}", p.holder, got, floor);
            let rem = exact % total;
            if got == floor + 1 { bumped_min_rem = bumped_min_rem.min(rem) } else { plain_max_rem = plain_max_rem.max(rem) }
        }
        prop_assert!(bumped_min_rem == u128::MAX || bumped_min_rem >= plain_max_rem);
        // Same holders in another order: same result.
        let mut rev = alloc;
        rev.reverse();
        let pool2 = RevenuePool::new("p", "prov", 100, Currency::Usd, rev).unwrap();
        prop_assert_eq!(distribute(&pool2, amt, epoch).unwrap(), d.clone());
        // Through the ledger: the pool account ends at zero.
        let mut l = Ledger::new();
        l.apply(transfer("f".into(), Reason::Adjustment, None, AccountId::External, AccountId::Pool("p".into()), amt).unwrap(), 0).unwrap();
        l.apply(d.transaction(), 1).unwrap();
        prop_assert_eq!(l.balance(&AccountId::Pool("p".into()), Currency::Usd), 0);
    }

    #[test]
    fn unit_transfers_conserve_units(moves in proptest::collection::vec((0usize..5, 0usize..5, 0u64..200), 0..60)) {
        let alloc = (0..5).map(|i| (format!("h{i}"), 100u64));
        let mut pool = RevenuePool::new("p", "prov", 100, Currency::Usd, alloc).unwrap();
        for (k, (from, to, units)) in moves.into_iter().enumerate() {
            let t = UnitTransfer { key: format!("k{k}"), pool: "p".into(), from: format!("h{from}"), to: format!("h{to}"), units };
            let before: Vec<(String, u64)> = pool.holders().map(|(h, u)| (h.to_string(), u)).collect();
            if pool.transfer(&t).is_err() {
                let after: Vec<(String, u64)> = pool.holders().map(|(h, u)| (h.to_string(), u)).collect();
                prop_assert_eq!(after, before);
            }
            prop_assert_eq!(pool.holders().map(|(_, u)| u).sum::<u64>(), 500);
            prop_assert_eq!(pool.total_units(), 500);
        }
    }

    #[test]
    fn amount_overflow_is_an_error(a in any::<u64>(), b in any::<u64>()) {
        let (x, y) = (Amount::from_micros(Currency::Usd, a), Amount::from_micros(Currency::Usd, b));
        match (x, y) {
            (Ok(x), Ok(y)) => {
                let r = x.checked_add(y);
                prop_assert_eq!(r.is_ok(), u128::from(a) + u128::from(b) <= u128::from(Amount::MAX_MICROS));
                prop_assert_eq!(x.checked_sub(y).is_ok(), a >= b);
            }
            _ => prop_assert!(a > Amount::MAX_MICROS || b > Amount::MAX_MICROS),
        }
    }

    #[test]
    fn ledger_charge_equals_receipt_charge(p in any::<u32>(), c in any::<u32>(), i in any::<u64>(), o in any::<u64>()) {
        let ours = ModelPrice::per_token(Currency::Usd, i, o).charge(p, c);
        let theirs = proofmesh_receipt::charge_micros(p, c, i, o);
        match ours {
            Ok(a) => prop_assert_eq!(a.micros(), theirs),
            Err(_) => prop_assert!(theirs > Amount::MAX_MICROS),
        }
    }
}
