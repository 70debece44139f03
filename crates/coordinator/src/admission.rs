//! Admission: a job that no provider can take right now waits for one
//! instead of being refused.
//!
//! Why: a refusal is only honest when waiting cannot help. Providers that
//! are busy, cooling down, or estimated too slow for a time-to-first-token
//! (TTFT) objective free up within seconds, and a client that is told 503
//! retries blindly. So placement failures are split in two
//! ([`proofmesh_placement::RejectionKind::is_transient`]): ones that lift by
//! waiting (capacity, cooldown, TTFT objective, batch deadline) make the job
//! wait; the rest (no provider for the model, attestation, price cap) are
//! answered at once, naming what was missing.
//!
//! Policy, per workload class:
//! - interactive (default, soft objective): first the objective as asked;
//!   then idle providers whose throughput estimate is stale are probed
//!   ([`proofmesh_placement::Request::probe_stale`]), so a bad estimate
//!   corrects itself; after `interactive_wait_ms` the job is served
//!   best-effort by the best provider with room (the missed objective is
//!   recorded in the job's placement record, the response's
//!   `proofmesh.timing` and `proofmesh_objective_missed_total`), waiting for
//!   room until the request's deadline;
//! - interactive with `;hard`: 503 `ttft_objective_unmet` after
//!   `interactive_wait_ms`;
//! - batch and fine-tune: wait until their own deadline (bounded by the
//!   request's), then 503 `deadline_unmet`.
//!
//! At most `queue_max_jobs` jobs wait at once; one more gets 429
//! `queue_full`. Every refusal carries the model as the client named it, the
//! job id, what was missing in words, and `Retry-After`. A job that ends
//! wakes the longest-waiting job (FIFO, so a burst is served in order
//! without waking every waiter for each freed slot); a provider that
//! connects wakes them all ([`crate::registry::Registry::capacity`]); every
//! waiter also re-checks at least every [`RECHECK`] (cooldowns end,
//! estimates age, a wake-up went to a job that could not use the slot).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use proofmesh_placement::{self as pl, PlacementError, WorkloadClass};
use tokio::time::Instant;

use crate::error::ApiError;
use crate::pipeline::Pipeline;
use crate::registry::ProviderHandle;

/// A waiting job re-tries placement at least this often.
pub const RECHECK: Duration = Duration::from_millis(250);

/// Counts the jobs waiting for a provider, against a bound.
#[derive(Debug)]
pub struct Admission {
    waiting: AtomicUsize,
    max: usize,
}

/// One job's place in the wait; leaving drops it.
#[derive(Debug)]
pub struct Waiting<'a>(&'a Admission);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let now = self.0.waiting.fetch_sub(1, Ordering::AcqRel) - 1;
        metrics::gauge!("proofmesh_jobs_waiting").set(now as f64);
    }
}

impl Admission {
    /// At most `max` jobs wait at once.
    pub fn new(max: usize) -> Admission {
        Admission {
            waiting: AtomicUsize::new(0),
            max,
        }
    }

    /// Jobs waiting now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Takes a place in the wait, or `Err(waiting)` when it is full.
    pub fn enter(&self) -> Result<Waiting<'_>, usize> {
        let mut cur = self.waiting.load(Ordering::Acquire);
        loop {
            if cur >= self.max {
                return Err(cur);
            }
            match self.waiting.compare_exchange_weak(
                cur,
                cur + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    metrics::gauge!("proofmesh_jobs_waiting").set((cur + 1) as f64);
                    return Ok(Waiting(self));
                }
                Err(now) => cur = now,
            }
        }
    }
}

/// What placement needs to know about one attempt of a job.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlaceFor<'a> {
    /// The job (its decisions are recorded under it).
    pub job_id: &'a str,
    /// Model digest.
    pub model: &'a str,
    /// The model as the client named it (for errors).
    pub model_name: &'a str,
    /// Workload class.
    pub class: WorkloadClass,
    /// The client made the interactive objective hard (`;hard`).
    pub hard: bool,
    /// Prompt tokens (exact, or an upper bound).
    pub prompt_tokens: u32,
    /// How the prompt was counted (None: not a token prompt, e.g. a proof).
    pub prompt_source: Option<crate::tokens::CountSource>,
    /// Completion tokens at most.
    pub max_tokens: u32,
    /// The least attestation level accepted.
    pub min_attestation: pl::AttestationLevel,
}

/// How a job was placed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Every filter as asked.
    #[default]
    AsAsked,
    /// As asked, but stale-estimate idle providers are probed.
    Probe,
    /// The TTFT objective filters nothing.
    BestEffort,
}

