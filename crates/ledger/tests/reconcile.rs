//! Property test of job settlement under every interleaving the coordinator
//! can produce (issue 17): escrow at dispatch; completion, audited or not,
//! with the job driver's completion settlement running late; audit reports,
//! passed or failed, settled before or after that completion settlement;
//! failed jobs; and crashes at any point followed by the recovery sweep.
//!
//! Why here, against the in-memory ledger: the rules that decide what a job
//! still needs ([`reconcile::plan`]) and the transactions for each step
//! ([`build_step`]) are the ones the coordinator's audit handler and recovery
//! sweep run; the test plays the coordinator's three callers (driver, report
//! handler, sweep) around them, exactly as `billing.rs` glues them to the
//! store. After everything is final it asserts: every escrow and hold is
//! zero (also through [`check_job_accounts`]); money is conserved; each
//! completed, not-refunded job's charge is paid exactly once (earnings and
//! fee), each failed audit is refunded and slashed once; and no settlement
//! step is ever refused (the driver and the report handler building the same
//! completion settlement is an idempotent no-op, not a conflict).

use proofmesh_ledger::reconcile::plan;
use proofmesh_ledger::settle::{
    deposit, escrow_at_dispatch, post_stake, settle_completed, settle_failed_job,
};
use proofmesh_ledger::*;
use proptest::prelude::*;

const CLIENTS: [&str; 2] = ["c0", "c1"];
const PROVIDERS: [&str; 2] = ["ed25519:p0", "ed25519:p1"];
const DEPOSIT: u64 = 60_000;
const STAKE: u64 = 1_000_000_000;
const SLASH: u64 = 1_000;
const JOBS: usize = 6;

fn usd(m: u64) -> Amount {
    Amount::from_micros(Currency::Usd, m).unwrap()
}

fn cfg() -> SettlementConfig {
    SettlementConfig {
        protocol_fee_bps: 500,
        slash: SlashRule::Fixed { micros: SLASH },
    }
}

/// One micro-unit per token in and out: escrow = prompt + max_tokens.
fn price() -> ModelPrice {
    ModelPrice::per_token(Currency::Usd, 1_000_000, 1_000_000)
}

/// What the job driver still has to do for a job (lost on a crash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Driver {
    /// Completion settlement from the amount it escrowed.
    Settle { audited: bool },
    /// A reordered driver that settles the hold first and records the audit
    /// after: first the hold...
    HoldThenAudit,
    /// ...then the audit row.
    CreateAudit,
    /// Refund the escrow, then record the failure.
    Fail,
}

#[derive(Debug, Clone)]
struct Job {
    parties: JobParties,
    state: Option<JobState>,
    audit: AuditState,
    escrowed: Amount,
    charge: Amount,
    driver: Option<Driver>,
    /// A stored report whose settlement has not run yet (lost on a crash).
    report_pending: bool,
}

impl Job {
    fn receipt_id(&self) -> String {
        format!("rcpt_{}", self.parties.job_id)
    }
    fn audit_id(&self) -> String {
        format!("aud_{}", self.parties.job_id)
    }
}

#[derive(Debug, Clone)]
enum Op {
    Dispatch {
        job: usize,
        client: usize,
        prompt: u32,
        max_tokens: u32,
    },
    Complete {
        job: usize,
        provider: usize,
        completion: u32,
        audited: bool,
        hold_first: bool,
    },
    Fail {
        job: usize,
    },
    Driver {
        job: usize,
    },
    Report {
        job: usize,
        pass: bool,
    },
    SettleReport {
        job: usize,
    },
    CrashAndRecover,
}

fn op() -> impl Strategy<Value = Op> {
    let j = 0..JOBS;
    prop_oneof![
        3 => (j.clone(), 0..CLIENTS.len(), 1u32..500, 0u32..2_000).prop_map(
            |(job, client, prompt, max_tokens)| Op::Dispatch { job, client, prompt, max_tokens }
        ),
        3 => (j.clone(), 0..PROVIDERS.len(), any::<u32>(), any::<bool>(), prop::bool::weighted(0.2))
            .prop_map(|(job, provider, completion, audited, hold_first)| Op::Complete {
                job, provider, completion, audited, hold_first
            }),
        1 => j.clone().prop_map(|job| Op::Fail { job }),
        3 => j.clone().prop_map(|job| Op::Driver { job }),
        3 => (j.clone(), any::<bool>()).prop_map(|(job, pass)| Op::Report { job, pass }),
        3 => j.prop_map(|job| Op::SettleReport { job }),
        1 => Just(Op::CrashAndRecover),
    ]
}

struct Sim {
    ledger: Ledger,
    jobs: Vec<Job>,
    t: u64,
}

