//! The job pipeline, driven without a socket (issue 18): a job kind defined
//! only in this test ("shout": the provider must answer the prompt in
//! capitals) runs end to end through the shared driver, with in-process
//! providers that read their dispatch messages from a channel and deliver
//! signed receipts through the fleet's routes. No HTTP, no WebSocket: the
//! driver, the fleet, the money and the log are the real services over a
//! real SQLite store in a temporary directory.
//!
//! What the driver must do for a kind it has never seen: escrow at the
//! quote, dispatch at the chosen provider's own rate, relay deltas, retry a
//! provider whose result the kind rejects (and cool it down), countersign,
//! store, log, settle the exact charge, and refund in full when no provider
//! can do the job.

use std::sync::atomic::AtomicU32;
use std::sync::Arc;

use proofmesh_coordinator::fleet::Fleet;
use proofmesh_coordinator::money::{ChargeBound, Quote};
use proofmesh_coordinator::pipeline::{
    CheckCtx, Checked, Demand, Event, Job, JobHead, JobKind, Pipeline, Progress, Rejection,
};
use proofmesh_coordinator::registry::{JobEvent, ProviderHandle};
use proofmesh_coordinator::server::Opened;
use proofmesh_coordinator::CoordinatorConfig;
use proofmesh_ledger::{AccountId, Currency};
use proofmesh_receipt::{
    charge_micros, client_hash, response_digest, Digest, Identity, Price, Receipt, SamplingRecord,
};
use proofmesh_store::Evidence;
use proofmesh_wire::{
    ChatMessage, CoordinatorMsg, Hardware, JobResult, JobSpec, ModelAdvert, PriceRate,
};
use tokio::sync::mpsc;

/// The test kind: a one-message prompt, answered in capitals.
#[derive(Debug, Clone)]
struct Shout {
    spec: JobSpec,
}

impl Shout {
    fn expected(&self) -> String {
        self.spec.messages[0].content.to_uppercase()
    }
}

impl JobKind for Shout {
    type Delta = String;
    type Result = Box<JobResult>;
    type Output = String;
    type Relay = String;

    const NAME: &'static str = "shout";
    const MEASURES_TOKENS: bool = false;

    fn request_json(&self) -> String {
        serde_json::to_string(&self.spec.messages).unwrap()
    }

    fn verification(&self) -> &str {
        "sampled"
    }

    fn charge_bound(&self) -> ChargeBound {
        ChargeBound {
            prompt_tokens: 10,
            max_completion_tokens: self.spec.sampling.max_tokens,
            max_price_micros: None,
        }
    }

    fn fit_budget(&mut self, max_completion_tokens: u32) {
        self.spec.sampling.max_tokens = self.spec.sampling.max_tokens.min(max_completion_tokens);
    }

    fn demand(&self) -> Demand {
        Demand {
            prompt_tokens: 10,
            prompt_source: None,
            max_tokens: self.spec.sampling.max_tokens,
        }
    }

    fn offer<'a>(&self, p: &'a ProviderHandle) -> Option<&'a PriceRate> {
        p.models
            .iter()
            .find(|m| m.digest == self.spec.model)
            .map(|m| &m.price)
    }

    fn bind(&mut self, rate: PriceRate, attestation: Option<proofmesh_receipt::AttestationRef>) {
        self.spec.price = rate;
        self.spec.attestation = attestation;
    }

    fn dispatch(&self) -> CoordinatorMsg {
        CoordinatorMsg::Job(self.spec.clone())
    }

    fn on_event(&self, relay: &mut String, ev: JobEvent) -> Progress<Self> {
        match ev {
            // Relayed only when streaming: once anything reached the
            // client, the job cannot move to another provider.
            JobEvent::Token { text, .. } => {
                relay.push_str(&text);
                if self.spec.stream {
                    Progress::Relay(text)
                } else {
                    Progress::Pending
                }
            }
            JobEvent::Done(r) => Progress::Result(r),
            JobEvent::Failed { code, message } => Progress::Retry(format!("{code}: {message}")),
            JobEvent::ZkDone(_) | JobEvent::ProviderGone => Progress::Reject("unexpected".into()),
        }
    }

    fn check(
        &self,
        ctx: CheckCtx<'_>,
        relay: &String,
        r: Box<JobResult>,
    ) -> Result<Checked<String>, Rejection> {
        let b = &r.receipt.body;
        if &b.provider_key != ctx.provider || r.receipt.verify_provider_signature().is_err() {
            return Err(Rejection::Fault("not signed by the provider".into()));
        }
        if b.price.input_per_mtok_micros != self.spec.price.input_per_mtok_micros {
            return Err(Rejection::Fault("rates are not the dispatched ones".into()));
        }
        if r.text != self.expected() || relay.is_empty() {
            return Err(Rejection::Fault(format!("{:?} is not shouted", r.text)));
        }
        let r = *r;
        Ok(Checked {
            evidence: Evidence {
                completion_token_ids: r.completion_token_ids,
                text: r.text.clone(),
                fingerprint: Vec::new(),
            },
            receipt: r.receipt,
            output: r.text,
        })
    }

    fn auditable(&self) -> bool {
        false
    }
}

