//! One module per subcommand.

pub mod attest;
pub mod bench;
pub mod billing;
pub mod chat;
pub mod coordinator;
pub mod covenant;
pub mod keys;
pub mod log;
pub mod plan;
pub mod pool;
pub mod provider;
pub mod providers;
pub mod receipt;
pub mod up;
pub mod witness;
pub mod zk;
pub mod zk_infer;
