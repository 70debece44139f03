//! The money service on its own (issue 18): no socket, no job driver, a
//! test clock. Real SQLite ledger in a temporary directory; every rule that
//! moves a job's money is exercised through `Money` and checked against
//! the ledger's balances.

use std::sync::Arc;

use proofmesh_ambient::clock::{Clock, ManualClock};
use proofmesh_coordinator::idempotency::Idem;
use proofmesh_coordinator::money::{ChargeBound, Money, Quote, StakeRules};
use proofmesh_ledger::{AccountId, Amount, Currency, SettlementConfig, SlashRule};
use proofmesh_receipt::testing::sample_body;
use proofmesh_receipt::{Identity, Receipt};
use proofmesh_settlement::{Bank, BankConfig};
use proofmesh_store::{BillingStore, SqliteStore, Store};
use proofmesh_wire::PriceRate;

struct World {
    _dir: tempfile::TempDir,
    store: SqliteStore,
    money: Money,
    clock: Arc<ManualClock>,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("db.sqlite"))
        .await
        .unwrap();
    let (bank, _task) = Bank::open(Arc::new(store.clone()), BankConfig::default())
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let settlement = SettlementConfig {
        protocol_fee_bps: 1_000,
        slash: SlashRule::Fixed { micros: 50_000 },
    };
    let stake = StakeRules {
        initial_stake_micros: 80_000,
        slash_micros: 50_000,
    };
    let shared: Arc<dyn Store> = Arc::new(store.clone());
    let money = Money::new(bank, shared, settlement, stake, clock.clone());
    World {
        _dir: dir,
        store,
        money,
        clock,
    }
}

fn usd() -> Currency {
    Currency::parse("USD").unwrap()
}

async fn fund(w: &World, client: &str, micros: u64) {
    let amount = Amount::from_micros(usd(), micros).unwrap();
    let tx = proofmesh_ledger::settle::deposit(client, amount, &format!("t-{client}")).unwrap();
    w.money.bank().apply(tx, w.clock.now_ms()).await.unwrap();
}

async fn bal(w: &World, a: AccountId) -> i64 {
    w.money.bank().balance(&a, usd()).await.unwrap()
}

fn rate(input: u64, output: u64) -> PriceRate {
    PriceRate {
        currency: "USD".into(),
        input_per_mtok_micros: input,
        output_per_mtok_micros: output,
    }
}

#[test]
fn the_quote_is_each_rates_ceiling_and_dispatch_takes_the_providers_own() {
    let q = Quote::ceiling([rate(100, 900), rate(300, 200)]);
    assert_eq!(q.rate, rate(300, 900));
    assert_eq!(q.dispatch_rate(Some(&rate(100, 900))), rate(100, 900));
    let eur = PriceRate {
        currency: "EUR".into(),
        ..rate(1, 1)
    };
    assert_eq!(
        q.dispatch_rate(Some(&eur)),
        q.rate,
        "another currency: the quote"
    );
    assert_eq!(Quote::ceiling([]).rate, rate(0, 0));
}

#[tokio::test]
async fn escrow_settle_pays_the_exact_charge_and_refunds_the_rest() {
    let w = world().await;
    fund(&w, "c1", 1_000_000).await;
    let q = Quote::ceiling([rate(1_000_000, 2_000_000)]);
    let bound = ChargeBound {
        prompt_tokens: 16,
        max_completion_tokens: 100,
        max_price_micros: None,
    };
    let e = w.money.escrow("job_1", "c1", &q, bound).await.unwrap();
    assert_eq!(e.held.micros(), 16 + 200, "worst case at the quote");
    assert_eq!(e.max_completion_tokens, 100);
    assert_eq!(
        bal(&w, AccountId::Client("c1".into())).await,
        1_000_000 - 216
    );
    // The receipt charges 16 prompt + 8 completion tokens.
    let p = Identity::from_seed([1; 32]);
    let c = Identity::from_seed([2; 32]);
    let mut body = sample_body(&p, &c, 16, 8);
    body.job_id = "job_1".into();
    body.price.input_per_mtok_micros = 1_000_000;
    body.price.output_per_mtok_micros = 2_000_000;
    body.price.charged_micros = 32;
    let r = Receipt::sign_as_provider(body, &p);
    w.money.settle_completed("c1", &r, e.held, false).await;
    assert_eq!(
        bal(&w, AccountId::Client("c1".into())).await,
        1_000_000 - 32
    );
    assert_eq!(bal(&w, AccountId::JobEscrow("job_1".into())).await, 0);
    let earned = bal(&w, AccountId::ProviderEarnings(p.public().to_string())).await;
    assert_eq!(
        earned,
        32 - 3,
        "minus the 10% protocol fee (3.2, rounded down)"
    );
    // Settling again changes nothing.
    w.money.settle_completed("c1", &r, e.held, false).await;
    assert_eq!(
        bal(&w, AccountId::Client("c1".into())).await,
        1_000_000 - 32
    );
}

