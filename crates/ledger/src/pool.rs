//! Revenue-share pools: holders with unit balances (the tokenized revenue
//! share), unit transfers, and exact pro-rata distributions.
//!
//! Why: a provider can sell a share of its future earnings. At release time
//! `share_bps` of its post-fee earnings is credited to the `pool:<id>` account
//! (see [`crate::settle`]); each epoch [`distribute`] splits an amount of that
//! account among the holders in proportion to their units.
//!
//! Units are not money, so they live here and not in the money ledger; a
//! unit transfer is a [`UnitTransfer`] record with its own idempotency key.
//!
//! **Rounding rule (largest remainder, `largest_remainder_v1`).** For holders
//! with `u_i > 0` units out of `U`, each first gets `floor(A × u_i / U)`.
//! The `A − Σ floor(..)` micro-units left (fewer than the number of holders)
//! go one each to the holders with the largest remainders `(A × u_i) mod U`,
//! ties broken by holder id ascending (byte order). So the payouts sum to `A`
//! exactly, every holder gets its exact share rounded down or up, and the
//! result depends only on the inputs.

use std::collections::BTreeMap;

use proofmesh_receipt::canon::Encoder;
use serde::{Deserialize, Serialize};

use crate::account::AccountId;
use crate::epoch::Epoch;
use crate::hash::Hash32;
use crate::money::{check_bps, Amount, Currency, MoneyError};
use crate::settle::PoolShare;
use crate::tx::{valid_token, Link, Posting, Reason, Transaction, MAX_POSTINGS};

/// Most holders a pool may have (one distribution is one transaction).
pub const MAX_HOLDERS: usize = MAX_POSTINGS - 1;

/// The rounding rule's name, recorded in every distribution.
pub const ROUNDING_RULE: &str = "largest_remainder_v1";

pub mod replay;
pub mod signed;

const DISTRIBUTION_DOMAIN: &str = "proofmesh/pool-distribution/v1";

/// Why a pool operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// An id is empty, too long or has whitespace/control characters.
    #[error("invalid {what} {id:?}")]
    InvalidId {
        /// "pool", "holder", "provider" or "transfer key".
        what: &'static str,
        /// The id.
        id: String,
    },
    /// Bad basis points or amount.
    #[error(transparent)]
    Money(#[from] MoneyError),
    /// A holder does not have the units it tries to move.
    #[error("pool {pool}: holder {holder} has {has} units, cannot move {wanted}")]
    InsufficientUnits {
        /// Pool.
        pool: String,
        /// Holder.
        holder: String,
        /// Units held.
        has: u64,
        /// Units requested.
        wanted: u64,
    },
    /// The unit total would overflow.
    #[error("pool {pool}: unit total overflows u64")]
    UnitOverflow {
        /// Pool.
        pool: String,
    },
    /// Zero units transferred, or from a holder to itself.
    #[error("pool {pool}: {reason}")]
    BadTransfer {
        /// Pool.
        pool: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A transfer key was reused for a different transfer.
    #[error("pool {pool}: double spend / conflicting transfer key {key:?}")]
    ConflictingKey {
        /// Pool.
        pool: String,
        /// Key.
        key: String,
    },
    /// The pool has no units, so there is nobody to pay.
    #[error("pool {pool} has no units outstanding")]
    NoUnits {
        /// Pool.
        pool: String,
    },
    /// Too many holders for one distribution transaction.
    #[error("pool {pool} would have {count} holders (max {MAX_HOLDERS})")]
    TooManyHolders {
        /// Pool.
        pool: String,
        /// Count.
        count: usize,
    },
    /// A distribution of zero.
    #[error("pool {pool}: nothing to distribute")]
    NothingToDistribute {
        /// Pool.
        pool: String,
    },
}

/// A record of units moving between holders (log it; replay it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitTransfer {
    /// Idempotency key.
    pub key: String,
    /// Pool.
    pub pool: String,
    /// Sender.
    pub from: String,
    /// Receiver.
    pub to: String,
    /// Units moved.
    pub units: u64,
}

/// A revenue-share pool. Serialize-only: a stored pool is rebuilt with
/// [`RevenuePool::new`] from its holders, so the unit total is always
/// recomputed (transfer keys of a rebuilt pool are the store's to enforce).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RevenuePool {
    id: String,
    provider: String,
    share_bps: u32,
    currency: Currency,
    holders: BTreeMap<String, u64>,
    total_units: u64,
    #[serde(skip)]
    transfers: BTreeMap<String, UnitTransfer>,
}