impl Sim {
    fn new() -> Sim {
        let mut ledger = Ledger::new();
        for c in CLIENTS {
            ledger
                .apply(deposit(c, usd(DEPOSIT), &format!("dep-{c}")).unwrap(), 0)
                .unwrap();
        }
        for p in PROVIDERS {
            ledger
                .apply(post_stake(p, usd(STAKE), &format!("stake-{p}")).unwrap(), 0)
                .unwrap();
        }
        let jobs = (0..JOBS)
            .map(|i| Job {
                parties: JobParties {
                    job_id: format!("job{i}"),
                    client: String::new(),
                    provider: String::new(),
                },
                state: None,
                audit: AuditState::NotAudited,
                escrowed: usd(0),
                charge: usd(0),
                driver: None,
                report_pending: false,
            })
            .collect();
        Sim { ledger, jobs, t: 1 }
    }

    /// Applies a settlement step; it must never be refused.
    fn must_apply(&mut self, tx: Transaction, what: &str) {
        self.t += 1;
        if let Err(e) = self.ledger.apply(tx, self.t) {
            panic!("{what} refused: {e}");
        }
    }

    fn balance(&self, a: AccountId) -> Amount {
        usd(u64::try_from(self.ledger.balance(&a, Currency::Usd)).unwrap())
    }

    /// What the coordinator's `settle_audit` and `recover` do for one job:
    /// read the escrow, then the hold, plan, and apply every step.
    fn reconcile(&mut self, i: usize) {
        let job = self.jobs[i].clone();
        let Some(state) = job.state else { return };
        let escrow = self.balance(AccountId::JobEscrow(job.parties.job_id.clone()));
        let hold = self.balance(AccountId::AuditHold(job.parties.job_id.clone()));
        let stake = self.balance(AccountId::ProviderStake(job.parties.provider.clone()));
        let (receipt_id, audit_id) = (job.receipt_id(), job.audit_id());
        let cfg = cfg();
        let inputs = StepInputs {
            job: &job.parties,
            receipt_id: &receipt_id,
            audit_id: (job.audit != AuditState::NotAudited).then_some(audit_id.as_str()),
            charge: job.charge,
            cfg: &cfg,
            pool: None,
            stake,
        };
        for step in plan(state, job.audit, escrow, hold) {
            let s = build_step(step, &inputs).unwrap();
            self.must_apply(s.tx, &format!("{step:?} of {}", job.parties.job_id));
        }
    }

    fn run(&mut self, op: &Op) {
        match *op {
            Op::Dispatch {
                job,
                client,
                prompt,
                max_tokens,
            } => {
                if self.jobs[job].state.is_some() {
                    return;
                }
                let mut parties = self.jobs[job].parties.clone();
                parties.client = CLIENTS[client].into();
                let esc = escrow_at_dispatch(&parties, &price(), prompt, max_tokens, None).unwrap();
                self.t += 1;
                // A client out of credit gets 402: no job.
                if self.ledger.apply(esc.settlement.tx, self.t).is_ok() {
                    let j = &mut self.jobs[job];
                    j.parties = parties;
                    j.state = Some(JobState::Dispatched);
                    j.escrowed = esc.settlement.breakdown.held;
                    j.charge = price().charge(prompt, 0).unwrap();
                }
            }
            Op::Complete {
                job,
                provider,
                completion,
                audited,
                hold_first,
            } => {
                let j = &mut self.jobs[job];
                if j.state != Some(JobState::Dispatched) || j.driver.is_some() {
                    return;
                }
                // The receipt charges prompt + completion, within the escrow.
                let room = j.escrowed.micros() - j.charge.micros();
                j.charge = usd(j.charge.micros() + u64::from(completion) % (room + 1));
                j.parties.provider = PROVIDERS[provider].into();
                j.state = Some(JobState::Completed);
                if hold_first && audited {
                    j.driver = Some(Driver::HoldThenAudit);
                } else {
                    if audited {
                        j.audit = AuditState::Pending;
                    }
                    j.driver = Some(Driver::Settle { audited });
                }
            }
            Op::Fail { job } => {
                let j = &mut self.jobs[job];
                if j.state == Some(JobState::Dispatched) && j.driver.is_none() {
                    j.driver = Some(Driver::Fail);
                }
            }
            Op::Driver { job } => {
                let j = self.jobs[job].clone();
                let Some(d) = j.driver else { return };
                let decision = |audited| {
                    if audited {
                        AuditDecision::Hold
                    } else {
                        AuditDecision::NotAudited
                    }
                };
                match d {
                    Driver::Settle { .. } | Driver::HoldThenAudit => {
                        let audited =
                            matches!(d, Driver::Settle { audited: true } | Driver::HoldThenAudit);
                        // The driver settles from the amount it escrowed.
                        let s = settle_completed(
                            &j.parties,
                            &j.receipt_id(),
                            j.escrowed,
                            j.charge,
                            &cfg(),
                            None,
                            decision(audited),
                        )
                        .unwrap();
                        self.must_apply(s.tx, "the driver's completion settlement");
                        self.jobs[job].driver =
                            (d == Driver::HoldThenAudit).then_some(Driver::CreateAudit);
                    }
                    Driver::CreateAudit => {
                        self.jobs[job].audit = AuditState::Pending;
                        self.jobs[job].driver = None;
                    }
                    Driver::Fail => {
                        let s = settle_failed_job(&j.parties, j.escrowed).unwrap();
                        self.must_apply(s.tx, "the driver's refund");
                        self.jobs[job].state = Some(JobState::Failed);
                        self.jobs[job].driver = None;
                    }
                }
            }
            Op::Report { job, pass } => {
                let j = &mut self.jobs[job];
                if j.audit == AuditState::Pending {
                    j.audit = if pass {
                        AuditState::Passed
                    } else {
                        AuditState::Failed
                    };
                    j.report_pending = true;
                }
            }
            Op::SettleReport { job } => {
                if self.jobs[job].report_pending {
                    self.jobs[job].report_pending = false;
                    self.reconcile(job);
                }
            }
            Op::CrashAndRecover => {
                // In-flight work dies with the process.
                for j in &mut self.jobs {
                    j.driver = None;
                    j.report_pending = false;
                    if j.state == Some(JobState::Dispatched) {
                        j.state = Some(JobState::Failed);
                    }
                }
                for i in 0..JOBS {
                    self.reconcile(i);
                }
            }
        }
    }

