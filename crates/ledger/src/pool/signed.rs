//! Signed pool documents: the provider-signed charter that creates a pool,
//! holder-signed unit transfers, and coordinator-signed distributions.
//!
//! Why: units are the tokenized revenue share, so who holds them must not
//! rest on the coordinator's word. A pool exists only as its provider signed
//! it (its Ed25519 key assigns `share_bps` of its earnings), units move only
//! when their holder signs (holders are Ed25519 keys, `ed25519:<hex>`), and
//! each epoch's payout is a coordinator-signed [`Distribution`]. All three
//! are logged, so anyone holding the log replays every pool: charter, then
//! transfers in log order, then checks each distribution against the units
//! held at that point with [`crate::distribute`].
//!
//! Each document signs a canonical encoding (`proofmesh_receipt::canon`)
//! under its own domain string, so a signature over one kind can never be
//! read as another.

use proofmesh_receipt::canon::Encoder;
use proofmesh_receipt::{Identity, PublicKey, Signature};
use serde::{Deserialize, Serialize};

use super::{distribute, Distribution, PoolError, RevenuePool, UnitTransfer};
use crate::epoch::Epoch;
use crate::money::{Amount, Currency};

/// Version of every signed pool document.
pub const POOL_DOC_VERSION: u32 = 1;
const CHARTER_DOMAIN: &str = "proofmesh/pool-charter/v1";
const TRANSFER_DOMAIN: &str = "proofmesh/pool-transfer/v1";
const DISTRIBUTION_SIG_DOMAIN: &str = "proofmesh/pool-distribution-signed/v1";

/// Why a signed pool document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolDocError {
    /// The version is not [`POOL_DOC_VERSION`].
    #[error("pool document version {found} is not supported")]
    Version {
        /// Version found.
        found: u32,
    },
    /// The signature does not verify under the named key.
    #[error("{what} signature does not verify under {key}")]
    BadSignature {
        /// "charter", "transfer" or "distribution".
        what: &'static str,
        /// The key it should verify under.
        key: String,
    },
    /// The signer is not who the document says must sign.
    #[error("{what} must be signed by {expected}, not {signer}")]
    WrongSigner {
        /// Document kind.
        what: &'static str,
        /// Required signer.
        expected: String,
        /// Actual signer.
        signer: String,
    },
    /// A holder id is not an Ed25519 key, so it could never sign a transfer.
    #[error("holder {holder:?} is not an ed25519:<hex> key")]
    HolderNotKey {
        /// The id.
        holder: String,
    },
    /// The document's content breaks a pool rule.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// A distribution does not match the pool it claims to pay.
    #[error("distribution of pool {pool} for {epoch} does not match the pool's units")]
    Mismatch {
        /// Pool.
        pool: String,
        /// Epoch.
        epoch: Epoch,
    },
}

/// One holder's initial units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allocation {
    /// Holder key, `ed25519:<hex>`.
    pub holder: String,
    /// Units.
    pub units: u64,
}

/// What a provider signs to create a pool of its earnings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolCharter {
    /// [`POOL_DOC_VERSION`].
    pub version: u32,
    /// Pool id.
    pub pool: String,
    /// The provider whose post-fee earnings feed the pool (the signer).
    pub provider: PublicKey,
    /// Share of each release assigned to the pool, basis points.
    pub share_bps: u32,
    /// The pool's currency.
    pub currency: Currency,
    /// Initial units, by holder.
    pub holders: Vec<Allocation>,
    /// When the provider signed it, ms since the epoch.
    pub created_ms: u64,
}

impl PoolCharter {
    /// Canonical encoding (domain `proofmesh/pool-charter/v1`).
    pub fn canonical(&self) -> Vec<u8> {
        let mut e = Encoder::new(CHARTER_DOMAIN);
        e.u64("version", self.version.into())
            .str("pool", &self.pool)
            .str("provider", self.provider.as_str())
            .u64("share_bps", self.share_bps.into())
            .str("currency", self.currency.code())
            .u64("holders", self.holders.len() as u64);
        for a in &self.holders {
            e.str("holder", &a.holder).u64("units", a.units);
        }
        e.u64("created_ms", self.created_ms);
        e.finish()
    }

    /// The pool it creates, after checking every rule (ids, bps, unit
    /// overflow, holder count, holders being keys).
    pub fn to_pool(&self) -> Result<RevenuePool, PoolDocError> {
        if self.version != POOL_DOC_VERSION {
            return Err(PoolDocError::Version {
                found: self.version,
            });
        }
        for a in &self.holders {
            holder_key(&a.holder)?;
        }
        Ok(RevenuePool::new(
            &self.pool,
            self.provider.as_str(),
            self.share_bps,
            self.currency,
            self.holders.iter().map(|a| (a.holder.clone(), a.units)),
        )?)
    }
}

