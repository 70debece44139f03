//! Prometheus exposition at `/metrics`.
//!
//! The `metrics` facade needs one global recorder per process; it is installed
//! on first use and shared by every coordinator in the process (tests run
//! several).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder if no one has.
pub fn init() {
    HANDLE.get_or_init(|| PrometheusBuilder::new().install_recorder().ok());
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