const MODEL: &[u8] = b"shout-model";
const INPUT_RATE: u64 = 2_000_000;
const OUTPUT_RATE: u64 = 4_000_000;

/// An in-process provider: answers every dispatch, honestly (in capitals)
/// or not (in lower case), through the fleet's route for the job.
fn provider(
    fleet: &Arc<Fleet>,
    seed: u8,
    honest: bool,
    input_rate: u64,
    coordinator: &Identity,
) -> Arc<ProviderHandle> {
    let id = Identity::from_seed([seed; 32]);
    let (tx, mut rx) = mpsc::channel::<CoordinatorMsg>(16);
    let models = vec![ModelAdvert {
        digest: Digest::of(MODEL),
        name: "shout".into(),
        context_length: 2048,
        price: PriceRate {
            currency: "USD".into(),
            input_per_mtok_micros: input_rate,
            output_per_mtok_micros: OUTPUT_RATE,
        },
        size_bytes: 1 << 20,
    }];
    let hardware = Hardware {
        cpu_model: "test".into(),
        cpu_cores: 4,
        memory_bytes: 8 << 30,
        gpus: Vec::new(),
    };
    let handle = Arc::new(ProviderHandle {
        key: id.public().clone(),
        conn_id: fleet.registry().next_conn_id(),
        tx,
        models: models.clone(),
        zk_models: Vec::new(),
        hardware: hardware.clone(),
        max_concurrent: 4,
        in_flight: AtomicU32::new(0),
        attestation: std::sync::RwLock::new(None),
        pending_nonce: std::sync::Mutex::new(None),
    });
    let claims =
        proofmesh_coordinator::placement::claims(id.public().as_str(), &hardware, &models, 4, None)
            .unwrap();
    fleet
        .connect(handle.clone(), &claims, proofmesh_ambient::clock::now_ms())
        .unwrap();
    let (fleet, key, conn) = (fleet.clone(), id.public().to_string(), handle.conn_id);
    let coord = coordinator.public().clone();
    tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            let CoordinatorMsg::Job(spec) = msg else {
                continue;
            };
            let prompt = &spec.messages[0].content;
            let text = if honest {
                prompt.to_uppercase()
            } else {
                prompt.to_lowercase()
            };
            let ids: Vec<u32> = (0..text.len() as u32).collect();
            for (i, ch) in text.chars().enumerate() {
                let ev = JobEvent::Token {
                    index: i as u32,
                    token_id: i as u32,
                    text: ch.to_string(),
                };
                fleet.registry().deliver(&key, conn, &spec.job_id, ev).await;
            }
            let receipt = sign(&id, &coord, &spec, &ids, &text);
            let result = JobResult {
                receipt,
                completion_token_ids: ids,
                text,
                fingerprint: String::new(),
            };
            let ev = JobEvent::Done(Box::new(result));
            fleet.registry().deliver(&key, conn, &spec.job_id, ev).await;
        }
    });
    handle
}