#[tokio::test]
async fn a_price_cap_lowers_the_budget_and_a_short_balance_is_402() {
    let w = world().await;
    fund(&w, "c2", 100).await;
    let q = Quote::ceiling([rate(1_000_000, 1_000_000)]);
    let capped = ChargeBound {
        prompt_tokens: 10,
        max_completion_tokens: 1_000,
        max_price_micros: Some(50),
    };
    let e = w.money.escrow("job_2", "c2", &q, capped).await.unwrap();
    assert_eq!(
        e.max_completion_tokens, 40,
        "50 micros = 10 prompt + 40 completion"
    );
    let too_low = ChargeBound {
        max_price_micros: Some(5),
        ..capped
    };
    let err = w
        .money
        .escrow("job_3", "c2", &q, too_low)
        .await
        .unwrap_err();
    assert_eq!(err.code, "invalid_parameter");
    let dear = ChargeBound {
        max_price_micros: None,
        ..capped
    };
    let err = w.money.escrow("job_4", "c2", &q, dear).await.unwrap_err();
    assert_eq!(err.code, "insufficient_balance");
    assert_eq!(
        bal(&w, AccountId::Client("c2".into())).await,
        50,
        "only job_2 is held"
    );
}

#[tokio::test]
async fn a_refund_returns_everything_and_frees_the_idempotency_claim() {
    let w = world().await;
    let c = w
        .store
        .create_api_key(None, "t", 1)
        .await
        .unwrap()
        .client_id;
    fund(&w, &c, 1_000).await;
    let idem = Idem {
        client_id: c.clone(),
        key: "k-1".into(),
    };
    let q = Quote::ceiling([rate(1_000_000, 1_000_000)]);
    let bound = ChargeBound {
        prompt_tokens: 100,
        max_completion_tokens: 100,
        max_price_micros: None,
    };
    let e = w.money.escrow("job_5", &c, &q, bound).await.unwrap();
    let job = proofmesh_store::JobRecord {
        job_id: "job_5".into(),
        receipt_id: "rcpt_5".into(),
        client_id: c.clone(),
        model: "m".into(),
        created_at_ms: w.clock.now_ms(),
        request_json: "[]".into(),
        verification: "sampled".into(),
    };
    w.store.insert_job(&job).await.unwrap();
    let claim = w
        .store
        .idem_claim(&c, "k-1", "hash", "job_5", w.clock.now_ms())
        .await
        .unwrap();
    assert!(matches!(claim, proofmesh_store::IdemClaim::Fresh));
    assert_eq!(bal(&w, AccountId::Client(c.clone())).await, 800);
    w.money
        .refund_failed("job_5", &c, e.held, Some(&idem))
        .await;
    assert_eq!(bal(&w, AccountId::Client(c.clone())).await, 1_000);
    assert_eq!(bal(&w, AccountId::JobEscrow("job_5".into())).await, 0);
    let again = w
        .store
        .idem_claim(&c, "k-1", "hash", "job_5", w.clock.now_ms())
        .await
        .unwrap();
    assert!(
        matches!(again, proofmesh_store::IdemClaim::Fresh),
        "the claim was freed with the refund"
    );
}

#[tokio::test]
async fn stake_is_posted_once_and_a_slash_takes_at_most_what_it_holds() {
    let w = world().await;
    let key = Identity::from_seed([7; 32]).public().to_string();
    w.money.ensure_stake(&key).await;
    w.money.ensure_stake(&key).await;
    assert_eq!(
        w.money.stake(&key, usd()).await.unwrap(),
        80_000,
        "posted once"
    );
    w.money.slash_failed_proof("job_7", &key).await;
    assert_eq!(w.money.stake(&key, usd()).await.unwrap(), 30_000);
    w.money.slash_failed_proof("job_7", &key).await;
    assert_eq!(
        w.money.stake(&key, usd()).await.unwrap(),
        30_000,
        "idempotent per job"
    );
    w.money.slash_failed_proof("job_8", &key).await;
    assert_eq!(
        w.money.stake(&key, usd()).await.unwrap(),
        0,
        "bounded by the stake"
    );
    assert_eq!(bal(&w, AccountId::Insurance).await, 80_000);
}