    /// Brings every job and audit to a final state without a crash: running
    /// jobs complete or fail, pending work runs in the given order, pending
    /// audits report.
    fn finish(&mut self, endings: &[(bool, bool)], order: &[usize]) {
        for (i, &(complete, pass)) in endings.iter().enumerate() {
            if self.jobs[i].state == Some(JobState::Dispatched) && self.jobs[i].driver.is_none() {
                let op = if complete {
                    Op::Complete {
                        job: i,
                        provider: i % 2,
                        completion: 7,
                        audited: pass,
                        hold_first: false,
                    }
                } else {
                    Op::Fail { job: i }
                };
                self.run(&op);
            }
        }
        for round in 0..3 {
            for &i in order {
                self.run(&Op::Report {
                    job: i,
                    pass: endings[i].1 || round > 0,
                });
                self.run(&Op::SettleReport { job: i });
                self.run(&Op::Driver { job: i });
            }
        }
    }

    /// The job accounts as a store would report them.
    fn job_accounts(&self) -> Vec<JobAccount> {
        let mut out = Vec::new();
        for j in &self.jobs {
            for kind in [JobAccountKind::Escrow, JobAccountKind::Hold] {
                let balance = self
                    .ledger
                    .balance(&kind.account(&j.parties.job_id), Currency::Usd);
                out.push(JobAccount {
                    kind,
                    job_id: j.parties.job_id.clone(),
                    currency: Currency::Usd,
                    balance,
                    job: j.state,
                    audit: j.audit,
                    final_since_ms: None,
                });
            }
        }
        out
    }
}

