//! The job pipeline (issue 18): one driver for every kind of job.
//!
//! A job kind (chat, proved inference, and whatever comes next: batch
//! lines, embeddings, fine-tuning) implements [`JobKind`]: what it asks of
//! placement and of escrow, the message that dispatches it, how it reads
//! the provider's events, and how its result is checked. Everything else is
//! the driver's ([`Pipeline::submit`]), written once:
//!
//! 1. escrow through [`crate::money::Money`] (402 / 400 before any row);
//! 2. the job row;
//! 3. attempts: placement with waiting ([`crate::admission`]), the chosen
//!    provider's rate and attestation bound into the spec (the price is
//!    decided there, once), the attempt's route and load through
//!    [`crate::fleet::Fleet`], the deadline, cancellation;
//! 4. retries on another provider while nothing has reached the client,
//!    cooldown of the provider that failed, a penalty for one that cheated;
//! 5. on a checked result: countersign, store job + receipt + evidence in
//!    one transaction, draw the audit (after the commit, so the provider
//!    cannot know), then log and settle (overlapped), record the
//!    idempotent answer, reply;
//! 6. on failure: refund, free the idempotency claim, record why, reply
//!    with a named error.
//!
//! Adding a kind is one module implementing [`JobKind`]; the driver does
//! not change. `tests/pipeline.rs` defines a kind inside the test and runs
//! it end to end with an in-process provider.

mod driver;

pub use driver::{Pipeline, PipelineParts};

use proofmesh_receipt::{AttestationRef, PublicKey, Receipt};
use proofmesh_store::{Evidence, ProofFailure};
use proofmesh_wire::openai::{ChatCompletion, JobTimingExt};
use proofmesh_wire::{CoordinatorMsg, PriceRate};

use crate::error::ApiError;
use crate::idempotency::Idem;
use crate::money::{ChargeBound, Quote};
use crate::registry::{JobEvent, ProviderHandle};
use crate::tokens::CountSource;

/// What the driver knows of every job, whatever its kind.
#[derive(Debug, Clone)]
pub struct JobHead {
    /// Job id (`job_<uuid>`).
    pub job_id: String,
    /// Receipt id (`rcpt_<uuid>`).
    pub receipt_id: String,
    /// Owner.
    pub client_id: String,
    /// Model digest.
    pub model: String,
    /// The model as the client named it (for errors).
    pub model_name: String,
    /// Interactive (TTFT objective), batch (deadline) or fine-tune.
    pub class: proofmesh_placement::WorkloadClass,
    /// The interactive objective is hard: 503 rather than best-effort.
    pub hard_objective: bool,
    /// The least attestation level a provider needs.
    pub min_attestation: proofmesh_placement::AttestationLevel,
    /// When the job was created, unix ms.
    pub created_at_ms: u64,
    /// What the job is escrowed at.
    pub quote: Quote,
    /// The Idempotency-Key claim to record the answer under.
    pub idem: Option<Idem>,
}

/// A job: its head and its kind's spec.
#[derive(Debug, Clone)]
pub struct Job<K> {
    /// What every job has.
    pub head: JobHead,
    /// The kind's own part.
    pub kind: K,
}

/// What placement is asked for one job.
#[derive(Debug, Clone, Copy)]
pub struct Demand {
    /// Prompt tokens (exact, or an upper bound).
    pub prompt_tokens: u32,
    /// How the prompt was counted (None: not a token prompt).
    pub prompt_source: Option<CountSource>,
    /// Completion tokens at most.
    pub max_tokens: u32,
}

/// What one provider event means for the attempt.
#[derive(Debug)]
pub enum Progress<K: JobKind> {
    /// Nothing to do yet.
    Pending,
    /// Forward this to the client now; from here on the job cannot move to
    /// another provider.
    Relay(K::Delta),
    /// The provider's final answer.
    Result(K::Result),
    /// The provider failed; try another (no cancel needed).
    Retry(String),
    /// The provider broke the protocol; cancel it and try another.
    Reject(String),
    /// The job cannot succeed anywhere.
    Fatal(ApiError),
}

