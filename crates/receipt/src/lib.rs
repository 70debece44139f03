//! Identities, digests and signed receipts: the part of proofmesh that anyone
//! can check offline with nothing but public keys.
//!
//! A [`Receipt`] says which provider ran which model on which request, what it
//! answered, how it sampled, and what it charged. The provider signs it and the
//! coordinator countersigns it, both over the deterministic encoding defined in
//! [`canon`] (documented in `docs/RECEIPTS.md`).

pub mod audit;
pub mod canon;
pub mod digest;
pub mod identity;
pub mod receipt;
#[doc(hidden)]
pub mod testing;
pub mod zk;

pub use audit::{
    receipt_body_digest, AuditBody, AuditError, AuditOutcome, AuditReport, AUDIT_VERSION,
};
pub use digest::{client_hash, request_digest, response_digest, Digest, RequestForDigest};
pub use identity::{Identity, IdentityError, PublicKey, Signature};
pub use receipt::{
    charge_micros, token_cost, AttestationRef, Guarantee, LogInclusion, Price, Receipt,
    ReceiptBody, ReceiptError, SamplingRecord, VerifiedReceipt,
};
pub use zk::ZkRef;