fn sign(
    id: &Identity,
    coord: &proofmesh_receipt::PublicKey,
    spec: &JobSpec,
    ids: &[u32],
    text: &str,
) -> Receipt {
    let completion = ids.len() as u32;
    let mut body =
        proofmesh_receipt::testing::sample_body(id, &Identity::from_seed([9; 32]), 10, completion);
    body.coordinator_key = coord.clone();
    body.receipt_id = spec.receipt_id.clone();
    body.job_id = spec.job_id.clone();
    body.client = spec.client.clone();
    body.model = spec.model.clone();
    body.request_digest = spec.request_digest();
    body.response_digest = response_digest(ids, text, "stop");
    body.sampling = spec.sampling.clone();
    body.dispatched_at_ms = spec.dispatched_at_ms;
    body.price = Price {
        currency: spec.price.currency.clone(),
        input_per_mtok_micros: spec.price.input_per_mtok_micros,
        output_per_mtok_micros: spec.price.output_per_mtok_micros,
        charged_micros: charge_micros(
            10,
            completion,
            spec.price.input_per_mtok_micros,
            spec.price.output_per_mtok_micros,
        ),
    };
    Receipt::sign_as_provider(body, id)
}

async fn open() -> (tempfile::TempDir, Opened) {
    let dir = tempfile::tempdir().unwrap();
    let config = CoordinatorConfig {
        data_dir: dir.path().to_path_buf(),
        request_timeout_s: 10,
        ..CoordinatorConfig::default()
    };
    let opened = proofmesh_coordinator::server::open(config, proofmesh_ambient::clock::system())
        .await
        .unwrap();
    (dir, opened)
}

/// A client with `micros` USD.
async fn client(p: &Opened, micros: u64) -> String {
    let k = p.app.store.create_api_key(None, "t", 1).await.unwrap();
    let usd = Currency::parse("USD").unwrap();
    let amount = proofmesh_ledger::Amount::from_micros(usd, micros).unwrap();
    let tx = proofmesh_ledger::settle::deposit(&k.client_id, amount, "t-1").unwrap();
    p.app.money.bank().apply(tx, 1).await.unwrap();
    k.client_id
}

async fn balance(p: &Opened, account: AccountId) -> i64 {
    let usd = Currency::parse("USD").unwrap();
    p.app.money.bank().balance(&account, usd).await.unwrap()
}

fn job(p: &Pipeline, client_id: &str, prompt: &str) -> Job<Shout> {
    let uuid = uuid::Uuid::new_v4().simple().to_string();
    let digest = Digest::of(MODEL);
    let quote = Quote::ceiling(p.fleet().chat_offers(digest.as_str()));
    let spec = JobSpec {
        job_id: format!("job_{uuid}"),
        receipt_id: format!("rcpt_{uuid}"),
        client: client_hash(client_id),
        model: digest.clone(),
        messages: vec![ChatMessage {
            role: "user".into(),
            content: prompt.into(),
        }],
        sampling: SamplingRecord {
            temperature_milli: 0,
            top_p_milli: 1000,
            seed: 1,
            max_tokens: 64,
            stop: Vec::new(),
            top_k_logits: 0,
        },
        dispatched_at_ms: proofmesh_ambient::clock::now_ms(),
        price: quote.rate.clone(),
        stream: true,
        attestation: None,
    };
    Job {
        head: JobHead {
            job_id: spec.job_id.clone(),
            receipt_id: spec.receipt_id.clone(),
            client_id: client_id.into(),
            model: digest.to_string(),
            model_name: "shout".into(),
            class: proofmesh_placement::WorkloadClass::Batch { deadline_ms: 5_000 },
            hard_objective: false,
            min_attestation: Default::default(),
            created_at_ms: spec.dispatched_at_ms,
            quote,
            idem: None,
        },
        kind: Shout { spec },
    }
}