fn check_id(what: &'static str, id: &str) -> Result<(), PoolError> {
    if valid_token(id) {
        Ok(())
    } else {
        Err(PoolError::InvalidId {
            what,
            id: id.into(),
        })
    }
}

impl RevenuePool {
    /// A pool of `provider`'s earnings with the initial unit allocation.
    pub fn new(
        id: &str,
        provider: &str,
        share_bps: u32,
        currency: Currency,
        allocation: impl IntoIterator<Item = (String, u64)>,
    ) -> Result<RevenuePool, PoolError> {
        check_id("pool", id)?;
        check_id("provider", provider)?;
        check_bps(share_bps)?;
        let overflow = || PoolError::UnitOverflow { pool: id.into() };
        let mut holders = BTreeMap::new();
        let mut total: u64 = 0;
        for (h, u) in allocation {
            check_id("holder", &h)?;
            total = total.checked_add(u).ok_or_else(overflow)?;
            let slot: &mut u64 = holders.entry(h).or_default();
            *slot = slot.checked_add(u).ok_or_else(overflow)?;
        }
        holders.retain(|_, u| *u > 0);
        if holders.len() > MAX_HOLDERS {
            return Err(PoolError::TooManyHolders {
                pool: id.into(),
                count: holders.len(),
            });
        }
        Ok(RevenuePool {
            id: id.into(),
            provider: provider.into(),
            share_bps,
            currency,
            holders,
            total_units: total,
            transfers: BTreeMap::new(),
        })
    }

    /// Pool id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The provider whose earnings feed the pool.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// Currency of the pool's money.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The release-time assignment for [`crate::settle`].
    pub fn share(&self) -> PoolShare {
        PoolShare {
            pool: self.id.clone(),
            share_bps: self.share_bps,
        }
    }

    /// Units held by `holder`.
    pub fn units(&self, holder: &str) -> u64 {
        self.holders.get(holder).copied().unwrap_or(0)
    }

    /// All units outstanding (constant under transfers).
    pub fn total_units(&self) -> u64 {
        self.total_units
    }

    /// Holders with units, by id.
    pub fn holders(&self) -> impl Iterator<Item = (&str, u64)> {
        self.holders.iter().map(|(h, u)| (h.as_str(), *u))
    }

    /// Moves units between holders. A retry with the same key and content
    /// returns `Ok(false)` and changes nothing; a different transfer under a
    /// used key is `ConflictingKey`. `Ok(true)` means units moved.
    pub fn transfer(&mut self, t: &UnitTransfer) -> Result<bool, PoolError> {
        let pool = || self.id.clone();
        if let Some(prev) = self.transfers.get(&t.key) {
            return if prev == t {
                Ok(false)
            } else {
                Err(PoolError::ConflictingKey {
                    pool: pool(),
                    key: t.key.clone(),
                })
            };
        }
        check_id("transfer key", &t.key)?;
        check_id("holder", &t.to)?;
        if t.pool != self.id || t.units == 0 || t.from == t.to {
            let reason = if t.pool != self.id {
                "transfer names another pool"
            } else if t.units == 0 {
                "zero units"
            } else {
                "sender and receiver are the same"
            };
            return Err(PoolError::BadTransfer {
                pool: pool(),
                reason,
            });
        }
        let has = self.units(&t.from);
        let left = has
            .checked_sub(t.units)
            .ok_or_else(|| PoolError::InsufficientUnits {
                pool: pool(),
                holder: t.from.clone(),
                has,
                wanted: t.units,
            })?;
        let to_units = self.units(&t.to);
        let new_holder = to_units == 0 && left > 0;
        if new_holder && self.holders.len() >= MAX_HOLDERS {
            return Err(PoolError::TooManyHolders {
                pool: pool(),
                count: self.holders.len() + 1,
            });
        }
        // Cannot overflow: to_units + units ≤ total_units.
        let to_after = to_units + t.units;
        if left == 0 {
            self.holders.remove(&t.from);
        } else {
            self.holders.insert(t.from.clone(), left);
        }
        self.holders.insert(t.to.clone(), to_after);
        self.transfers.insert(t.key.clone(), t.clone());
        Ok(true)
    }
}

/// One holder's part of a distribution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payout {
    /// Holder id.
    pub holder: String,
    /// Units held at distribution time.
    pub units: u64,
    /// Micro-units paid.
    pub micros: u64,
}