/// A provider for the attempt, and how it was found.
#[derive(Debug)]
pub(crate) struct Placed {
    /// Where the attempt goes.
    pub provider: Arc<ProviderHandle>,
    /// How placement was asked.
    pub mode: Mode,
}

/// Why an attempt found no provider.
enum Unplaced {
    /// Waiting may help; what was missing, in words.
    Transient(String),
    /// Waiting cannot help.
    Final(ApiError),
}

impl PlaceFor<'_> {
    /// The error when no provider could be placed after trying `tried`.
    fn unplaced(&self, tried: &[String], missing: Option<String>) -> ApiError {
        let e = if tried.is_empty() && self.min_attestation > Default::default() {
            ApiError::no_attested_provider(
                self.model_name,
                crate::attestation::level_name(self.min_attestation),
            )
        } else if !tried.is_empty() {
            ApiError::provider_failed(tried.len() as u32)
        } else if let Some(m) = missing {
            ApiError::no_provider_because(self.model_name, &m)
        } else {
            ApiError::no_provider(self.model_name)
        };
        e.for_job(self.job_id).for_model(self.model_name)
    }

    /// The class as placement sees it `waited` into the job: a batch
    /// deadline is what is left of it.
    fn class_now(&self, waited: Duration) -> WorkloadClass {
        match self.class {
            WorkloadClass::Batch { deadline_ms } => WorkloadClass::Batch {
                deadline_ms: deadline_ms.saturating_sub(waited.as_millis() as u64).max(1),
            },
            c => c,
        }
    }
}

/// Finds a provider for the next attempt of a job, waiting (bounded by
/// `deadline` and the class's own limits) while only transient reasons stand
/// in the way. See the module doc for the policy.
pub(crate) async fn place_or_wait(
    app: &Pipeline,
    what: &PlaceFor<'_>,
    tried: &[String],
    deadline: Instant,
) -> Result<Placed, ApiError> {
    let start = Instant::now();
    let slo_ms = match what.class {
        WorkloadClass::Interactive { ttft_slo_ms } => Some(ttft_slo_ms),
        _ => None,
    };
    let interactive = slo_ms.is_some();
    let objective_until = start + Duration::from_millis(app.config.interactive_wait_ms);
    let request_deadline = deadline;
    let deadline = match what.class {
        WorkloadClass::Batch { deadline_ms } => {
            deadline.min(start + Duration::from_millis(deadline_ms))
        }
        _ => deadline,
    };
    let mut ticket = None;
    let mut best_effort = false;
    let mut recorded = false;
    loop {
        // Registered before placing, so a wake-up in between is not lost.
        let woken = app.fleet.registry().capacity.notified();
        let modes: &[Mode] = match (interactive, best_effort) {
            (true, false) => &[Mode::AsAsked, Mode::Probe],
            (true, true) => &[Mode::BestEffort],
            (false, _) => &[Mode::AsAsked],
        };
        let mut missing = String::new();
        for &mode in modes {
            let class = what.class_now(start.elapsed());
            match place(app, what, class, mode, tried, !recorded).await {
                Ok(provider) => {
                    if mode == Mode::BestEffort {
                        metrics::counter!("proofmesh_objective_missed_total").increment(1);
                    }
                    return Ok(Placed { provider, mode });
                }
                Err(Unplaced::Final(e)) => return Err(e),
                Err(Unplaced::Transient(m)) => missing = m,
            }
        }
        recorded = true;
        if ticket.is_none() {
            match app.fleet.admission().enter() {
                Ok(t) => ticket = Some(t),
                Err(waiting) => {
                    return Err(ApiError::queue_full(what.model_name, waiting)
                        .for_job(what.job_id)
                        .retry_after(retry_after_s(app)))
                }
            }
        }
        let now = Instant::now();
        if let Some(ttft_slo_ms) = slo_ms.filter(|_| !best_effort && now >= objective_until) {
            if what.hard {
                let waited = now.duration_since(start).as_millis() as u64;
                return Err(ApiError::objective_unmet(
                    what.model_name,
                    ttft_slo_ms,
                    waited,
                    &missing,
                )
                .for_job(what.job_id)
                .retry_after(retry_after_s(app)));
            }
            tracing::info!(job_id = what.job_id, %missing, "serving best-effort: objective missed");
            best_effort = true;
            continue;
        }
        if now >= deadline {
            let e = if interactive || deadline >= request_deadline {
                // The request's own time ran out first.
                let waited = now.duration_since(start).as_millis();
                let m = format!("{missing} (waited {waited} ms, the request's whole time)");
                ApiError::no_provider_because(what.model_name, &m)
            } else {
                ApiError::deadline_unmet(what.model_name, &missing)
            };
            return Err(e.for_job(what.job_id).retry_after(retry_after_s(app)));
        }
        let mut next = (now + RECHECK).min(deadline);
        if interactive && !best_effort {
            next = next.min(objective_until);
        }
        tokio::select! {
            _ = woken => {}
            _ = tokio::time::sleep_until(next) => {}
        }
    }
}