fn holder_key(holder: &str) -> Result<PublicKey, PoolDocError> {
    PublicKey::parse(holder).map_err(|_| PoolDocError::HolderNotKey {
        holder: holder.into(),
    })
}

/// A charter with the provider's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedCharter {
    /// The charter.
    pub charter: PoolCharter,
    /// Ed25519 by `charter.provider` over `charter.canonical()`.
    pub signature: Signature,
}

impl SignedCharter {
    /// Signs as `provider`, which must be the charter's provider.
    pub fn sign(charter: PoolCharter, provider: &Identity) -> Result<Self, PoolDocError> {
        if provider.public() != &charter.provider {
            return Err(PoolDocError::WrongSigner {
                what: "charter",
                expected: charter.provider.to_string(),
                signer: provider.public().to_string(),
            });
        }
        charter.to_pool()?;
        let signature = provider.sign(&charter.canonical());
        Ok(SignedCharter { charter, signature })
    }

    /// Checks the signature and the rules; returns the pool it creates.
    pub fn verify(&self) -> Result<RevenuePool, PoolDocError> {
        let pool = self.charter.to_pool()?;
        self.charter
            .provider
            .verify(&self.charter.canonical(), &self.signature)
            .map_err(|_| PoolDocError::BadSignature {
                what: "charter",
                key: self.charter.provider.to_string(),
            })?;
        Ok(pool)
    }
}

/// A unit transfer signed by its sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedTransfer {
    /// [`POOL_DOC_VERSION`].
    pub version: u32,
    /// The transfer (its `key` makes retries idempotent).
    pub transfer: UnitTransfer,
    /// Ed25519 by `transfer.from` over [`SignedTransfer::canonical`].
    pub signature: Signature,
}

fn transfer_canonical(version: u32, t: &UnitTransfer) -> Vec<u8> {
    let mut e = Encoder::new(TRANSFER_DOMAIN);
    e.u64("version", version.into())
        .str("key", &t.key)
        .str("pool", &t.pool)
        .str("from", &t.from)
        .str("to", &t.to)
        .u64("units", t.units);
    e.finish()
}

impl SignedTransfer {
    /// Signs as `holder`, which must be the sender.
    pub fn sign(transfer: UnitTransfer, holder: &Identity) -> Result<Self, PoolDocError> {
        if holder.public().as_str() != transfer.from {
            return Err(PoolDocError::WrongSigner {
                what: "transfer",
                expected: transfer.from.clone(),
                signer: holder.public().to_string(),
            });
        }
        holder_key(&transfer.to)?;
        let signature = holder.sign(&transfer_canonical(POOL_DOC_VERSION, &transfer));
        Ok(SignedTransfer {
            version: POOL_DOC_VERSION,
            transfer,
            signature,
        })
    }

    /// The signed bytes.
    pub fn canonical(&self) -> Vec<u8> {
        transfer_canonical(self.version, &self.transfer)
    }

    /// Checks version, that both ends are keys, and the sender's signature.
    /// Whether the sender holds the units is the pool's to decide
    /// ([`RevenuePool::transfer`]).
    pub fn verify(&self) -> Result<(), PoolDocError> {
        if self.version != POOL_DOC_VERSION {
            return Err(PoolDocError::Version {
                found: self.version,
            });
        }
        let from = holder_key(&self.transfer.from)?;
        holder_key(&self.transfer.to)?;
        from.verify(&self.canonical(), &self.signature)
            .map_err(|_| PoolDocError::BadSignature {
                what: "transfer",
                key: from.to_string(),
            })
    }
}

/// An epoch's distribution, signed by the coordinator that paid it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedDistribution {
    /// [`POOL_DOC_VERSION`].
    pub version: u32,
    /// The paying coordinator.
    pub coordinator: PublicKey,
    /// What was paid.
    pub distribution: Distribution,
    /// Ed25519 by `coordinator` over [`SignedDistribution::canonical`].
    pub signature: Signature,
}

fn distribution_canonical(version: u32, coordinator: &PublicKey, d: &Distribution) -> Vec<u8> {
    let mut e = Encoder::new(DISTRIBUTION_SIG_DOMAIN);
    e.u64("version", version.into())
        .str("coordinator", coordinator.as_str())
        .bytes("distribution", &d.canonical());
    e.finish()
}

impl SignedDistribution {
    /// Signs `distribution` as `coordinator`.
    pub fn sign(distribution: Distribution, coordinator: &Identity) -> Self {
        let key = coordinator.public().clone();
        let signature = coordinator.sign(&distribution_canonical(
            POOL_DOC_VERSION,
            &key,
            &distribution,
        ));
        SignedDistribution {
            version: POOL_DOC_VERSION,
            coordinator: key,
            distribution,
            signature,
        }
    }

