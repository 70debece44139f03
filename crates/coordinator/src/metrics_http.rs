//! Prometheus exposition at `/metrics`.
//!
//! The `metrics` facade needs one global recorder per process; it is installed
//! on first use and shared by every coordinator in the process (tests run
//! several). Every metric the service records is described here, so the
//! exposition carries a `# HELP` line for each.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder (and the metric descriptions) if no one has.
pub fn init() {
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new().install_recorder().ok();
        describe();
        handle
    });
}

/// `# HELP` text for every metric the coordinator and its crates record.
fn describe() {
    use metrics::{describe_counter as c, describe_gauge as g, describe_histogram as h};
    c!(
        "proofmesh_attestations_rejected_total",
        "Attestation evidence refused, by reason."
    );
    c!(
        "proofmesh_attestations_verified_total",
        "Attestation evidence verified and admitted."
    );
    c!(
        "proofmesh_audit_reports_rejected_total",
        "Audit reports refused (wrong verifier, unassigned, not verifying)."
    );
    c!(
        "proofmesh_audits_scheduled_total",
        "Jobs chosen for re-execution by a verifier."
    );
    c!(
        "proofmesh_audits_total",
        "Audit reports applied, by outcome."
    );
    c!(
        "proofmesh_http_errors_total",
        "Error responses, by stable error code."
    );
    c!(
        "proofmesh_job_retries_total",
        "Attempts retried on another provider."
    );
    c!(
        "proofmesh_jobs_completed_total",
        "Jobs completed with a countersigned receipt, by kind (chat, zk)."
    );
    c!(
        "proofmesh_jobs_failed_total",
        "Jobs failed without a receipt, by error code."
    );
    c!(
        "proofmesh_ledger_transactions_total",
        "Balanced ledger transactions committed."
    );
    c!(
        "proofmesh_log_commit_failures_total",
        "Transparency-log batches whose commit failed."
    );
    c!(
        "proofmesh_log_entries_total",
        "Entries sequenced into the transparency log."
    );
    c!(
        "proofmesh_log_receipt_failures_total",
        "Receipts stored but not logged (logged at the next start)."
    );
    c!(
        "proofmesh_log_resyncs_total",
        "Times the log sequencer reloaded a store another writer advanced."
    );
    c!("proofmesh_objective_missed_total", "Interactive jobs served best-effort after no provider could meet their TTFT objective in time.");
    c!(
        "proofmesh_results_rejected_total",
        "Provider results that failed the coordinator's checks."
    );
    c!("proofmesh_settlement_failures_total", "Settlement steps not applied (the money stays in escrow or hold for the recovery sweep), by step.");
    c!(
        "proofmesh_tokens_generated_total",
        "Completion tokens in countersigned receipts."
    );
    c!(
        "proofmesh_zk_proofs_failed_total",
        "Zero-knowledge proofs that failed verification."
    );
    g!(
        "proofmesh_jobs_waiting",
        "Jobs waiting for a provider (bounded by queue_max_jobs)."
    );
    g!(
        "proofmesh_log_tree_size",
        "Entries in the published transparency-log tree."
    );
    g!(
        "proofmesh_providers_connected",
        "Provider agents connected now."
    );
    h!("proofmesh_job_finish_seconds", "From a provider's result to the answer: checks, countersigning, storage, settlement and the log.");
    h!(
        "proofmesh_job_seconds",
        "Whole job time, from creation to the answer."
    );
    h!(
        "proofmesh_log_append_seconds",
        "From an append to the commit of the checkpoint covering it."
    );
    h!(
        "proofmesh_provider_rtt_seconds",
        "Round trip of a WebSocket ping to a provider."
    );
}

/// The current exposition text.
pub fn render() -> String {
    init();
    HANDLE
        .get()
        .and_then(|h| h.as_ref())
        .map(|h| h.render())
        .unwrap_or_default()
}
