//! Messages that cross process boundaries: the provider ⇄ coordinator protocol
//! (JSON text frames over a WebSocket the provider dials out on) and the
//! OpenAI-compatible chat types the gateway speaks.
//!
//! Both sides depend on this crate, so the protocol is defined once.

pub mod openai;
pub mod provider;
pub mod zk;

pub use provider::{
    auth_message, fingerprint_bytes, AuditTask, ChatMessage, CoordinatorMsg, EvidenceJson, Gpu,
    Hardware, JobResult, JobSpec, ModelAdvert, PriceRate, ProviderMsg, Site, MAX_FINGERPRINT_BYTES,
    PROTOCOL_VERSION,
};
pub use zk::{
    bundle_matches_receipt, ZkInferRequest, ZkInferResponse, ZkJobResult, ZkJobSpec, ZkModelAdvert,
};