    /// Checks version and signature.
    pub fn verify(&self) -> Result<(), PoolDocError> {
        if self.version != POOL_DOC_VERSION {
            return Err(PoolDocError::Version {
                found: self.version,
            });
        }
        let msg = distribution_canonical(self.version, &self.coordinator, &self.distribution);
        self.coordinator
            .verify(&msg, &self.signature)
            .map_err(|_| PoolDocError::BadSignature {
                what: "distribution",
                key: self.coordinator.to_string(),
            })
    }

    /// Checks that the payouts are exactly what [`distribute`] gives for the
    /// pool's units at that point (a replaying auditor's check).
    pub fn check_against(&self, pool: &RevenuePool) -> Result<(), PoolDocError> {
        let d = &self.distribution;
        let mismatch = || PoolDocError::Mismatch {
            pool: d.pool.clone(),
            epoch: d.epoch,
        };
        if d.pool != pool.id() {
            return Err(mismatch());
        }
        let amount: Amount = d.amount;
        let expected = distribute(pool, amount, d.epoch)?;
        if &expected == d {
            Ok(())
        } else {
            Err(mismatch())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> Identity {
        Identity::from_seed([n; 32])
    }

    fn charter(provider: &Identity, holders: &[(&Identity, u64)]) -> PoolCharter {
        PoolCharter {
            version: POOL_DOC_VERSION,
            pool: "pool-1".into(),
            provider: provider.public().clone(),
            share_bps: 2_500,
            currency: Currency::Usd,
            holders: holders
                .iter()
                .map(|(h, u)| Allocation {
                    holder: h.public().to_string(),
                    units: *u,
                })
                .collect(),
            created_ms: 1,
        }
    }

    #[test]
    fn charter_signed_by_its_provider_verifies_and_forgeries_do_not() {
        let (p, a, b) = (id(1), id(2), id(3));
        let c = charter(&p, &[(&a, 70), (&b, 30)]);
        let s = SignedCharter::sign(c.clone(), &p).unwrap();
        let pool = s.verify().unwrap();
        assert_eq!(pool.total_units(), 100);
        assert_eq!(pool.units(a.public().as_str()), 70);
        // Someone else cannot create a pool of p's earnings.
        assert!(matches!(
            SignedCharter::sign(c.clone(), &a),
            Err(PoolDocError::WrongSigner { .. })
        ));
        // Raising the share after signing breaks the signature.
        let mut forged = s.clone();
        forged.charter.share_bps = 9_000;
        assert!(matches!(
            forged.verify(),
            Err(PoolDocError::BadSignature {
                what: "charter",
                ..
            })
        ));
        // Holders must be keys; bps must be ≤ 10 000.
        let mut bad = c.clone();
        bad.holders[0].holder = "alice".into();
        assert!(matches!(
            SignedCharter::sign(bad, &p),
            Err(PoolDocError::HolderNotKey { .. })
        ));
        let mut bad = c;
        bad.share_bps = 10_001;
        assert!(matches!(
            SignedCharter::sign(bad, &p),
            Err(PoolDocError::Pool(PoolError::Money(_)))
        ));
    }

    #[test]
    fn transfers_need_the_senders_signature() {
        let (a, b) = (id(2), id(3));
        let t = UnitTransfer {
            key: "t1".into(),
            pool: "pool-1".into(),
            from: a.public().to_string(),
            to: b.public().to_string(),
            units: 5,
        };
        let s = SignedTransfer::sign(t.clone(), &a).unwrap();
        s.verify().unwrap();
        assert!(matches!(
            SignedTransfer::sign(t, &b),
            Err(PoolDocError::WrongSigner { .. })
        ));
        let mut forged = s;
        forged.transfer.units = 50;
        assert!(matches!(
            forged.verify(),
            Err(PoolDocError::BadSignature {
                what: "transfer",
                ..
            })
        ));
    }

    #[test]
    fn distributions_verify_and_match_the_pool() {
        let (p, a, b, coord) = (id(1), id(2), id(3), id(9));
        let pool = SignedCharter::sign(charter(&p, &[(&a, 2), (&b, 1)]), &p)
            .unwrap()
            .verify()
            .unwrap();
        let epoch = Epoch::daily(100).unwrap();
        let amount = Amount::from_micros(Currency::Usd, 100).unwrap();
        let d = distribute(&pool, amount, epoch).unwrap();
        let s = SignedDistribution::sign(d, &coord);
        s.verify().unwrap();
        s.check_against(&pool).unwrap();
        let mut inflated = s.clone();
        inflated.distribution.payouts[0].micros += 1;
        assert!(inflated.verify().is_err());
        // Re-signed but not what the units give.
        let resigned = SignedDistribution::sign(inflated.distribution, &coord);
        assert!(matches!(
            resigned.check_against(&pool),
            Err(PoolDocError::Mismatch { .. })
        ));
    }
}