/// A result that passed the kind's checks: the receipt to countersign, the
/// evidence to store with it, and what the client gets.
#[derive(Debug)]
pub struct Checked<O> {
    /// The provider-signed receipt.
    pub receipt: Receipt,
    /// Stored for audits and disputes.
    pub evidence: Evidence,
    /// The kind's answer.
    pub output: O,
}

/// Why a result was not accepted.
#[derive(Debug)]
pub enum Rejection {
    /// It disagrees with the job: the provider's fault; retry elsewhere.
    Fault(String),
    /// It carries signed evidence of cheating (a proof that fails): stored,
    /// slashed and counted like a failed audit; retry elsewhere.
    Fraud {
        /// Why.
        why: String,
        /// What is stored as evidence.
        failure: Box<ProofFailure>,
    },
    /// The job cannot succeed anywhere.
    Fatal(ApiError),
}

/// What a kind's check may consult.
#[derive(Debug, Clone, Copy)]
pub struct CheckCtx<'a> {
    /// The provider that answered.
    pub provider: &'a PublicKey,
    /// The coordinator (whose key the receipt must name).
    pub coordinator: &'a PublicKey,
    /// Unix ms now.
    pub now_ms: u64,
}

/// A finished job as its client receives it.
#[derive(Debug)]
pub struct Done<O> {
    /// Countersigned, with its log inclusion when the log took it.
    pub receipt: Receipt,
    /// The kind's answer.
    pub output: O,
    /// Where the time went.
    pub timing: JobTimingExt,
}

/// What the client side of a job receives from the driver.
#[derive(Debug)]
pub enum Event<K: JobKind> {
    /// A piece of the answer, as it is produced.
    Delta(K::Delta),
    /// The answer; nothing more follows.
    Done(Box<Done<K::Output>>),
    /// Failed; nothing more follows.
    Error(ApiError),
}

/// One kind of job the network runs. Every method is pure: the driver does
/// all the I/O.
pub trait JobKind: Send + Sync + Sized + 'static {
    /// What is relayed to the client while the job runs.
    type Delta: Send + 'static + std::fmt::Debug;
    /// A provider's final answer.
    type Result: Send + 'static;
    /// What the client gets at the end, besides the receipt.
    type Output: Send + 'static + std::fmt::Debug;
    /// What an attempt accumulates from the provider's events.
    type Relay: Default + Send + Sync;

    /// The kind's name (logs and metrics).
    const NAME: &'static str;
    /// Whether an attempt's token timings measure the provider's prefill
    /// and decode rates (a proof's time says nothing about them).
    const MEASURES_TOKENS: bool;

    /// The request as the job row keeps it (for audits).
    fn request_json(&self) -> String;
    /// The verification asked for, as the job row keeps it.
    fn verification(&self) -> &str;
    /// The most the job can be charged for.
    fn charge_bound(&self) -> ChargeBound;
    /// The escrow fits `max_completion_tokens`; the spec must carry it.
    fn fit_budget(&mut self, max_completion_tokens: u32);
    /// What placement is asked.
    fn demand(&self) -> Demand;
    /// Whether `p` can run this kind at all (beyond what placement knows).
    fn serves(&self, _p: &ProviderHandle) -> bool {
        true
    }
    /// `p`'s own offer for this job's model.
    fn offer<'a>(&self, p: &'a ProviderHandle) -> Option<&'a PriceRate>;
    /// Binds the spec to the chosen provider: the rate it is dispatched at
    /// and the attestation its receipt carries.
    fn bind(&mut self, rate: PriceRate, attestation: Option<AttestationRef>);
    /// The message that dispatches the job.
    fn dispatch(&self) -> CoordinatorMsg;
    /// What one of the provider's events means.
    fn on_event(&self, relay: &mut Self::Relay, ev: JobEvent) -> Progress<Self>;
    /// Checks the provider's answer against the job and what was relayed.
    fn check(
        &self,
        ctx: CheckCtx<'_>,
        relay: &Self::Relay,
        result: Self::Result,
    ) -> Result<Checked<Self::Output>, Rejection>;
    /// Whether the driver draws an audit for the job after its commit (a
    /// kind whose result carries its own proof needs none).
    fn auditable(&self) -> bool;
    /// The body an Idempotency-Key replay returns, if the kind has one.
    fn replay_body(&self, _done: &Done<Self::Output>) -> Option<ChatCompletion> {
        None
    }
}