/// An epoch's distribution: the loggable statement and the transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Distribution {
    /// Pool.
    pub pool: String,
    /// Epoch it pays for.
    pub epoch: Epoch,
    /// Amount distributed.
    pub amount: Amount,
    /// Units outstanding.
    pub total_units: u64,
    /// [`ROUNDING_RULE`].
    pub rule: String,
    /// Per holder, by holder id.
    pub payouts: Vec<Payout>,
}

/// Splits `amount` among the pool's holders for `epoch` (module docs give
/// the rounding rule). Pure: apply [`Distribution::transaction`] to move money.
pub fn distribute(
    pool: &RevenuePool,
    amount: Amount,
    epoch: Epoch,
) -> Result<Distribution, PoolError> {
    let name = || pool.id.clone();
    if amount.currency() != pool.currency {
        return Err(MoneyError::CurrencyMismatch {
            left: pool.currency,
            right: amount.currency(),
        }
        .into());
    }
    if amount.is_zero() {
        return Err(PoolError::NothingToDistribute { pool: name() });
    }
    if pool.total_units == 0 {
        return Err(PoolError::NoUnits { pool: name() });
    }
    let a = u128::from(amount.micros());
    let total = u128::from(pool.total_units);
    let mut payouts = Vec::with_capacity(pool.holders.len());
    let mut remainders = Vec::with_capacity(pool.holders.len());
    let mut paid: u128 = 0;
    for (i, (holder, &units)) in pool.holders.iter().enumerate() {
        let num = a * u128::from(units); // < 2¹²⁸
        let floor = num / total;
        paid += floor;
        remainders.push((num % total, i));
        // floor ≤ a ≤ i64::MAX.
        let micros = u64::try_from(floor).map_err(|_| MoneyError::Overflow { op: "payout" })?;
        payouts.push(Payout {
            holder: holder.clone(),
            units,
            micros,
        });
    }
    let leftover =
        usize::try_from(a - paid).map_err(|_| MoneyError::Overflow { op: "leftover" })?;
    // Largest remainder first; equal remainders by holder id (index order).
    remainders.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
    for &(_, i) in remainders.iter().take(leftover) {
        payouts[i].micros += 1;
    }
    Ok(Distribution {
        pool: pool.id.clone(),
        epoch,
        amount,
        total_units: pool.total_units,
        rule: ROUNDING_RULE.into(),
        payouts,
    })
}

impl Distribution {
    /// The transaction: `pool:<id>` → `holder:<h>` for each non-zero payout,
    /// key `distribution/<pool>/<epoch start>` (one distribution per epoch).
    pub fn transaction(&self) -> Transaction {
        let c = self.amount.currency();
        let mut postings = vec![Posting::debit(
            AccountId::Pool(self.pool.clone()),
            self.amount,
        )];
        for p in self.payouts.iter().filter(|p| p.micros > 0) {
            // micros ≤ amount ≤ MAX_MICROS, so this cannot fail.
            let m = Amount::from_micros(c, p.micros).unwrap_or(self.amount);
            postings.push(Posting::credit(AccountId::Holder(p.holder.clone()), m));
        }
        let id = format!("{}/{}", self.pool, self.epoch.start_s());
        Transaction {
            key: format!("distribution/{id}"),
            reason: Reason::PoolDistribution,
            link: Some(Link::Distribution(id)),
            postings,
        }
    }

    /// Canonical encoding for logging and signing (domain
    /// `proofmesh/pool-distribution/v1`).
    pub fn canonical(&self) -> Vec<u8> {
        let mut e = Encoder::new(DISTRIBUTION_DOMAIN);
        e.str("pool", &self.pool)
            .u64("epoch_start_s", self.epoch.start_s())
            .u64("epoch_end_s", self.epoch.end_s())
            .str("currency", self.amount.currency().code())
            .u64("amount_micros", self.amount.micros())
            .u64("total_units", self.total_units)
            .str("rule", &self.rule)
            .u64("payouts", self.payouts.len() as u64);
        for p in &self.payouts {
            e.str("holder", &p.holder)
                .u64("units", p.units)
                .u64("micros", p.micros);
        }
        e.finish()
    }

    /// SHA-256 of the canonical encoding.
    pub fn hash(&self) -> Hash32 {
        Hash32::of(&self.canonical())
    }
}

#[cfg(test)]
mod tests;