fn check_final(sim: &Sim) {
    for j in &sim.jobs {
        assert!(
            j.state != Some(JobState::Dispatched) && j.audit != AuditState::Pending,
            "{j:?} is not final"
        );
    }
    let report = check_job_accounts(&sim.job_accounts(), None);
    assert!(report.holds(), "{:#?}", report.violations);
    assert_eq!(report.not_final, 0);
    for j in &sim.jobs {
        for a in [
            AccountId::JobEscrow(j.parties.job_id.clone()),
            AccountId::AuditHold(j.parties.job_id.clone()),
        ] {
            assert_eq!(sim.ledger.balance(&a, Currency::Usd), 0, "{a}");
        }
    }
    // Money is conserved: the books balance, and everything inside the
    // ledger is what came in.
    for (c, total) in sim.ledger.totals() {
        assert_eq!(total, 0, "books do not balance in {c}");
    }
    let came_in = i64::try_from(DEPOSIT * 2 + STAKE * 2).unwrap();
    assert_eq!(
        sim.ledger.balance(&AccountId::External, Currency::Usd),
        -came_in
    );
    // Each paid job's charge is paid once, each refunded one not at all.
    let cfg = cfg();
    let mut client_paid = [0i64; 2];
    let mut earned = [0i64; 2];
    let mut fees = 0i64;
    let mut slashed = [0i64; 2];
    for j in &sim.jobs {
        if j.state != Some(JobState::Completed) {
            continue;
        }
        let p = PROVIDERS
            .iter()
            .position(|p| *p == j.parties.provider)
            .unwrap();
        if j.audit == AuditState::Failed {
            slashed[p] += SLASH as i64;
            continue;
        }
        let c = CLIENTS.iter().position(|c| *c == j.parties.client).unwrap();
        let fee = j.charge.bps_floor(cfg.protocol_fee_bps).unwrap().micros() as i64;
        client_paid[c] += j.charge.micros() as i64;
        earned[p] += j.charge.micros() as i64 - fee;
        fees += fee;
    }
    for (i, c) in CLIENTS.iter().enumerate() {
        let bal = sim
            .ledger
            .balance(&AccountId::Client((*c).into()), Currency::Usd);
        assert_eq!(bal, DEPOSIT as i64 - client_paid[i], "client {c}");
    }
    for (i, p) in PROVIDERS.iter().enumerate() {
        let e = sim
            .ledger
            .balance(&AccountId::ProviderEarnings((*p).into()), Currency::Usd);
        assert_eq!(e, earned[i], "earnings of {p}");
        let s = sim
            .ledger
            .balance(&AccountId::ProviderStake((*p).into()), Currency::Usd);
        assert_eq!(s, STAKE as i64 - slashed[i], "stake of {p}");
    }
    assert_eq!(
        sim.ledger.balance(&AccountId::ProtocolFee, Currency::Usd),
        fees
    );
    assert_eq!(
        sim.ledger.balance(&AccountId::Insurance, Currency::Usd),
        slashed.iter().sum::<i64>()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn every_interleaving_settles_each_job_once(
        ops in prop::collection::vec(op(), 0..60),
        endings in prop::collection::vec((any::<bool>(), any::<bool>()), JOBS),
        order in Just((0..JOBS).collect::<Vec<_>>()).prop_shuffle(),
        crash_at_end in any::<bool>(),
    ) {
        let mut sim = Sim::new();
        for op in &ops {
            sim.run(op);
        }
        if crash_at_end {
            sim.run(&Op::CrashAndRecover);
        }
        sim.finish(&endings, &order);
        check_final(&sim);
        // Once everything is settled, a recovery sweep finds nothing to do.
        let len = sim.ledger.len();
        sim.run(&Op::CrashAndRecover);
        prop_assert_eq!(sim.ledger.len(), len);
    }
}

/// The race of issue 17, spelled out: the verifier's report is settled
/// before the job driver's completion settlement.
#[test]
fn a_report_settled_before_the_completion_settlement_pays_the_provider_once() {
    for pass in [true, false] {
        let mut sim = Sim::new();
        for op in [
            Op::Dispatch {
                job: 0,
                client: 0,
                prompt: 100,
                max_tokens: 400,
            },
            Op::Complete {
                job: 0,
                provider: 0,
                completion: 50,
                audited: true,
                hold_first: false,
            },
            Op::Report { job: 0, pass },
            Op::SettleReport { job: 0 },
        ] {
            sim.run(&op);
        }
        assert_eq!(
            sim.ledger
                .balance(&AccountId::AuditHold("job0".into()), Currency::Usd),
            0
        );
        let earned = sim.ledger.balance(
            &AccountId::ProviderEarnings(PROVIDERS[0].into()),
            Currency::Usd,
        );
        assert_eq!(earned > 0, pass);
        // The driver's late settlement is a no-op, not an error.
        let len = sim.ledger.len();
        sim.run(&Op::Driver { job: 0 });
        assert_eq!(sim.ledger.len(), len);
        check_final(&sim);
    }
}

/// A hold whose audit row was never written (crash between the two) is
/// released as unaudited by the sweep, not left forever.
#[test]
fn a_hold_without_an_audit_is_released_by_the_sweep() {
    let mut sim = Sim::new();
    for op in [
        Op::Dispatch {
            job: 1,
            client: 1,
            prompt: 10,
            max_tokens: 90,
        },
        Op::Complete {
            job: 1,
            provider: 1,
            completion: 30,
            audited: true,
            hold_first: true,
        },
        Op::Driver { job: 1 },
    ] {
        sim.run(&op);
    }
    let hold = AccountId::AuditHold("job1".into());
    assert_eq!(sim.ledger.balance(&hold, Currency::Usd), 40);
    sim.run(&Op::CrashAndRecover);
    assert_eq!(sim.ledger.balance(&hold, Currency::Usd), 0);
    assert_eq!(sim.jobs[1].audit, AuditState::NotAudited);
    check_final(&sim);
}
