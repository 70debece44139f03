//! Replaying pool documents and settlement batches in log order: what an
//! auditor (`proofmesh log monitor`) runs to check that every unit transfer
//! was signed by a holder who had the units, and every distribution paid
//! exactly what the units held at that point give, and that settlement
//! batches chain.
//!
//! Why pure: the same replay must give the same verdict on any machine that
//! holds the log; it takes documents, not a connection.

use std::collections::HashMap;

use super::signed::{PoolDocError, SignedCharter, SignedDistribution, SignedTransfer};
use super::{PoolError, RevenuePool};
use crate::batch::{BatchError, SignedBatch};
use crate::hash::Hash32;

/// Why a replayed document is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayDocError {
    /// The document itself is invalid (signature, rules, payouts).
    #[error(transparent)]
    Doc(#[from] PoolDocError),
    /// A transfer breaks the units held at that point.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// A transfer or distribution names a pool with no earlier charter.
    #[error("pool {pool} has no charter earlier in the log")]
    UnknownPool {
        /// Pool.
        pool: String,
    },
    /// A second, different charter for a pool.
    #[error("pool {pool} is chartered twice")]
    Rechartered {
        /// Pool.
        pool: String,
    },
    /// A batch does not verify.
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// A batch does not continue its coordinator's previous one.
    #[error("settlement batch for {epoch} does not continue the previous batch")]
    BrokenChain {
        /// The batch's epoch, as text.
        epoch: String,
    },
}

/// Pools and batch chains rebuilt from the log.
#[derive(Debug, Default)]
pub struct PoolReplay {
    pools: HashMap<String, (SignedCharter, RevenuePool)>,
    /// Per coordinator key: (next seq, hash of the latest batch body).
    batches: HashMap<String, (u64, Hash32)>,
}

impl PoolReplay {
    /// Starts from nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// A charter creates its pool (the identical charter again is allowed).
    pub fn charter(&mut self, c: &SignedCharter) -> Result<(), ReplayDocError> {
        let pool = c.verify()?;
        match self.pools.get(&c.charter.pool) {
            Some((prev, _)) if prev == c => Ok(()),
            Some(_) => Err(ReplayDocError::Rechartered {
                pool: c.charter.pool.clone(),
            }),
            None => {
                self.pools.insert(c.charter.pool.clone(), (c.clone(), pool));
                Ok(())
            }
        }
    }

    /// A transfer moves units if its sender signed and held them.
    pub fn transfer(&mut self, t: &SignedTransfer) -> Result<(), ReplayDocError> {
        t.verify()?;
        let (_, pool) = self.pool_mut(&t.transfer.pool)?;
        pool.transfer(&t.transfer)?;
        Ok(())
    }

    /// A distribution must be signed and equal what the units give.
    pub fn distribution(&mut self, d: &SignedDistribution) -> Result<(), ReplayDocError> {
        d.verify()?;
        let (_, pool) = self.pool_mut(&d.distribution.pool)?;
        d.check_against(pool)?;
        Ok(())
    }

    /// A batch must be signed and continue its coordinator's previous one
    /// (the first one seen starts a chain).
    pub fn batch(&mut self, b: &SignedBatch) -> Result<(), ReplayDocError> {
        b.verify()?;
        let key = b.body.coordinator.to_string();
        if let Some((next_seq, hash)) = self.batches.get(&key) {
            if b.body.prev_batch_hash != *hash || b.body.first_seq != *next_seq {
                return Err(ReplayDocError::BrokenChain {
                    epoch: b.body.epoch.to_string(),
                });
            }
        }
        self.batches
            .insert(key, (b.body.first_seq + b.body.count, b.body.hash()));
        Ok(())
    }

    /// Pools seen.
    pub fn pools(&self) -> usize {
        self.pools.len()
    }

    /// Current units of a pool, if chartered.
    pub fn pool(&self, id: &str) -> Option<&RevenuePool> {
        self.pools.get(id).map(|(_, p)| p)
    }

    fn pool_mut(&mut self, id: &str) -> Result<&mut (SignedCharter, RevenuePool), ReplayDocError> {
        self.pools
            .get_mut(id)
            .ok_or_else(|| ReplayDocError::UnknownPool { pool: id.into() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::signed::{Allocation, PoolCharter, POOL_DOC_VERSION};
    use crate::pool::{distribute, UnitTransfer};
    use crate::{Amount, Currency, Epoch};
    use proofmesh_receipt::Identity;

    #[test]
    fn replay_follows_units_and_rejects_overspends_and_bad_payouts() {
        let (p, a, b, coord) = (
            Identity::from_seed([1; 32]),
            Identity::from_seed([2; 32]),
            Identity::from_seed([3; 32]),
            Identity::from_seed([9; 32]),
        );
        let charter = PoolCharter {
            version: POOL_DOC_VERSION,
            pool: "p1".into(),
            provider: p.public().clone(),
            share_bps: 500,
            currency: Currency::Usd,
            holders: vec![Allocation {
                holder: a.public().to_string(),
                units: 10,
            }],
            created_ms: 1,
        };
        let charter = SignedCharter::sign(charter, &p).unwrap();
        let mut r = PoolReplay::new();
        let move_units = |key: &str, from: &Identity, to: &Identity, units| {
            let t = UnitTransfer {
                key: key.into(),
                pool: "p1".into(),
                from: from.public().to_string(),
                to: to.public().to_string(),
                units,
            };
            SignedTransfer::sign(t, from).unwrap()
        };
        // No charter yet.
        assert!(matches!(
            r.transfer(&move_units("t0", &a, &b, 1)),
            Err(ReplayDocError::UnknownPool { .. })
        ));
        r.charter(&charter).unwrap();
        r.charter(&charter).unwrap();
        r.transfer(&move_units("t1", &a, &b, 4)).unwrap();
        assert!(matches!(
            r.transfer(&move_units("t2", &b, &a, 5)),
            Err(ReplayDocError::Pool(PoolError::InsufficientUnits { .. }))
        ));
        let pool = r.pool("p1").unwrap().clone();
        assert_eq!(pool.units(b.public().as_str()), 4);
        let epoch = Epoch::daily(3).unwrap();
        let d = distribute(
            &pool,
            Amount::from_micros(Currency::Usd, 11).unwrap(),
            epoch,
        )
        .unwrap();
        r.distribution(&SignedDistribution::sign(d.clone(), &coord))
            .unwrap();
        // Paying by the units before the transfer is caught.
        let before = SignedCharter::verify(&charter).unwrap();
        let stale = distribute(&before, d.amount, epoch).unwrap();
        assert!(r
            .distribution(&SignedDistribution::sign(stale, &coord))
            .is_err());
    }
}