/// Runs a job to its end: the deltas, then the answer or the error.
async fn run(
    p: &Pipeline,
    job: Job<Shout>,
) -> (
    String,
    Result<proofmesh_coordinator::pipeline::Done<String>, String>,
) {
    let mut rx = p.submit(job).await.expect("submitted");
    let mut deltas = String::new();
    while let Some(ev) = rx.recv().await {
        match ev {
            Event::Delta(d) => deltas.push_str(&d),
            Event::Done(d) => return (deltas, Ok(*d)),
            Event::Error(e) => return (deltas, Err(e.code.to_string())),
        }
    }
    panic!("driver ended without an answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_defined_in_a_test_runs_end_to_end_through_the_driver() {
    let (_dir, opened) = open().await;
    let app = &opened.app;
    // Two providers; the cheaper one is honest.
    provider(&app.fleet, 11, true, INPUT_RATE, &app.identity);
    provider(&app.fleet, 12, true, INPUT_RATE * 3, &app.identity);
    let client_id = client(&opened, 1_000_000).await;
    let (deltas, done) = run(
        &app.pipeline,
        job(&app.pipeline, &client_id, "hello pipeline"),
    )
    .await;
    let done = done.expect("the job completes");
    assert_eq!(done.output, "HELLO PIPELINE");
    assert_eq!(
        deltas, "HELLO PIPELINE",
        "every delta was relayed, in order"
    );
    let r = &done.receipt;
    r.verify_coordinator_signature()
        .expect("countersigned by the coordinator");
    assert_eq!(r.body.coordinator_key, *app.identity.public());
    assert!(r.log.is_some(), "the receipt is in the transparency log");
    // Stored, with its owner.
    let stored = app
        .store
        .get_receipt(&r.body.receipt_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.client_id, client_id);
    // Charged exactly the receipt's charge: escrow released, rest refunded.
    let charged = r.body.price.charged_micros as i64;
    assert!(charged > 0);
    assert_eq!(
        balance(&opened, AccountId::Client(client_id.clone())).await,
        1_000_000 - charged
    );
    assert_eq!(
        balance(&opened, AccountId::JobEscrow(r.body.job_id.clone())).await,
        0
    );
    let status = app.store.job_status(&r.body.job_id).await.unwrap().unwrap();
    assert_eq!(status.status, "completed");
    opened.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_result_is_retried_on_another_provider_at_its_own_rate() {
    let (_dir, opened) = open().await;
    let app = &opened.app;
    // The liar is cheaper, so placement picks it first.
    let liar = provider(&app.fleet, 21, false, INPUT_RATE, &app.identity);
    let honest = provider(&app.fleet, 22, true, INPUT_RATE * 2, &app.identity);
    let client_id = client(&opened, 1_000_000).await;
    let mut j = job(&app.pipeline, &client_id, "abc");
    j.kind.spec.stream = false;
    let (_, done) = run(&app.pipeline, j).await;
    let done = done.expect("the honest provider completes it");
    assert_eq!(done.receipt.body.provider_key, honest.key);
    assert_eq!(
        done.receipt.body.price.input_per_mtok_micros,
        INPUT_RATE * 2,
        "dispatched at the provider's own rate"
    );
    let status = app
        .store
        .job_status(&done.receipt.body.job_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.attempts, 2, "the liar was tried first");
    assert_ne!(liar.key, honest.key);
    let charged = done.receipt.body.price.charged_micros as i64;
    assert_eq!(
        balance(&opened, AccountId::Client(client_id)).await,
        1_000_000 - charged
    );
    opened.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_no_provider_can_do_is_refunded_in_full_with_a_named_error() {
    let (_dir, opened) = open().await;
    let app = &opened.app;
    provider(&app.fleet, 31, false, INPUT_RATE, &app.identity);
    let client_id = client(&opened, 1_000_000).await;
    let j = job(&app.pipeline, &client_id, "xyz");
    let job_id = j.head.job_id.clone();
    let (_, done) = run(&app.pipeline, j).await;
    let code = done.expect_err("no honest provider: the job fails");
    assert!(
        code == "provider_failed" || code == "deadline_unmet" || code == "no_provider",
        "named error, got {code}"
    );
    assert_eq!(
        balance(&opened, AccountId::Client(client_id)).await,
        1_000_000
    );
    assert_eq!(
        balance(&opened, AccountId::JobEscrow(job_id.clone())).await,
        0
    );
    let status = app.store.job_status(&job_id).await.unwrap().unwrap();
    assert_eq!(status.status, "failed");
    opened.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_cannot_pay_is_refused_before_any_job_row() {
    let (_dir, opened) = open().await;
    let app = &opened.app;
    provider(&app.fleet, 41, true, INPUT_RATE, &app.identity);
    let client_id = client(&opened, 1).await;
    let j = job(&app.pipeline, &client_id, "too dear");
    let job_id = j.head.job_id.clone();
    let err = app.pipeline.submit(j).await.expect_err("402");
    assert_eq!(err.code, "insufficient_balance");
    assert!(app.store.job_status(&job_id).await.unwrap().is_none());
    assert_eq!(balance(&opened, AccountId::Client(client_id)).await, 1);
    opened.close().await;
}
