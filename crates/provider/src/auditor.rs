//! The verifier's work: re-execute one audited job and sign a report.
//!
//! Before re-running anything it checks that the evidence the coordinator
//! handed over is the evidence the receipt commits to (request, response and
//! fingerprint digests), so a verdict is always about what the provider
//! actually signed. Then one prefill pass checks every sampled token and every
//! fingerprint entry (`proofmesh_verify::verify_job`).

use proofmesh_engine::Engine;
use proofmesh_receipt::{
    receipt_body_digest, request_digest, response_digest, AuditBody, AuditOutcome, AuditReport,
    Digest, Identity, RequestForDigest, AUDIT_VERSION,
};
use proofmesh_verify::{prompt_tokens_for, verify_job, JobUnderAudit, Sampling};
use proofmesh_wire::{fingerprint_bytes, AuditTask};

/// Checks evidence against the receipt; `Err(reason)` if they disagree.
fn check_evidence(engine: &Engine, task: &AuditTask, fp: &[u8]) -> Result<(), String> {
    let b = &task.receipt.body;
    if b.model.as_str() != engine.model_digest() {
        return Err(format!(
            "verifier has model {}, receipt names {}",
            engine.model_digest(),
            b.model
        ));
    }
    // Recompute the request digest from the conversation we were given.
    let messages: Vec<(&str, &str)> = task
        .messages
        .iter()
        .map(|m| (m.role.as_str(), m.content.as_str()))
        .collect();
    let request = RequestForDigest {
        model: &b.model,
        messages: &messages,
        sampling: &b.sampling,
    };
    if request_digest(request) != b.request_digest {
        return Err("evidence: conversation does not match the receipt's request_digest".into());
    }
    if response_digest(&task.completion_token_ids, &task.text, &b.finish_reason)
        != b.response_digest
    {
        return Err("evidence: completion does not match the receipt's response_digest".into());
    }
    if Digest::of(fp) != b.logits_digest {
        return Err("evidence: fingerprint does not match the receipt's logits_digest".into());
    }
    Ok(())
}

/// Runs the audit; returns (outcome, reason, positions checked).
fn run_checks(engine: &Engine, task: &AuditTask) -> (AuditOutcome, String, u32) {
    let fp = match fingerprint_bytes(&task.fingerprint) {
        Ok(b) => b,
        Err(e) => return (AuditOutcome::Failed, format!("fingerprint: {e}"), 0),
    };
    if let Err(why) = check_evidence(engine, task, &fp) {
        return (AuditOutcome::Failed, why, 0);
    }
    let messages = crate::runner::engine_messages(&task.messages);
    let prompt_tokens = match prompt_tokens_for(engine, &messages) {
        Ok(t) => t,
        Err(e) => return (AuditOutcome::Failed, format!("prompt: {e}"), 0),
    };
    let s = &task.receipt.body.sampling;
    let job = JobUnderAudit {
        prompt_tokens,
        completion_tokens: task.completion_token_ids.clone(),
        finish_reason: task.receipt.body.finish_reason.clone(),
        sampling: Sampling {
            temperature: s.temperature(),
            top_p: s.top_p(),
            seed: s.seed,
            max_tokens: s.max_tokens,
            stop: s.stop.clone(),
        },
        fingerprint: fp,
        text: task.text.clone(),
    };
    match verify_job(engine, &job) {
        Ok(v) if v.passed => (
            AuditOutcome::Passed,
            String::new(),
            v.positions_checked as u32,
        ),
        Ok(v) => {
            let reason = v
                .first_failure()
                .map(|f| match f.position {
                    Some(p) => format!("{:?} at position {p}: {}", f.kind, f.detail),
                    None => format!("{:?}: {}", f.kind, f.detail),
                })
                .unwrap_or_else(|| "failed".into());
            (AuditOutcome::Failed, reason, v.positions_checked as u32)
        }
        Err(e) => (
            AuditOutcome::Failed,
            format!("re-execution rejected the job: {e}"),
            0,
        ),
    }
}

/// Re-executes `task` and signs the report as `verifier`.
pub fn audit(engine: &Engine, verifier: &Identity, task: &AuditTask) -> AuditReport {
    let (outcome, reason, positions_checked) = run_checks(engine, task);
    let body = AuditBody {
        version: AUDIT_VERSION,
        audit_id: task.audit_id.clone(),
        receipt_id: task.receipt.body.receipt_id.clone(),
        receipt_digest: receipt_body_digest(&task.receipt.body),
        verifier_key: verifier.public().clone(),
        outcome,
        reason,
        positions_checked,
        checked_at_ms: proofmesh_ambient::clock::now_ms(),
    };
    AuditReport::sign(body, verifier)
}