/// A retry hint, seconds: one per job waiting per live provider slot,
/// at least 1.
fn retry_after_s(app: &Pipeline) -> u64 {
    let slots: u64 = app
        .fleet
        .registry()
        .live()
        .iter()
        .map(|p| u64::from(p.max_concurrent))
        .sum();
    1 + app.fleet.admission().waiting() as u64 / slots.max(1)
}

/// Asks the placement policy where this attempt goes (excluding providers
/// already tried), records the decision for `proofmesh explain` (a failed
/// one with the full evaluation, once per wait), and returns the first live
/// provider in its failover order.
async fn place(
    app: &Pipeline,
    what: &PlaceFor<'_>,
    class: WorkloadClass,
    mode: Mode,
    tried: &[String],
    record_failure: bool,
) -> Result<Arc<ProviderHandle>, Unplaced> {
    let mut req = pl::Request::new(
        what.model,
        class,
        what.prompt_tokens,
        what.max_tokens,
        app.clock.now_ms(),
    );
    req.min_attestation = what.min_attestation;
    req.probe_stale = mode == Mode::Probe;
    req.best_effort = mode == Mode::BestEffort;
    let decision = app.fleet.placer().place(&req, tried);
    let attempt = tried.len() + 1;
    let record = match &decision {
        Ok(p) => Some(serde_json::json!({
            "attempt": attempt, "class": class, "mode": mode_name(mode),
            "prompt_tokens": what.prompt_tokens, "prompt_counted_by": what.prompt_source,
            "objective_missed": mode == Mode::BestEffort, "placement": p,
        })),
        Err((e, explanation)) if record_failure => Some(serde_json::json!({
            "attempt": attempt, "class": class, "mode": mode_name(mode),
            "prompt_tokens": what.prompt_tokens, "prompt_counted_by": what.prompt_source,
            "error": e.to_string(), "explanation": explanation,
        })),
        Err(_) => None,
    };
    if let Some(record) = record {
        if let Err(e) = app
            .store
            .record_placement(what.job_id, &record.to_string())
            .await
        {
            tracing::error!(%e, "record placement");
        }
    }
    match decision {
        Ok(placement) => {
            if let Some(p) = placement
                .failover_order()
                .find_map(|id| app.fleet.registry().live_provider(&id.0))
            {
                return Ok(p);
            }
            // Placement only knows connected providers, so the ones it chose
            // were excluded after failed audits (final), or disconnected a
            // moment ago (placement forgets them next).
            if placement
                .failover_order()
                .all(|id| app.fleet.registry().is_excluded(&id.0))
            {
                Err(Unplaced::Final(what.unplaced(
                    tried,
                    Some(
                        "every provider that could take it is excluded after failed audits".into(),
                    ),
                )))
            } else {
                Err(Unplaced::Transient(
                    "the providers chosen for it just disconnected".into(),
                ))
            }
        }
        // Some provider is held back only by what waiting can lift.
        Err((PlacementError::NoFeasibleProvider { rejections, .. }, Some(exp)))
            if exp.waitable() > 0 =>
        {
            Err(Unplaced::Transient(rejections.describe()))
        }
        Err((PlacementError::NoFeasibleProvider { rejections, .. }, _)) => Err(Unplaced::Final(
            what.unplaced(tried, Some(rejections.describe())),
        )),
        Err((PlacementError::UnknownModel { .. }, _)) => {
            Err(Unplaced::Final(what.unplaced(tried, None)))
        }
        Err((e, _)) => {
            tracing::info!(job_id = %what.job_id, reason = %e, "no placement");
            Err(Unplaced::Final(what.unplaced(tried, Some(e.to_string()))))
        }
    }
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::AsAsked => "as_asked",
        Mode::Probe => "probe_stale",
        Mode::BestEffort => "best_effort",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_is_bounded_and_released_on_drop() {
        let a = Admission::new(2);
        let one = a.enter().unwrap();
        let two = a.enter().unwrap();
        assert_eq!(a.enter().unwrap_err(), 2);
        drop(one);
        assert_eq!(a.waiting(), 1);
        let _three = a.enter().unwrap();
        drop(two);
        assert_eq!(a.waiting(), 1);
    }
}
