//! Transactions: balanced sets of postings with a reason, a link to the
//! evidence, and an idempotency key — plus their stateless checks and their
//! canonical encoding and hash.
//!
//! Why: every movement of money must be explainable (why, and because of which
//! receipt/audit/job) and must be safe to retry. The idempotency key *is* the
//! transaction's identity: the settlement flows derive it from the job and the
//! step (`escrow/<job>`, `settle/<job>`, `audit/<job>`), so a retried request
//! produces the same key and is recognised instead of charging twice.
//!
//! Sign convention: an account's balance is `credits − debits`. Moving money
//! from A to B debits A and credits B. Deposits debit the external account, so
//! the sum of all balances of a currency is always zero.
//!
//! Canonical encoding (what [`Transaction::hash`] covers, via
//! `proofmesh_receipt::canon::Encoder`, domain `proofmesh/ledger-tx/v1`):
//! `key, reason, link ("" if none), postings (u64 count), then per posting
//! account, side ("debit"/"credit"), currency, micros`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use proofmesh_receipt::canon::Encoder;
use serde::{Deserialize, Serialize};

use crate::account::{AccountError, AccountId, MAX_ID_LEN};
use crate::hash::Hash32;
use crate::money::{Amount, Currency};

/// Most postings one transaction may carry (bounds work per transaction; a
/// pool distribution to more holders is split by the caller).
pub const MAX_POSTINGS: usize = 4096;

const TX_DOMAIN: &str = "proofmesh/ledger-tx/v1";

/// Why a transaction is malformed (independent of any balances).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// The key is empty, too long or contains whitespace/control characters.
    #[error("invalid idempotency key {key:?}: must be 1..={MAX_ID_LEN} bytes without whitespace or control characters")]
    InvalidKey {
        /// The key.
        key: String,
    },
    /// A link's id is invalid, or its kind unknown.
    #[error("invalid link {link:?}: {reason}")]
    InvalidLink {
        /// The link as text.
        link: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// No postings.
    #[error("transaction {key} has no postings")]
    Empty {
        /// Transaction key.
        key: String,
    },
    /// Too many postings.
    #[error("transaction {key} has {count} postings (max {MAX_POSTINGS})")]
    TooManyPostings {
        /// Transaction key.
        key: String,
        /// Count.
        count: usize,
    },
    /// A posting of zero.
    #[error("transaction {key}: posting {index} to {account} is zero")]
    ZeroPosting {
        /// Transaction key.
        key: String,
        /// Posting index.
        index: usize,
        /// Account.
        account: String,
    },
    /// A posting names an invalid account.
    #[error("transaction {key}: {source}")]
    Account {
        /// Transaction key.
        key: String,
        /// The account problem.
        source: AccountError,
    },
    /// Debits and credits differ in some currency.
    #[error("transaction {key} is unbalanced in {currency}: debits {debits} != credits {credits} micro-units")]
    Unbalanced {
        /// Transaction key.
        key: String,
        /// Currency.
        currency: Currency,
        /// Sum of debits.
        debits: u128,
        /// Sum of credits.
        credits: u128,
    },
}

/// Which side of an account a posting is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// Decreases the balance.
    Debit,
    /// Increases the balance.
    Credit,
}

impl Side {
    /// `"debit"` / `"credit"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Debit => "debit",
            Side::Credit => "credit",
        }
    }
}

/// One line of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Posting {
    /// The account.
    pub account: AccountId,
    /// Debit or credit.
    pub side: Side,
    /// How much (never zero in a valid transaction).
    pub amount: Amount,
}

impl Posting {
    /// A debit.
    pub fn debit(account: AccountId, amount: Amount) -> Posting {
        Posting {
            account,
            side: Side::Debit,
            amount,
        }
    }

    /// A credit.
    pub fn credit(account: AccountId, amount: Amount) -> Posting {
        Posting {
            account,
            side: Side::Credit,
            amount,
        }
    }
}

/// Why money moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// External money credited to a client (admin credit, payment).
    Deposit,
    /// Money paid out of the ledger (provider or holder withdrawal).
    Withdrawal,
    /// A provider posts stake.
    StakeDeposit,
    /// A provider withdraws stake.
    StakeWithdrawal,
    /// Client credit moved to a job's escrow at dispatch.
    Escrow,
    /// A job's charge paid to provider, fee and pool (and unused escrow back).
    Release,
    /// A completed job's charge moved to its audit hold (unused escrow back).
    Hold,
    /// Money returned to a client (failed job or failed audit).
    Refund,
    /// Stake taken from a provider after a failed audit.
    Slash,
    /// A fee charged on its own.
    Fee,
    /// A pool's epoch earnings paid to its holders.
    PoolDistribution,
    /// A manual correction by an operator.
    Adjustment,
}

impl Reason {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Deposit => "deposit",
            Reason::Withdrawal => "withdrawal",
            Reason::StakeDeposit => "stake_deposit",
            Reason::StakeWithdrawal => "stake_withdrawal",
            Reason::Escrow => "escrow",
            Reason::Release => "release",
            Reason::Hold => "hold",
            Reason::Refund => "refund",
            Reason::Slash => "slash",
            Reason::Fee => "fee",
            Reason::PoolDistribution => "pool_distribution",
            Reason::Adjustment => "adjustment",
        }
    }
}

/// The evidence a transaction points at. String form `<kind>:<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Link {
    /// A job id.
    Job(String),
    /// A receipt id.
    Receipt(String),
    /// An audit id.
    Audit(String),
    /// A pool distribution (`<pool>/<epoch start>`).
    Distribution(String),
    /// An external payment or operator reference.
    Payment(String),
}

impl Link {
    fn parts(&self) -> (&'static str, &str) {
        match self {
            Link::Job(s) => ("job", s),
            Link::Receipt(s) => ("receipt", s),
            Link::Audit(s) => ("audit", s),
            Link::Distribution(s) => ("distribution", s),
            Link::Payment(s) => ("payment", s),
        }
    }

    /// Checks the id rules.
    pub fn validate(&self) -> Result<(), TxError> {
        if valid_token(self.parts().1) {
            Ok(())
        } else {
            Err(TxError::InvalidLink {
                link: self.to_string(),
                reason: "id must be 1..=200 bytes without whitespace or control characters",
            })
        }
    }
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (k, id) = self.parts();
        write!(f, "{k}:{id}")
    }
}

impl FromStr for Link {
    type Err = TxError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason| TxError::InvalidLink {
            link: s.into(),
            reason,
        };
        let (k, id) = s
            .split_once(':')
            .ok_or_else(|| bad("expected <kind>:<id>"))?;
        let id = id.to_string();
        let link = match k {
            "job" => Link::Job(id),
            "receipt" => Link::Receipt(id),
            "audit" => Link::Audit(id),
            "distribution" => Link::Distribution(id),
            "payment" => Link::Payment(id),
            _ => return Err(bad("unknown link kind")),
        };
        link.validate()?;
        Ok(link)
    }
}

impl TryFrom<String> for Link {
    type Error = TxError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Link> for String {
    fn from(l: Link) -> String {
        l.to_string()
    }
}

pub(crate) fn valid_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A balanced set of postings. `key` is both the transaction's id and its
/// idempotency key: unique in a journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transaction {
    /// Idempotency key and id, e.g. `escrow/job_123`.
    pub key: String,
    /// Why.
    pub reason: Reason,
    /// Evidence.
    pub link: Option<Link>,
    /// The postings.
    pub postings: Vec<Posting>,
}

impl Transaction {
    /// Stateless checks: key, link, accounts, non-zero postings, and that
    /// debits equal credits in every currency.
    pub fn validate(&self) -> Result<(), TxError> {
        let key = || self.key.clone();
        if !valid_token(&self.key) {
            return Err(TxError::InvalidKey { key: key() });
        }
        if let Some(l) = &self.link {
            l.validate()?;
        }
        if self.postings.is_empty() {
            return Err(TxError::Empty { key: key() });
        }
        if self.postings.len() > MAX_POSTINGS {
            return Err(TxError::TooManyPostings {
                key: key(),
                count: self.postings.len(),
            });
        }
        // (debits, credits) per currency; ≤ MAX_POSTINGS × 2⁶³ cannot overflow u128.
        let mut sums: BTreeMap<Currency, (u128, u128)> = BTreeMap::new();
        for (index, p) in self.postings.iter().enumerate() {
            p.account
                .validate()
                .map_err(|source| TxError::Account { key: key(), source })?;
            if p.amount.is_zero() {
                return Err(TxError::ZeroPosting {
                    key: key(),
                    index,
                    account: p.account.to_string(),
                });
            }
            let e = sums.entry(p.amount.currency()).or_default();
            match p.side {
                Side::Debit => e.0 += u128::from(p.amount.micros()),
                Side::Credit => e.1 += u128::from(p.amount.micros()),
            }
        }
        for (currency, (debits, credits)) in sums {
            if debits != credits {
                return Err(TxError::Unbalanced {
                    key: key(),
                    currency,
                    debits,
                    credits,
                });
            }
        }
        Ok(())
    }

    /// The canonical encoding (see the module docs).
    pub fn canonical(&self) -> Vec<u8> {
        let mut e = Encoder::new(TX_DOMAIN);
        let link = self.link.as_ref().map(Link::to_string).unwrap_or_default();
        e.str("key", &self.key)
            .str("reason", self.reason.as_str())
            .str("link", &link)
            .u64("postings", self.postings.len() as u64);
        for p in &self.postings {
            e.str("account", &p.account.to_string())
                .str("side", p.side.as_str())
                .str("currency", p.amount.currency().code())
                .u64("micros", p.amount.micros());
        }
        e.finish()
    }

    /// SHA-256 of [`Self::canonical`]: the content identity used for
    /// idempotency and as the Merkle leaf of settlement batches.
    pub fn hash(&self) -> Hash32 {
        Hash32::of(&self.canonical())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(m: u64) -> Amount {
        Amount::from_micros(Currency::Usd, m).unwrap()
    }

    fn transfer(m: u64) -> Transaction {
        Transaction {
            key: "t/1".into(),
            reason: Reason::Deposit,
            link: Some(Link::Payment("pay_1".into())),
            postings: vec![
                Posting::debit(AccountId::External, usd(m)),
                Posting::credit(AccountId::Client("c".into()), usd(m)),
            ],
        }
    }

    #[test]
    fn balanced_transaction_validates() {
        transfer(5).validate().unwrap();
    }

    #[test]
    fn unbalanced_zero_empty_and_bad_key_are_rejected() {
        let mut t = transfer(5);
        t.postings[1].amount = usd(4);
        assert!(matches!(
            t.validate(),
            Err(TxError::Unbalanced {
                debits: 5,
                credits: 4,
                ..
            })
        ));
        assert!(matches!(
            transfer(0).validate(),
            Err(TxError::ZeroPosting { index: 0, .. })
        ));
        let mut t = transfer(5);
        t.postings.clear();
        assert!(matches!(t.validate(), Err(TxError::Empty { .. })));
        let mut t = transfer(5);
        t.key = "has space".into();
        assert!(matches!(t.validate(), Err(TxError::InvalidKey { .. })));
    }

    #[test]
    fn balance_is_per_currency() {
        let mut t = transfer(5);
        t.postings[1].amount = Amount::from_micros(Currency::Eur, 5).unwrap();
        assert!(matches!(
            t.validate(),
            Err(TxError::Unbalanced {
                currency: Currency::Eur,
                ..
            })
        ));
    }

    #[test]
    fn hash_covers_every_field() {
        let base = transfer(5);
        let mut variants = vec![];
        let mut t = base.clone();
        t.key = "t/2".into();
        variants.push(t);
        let mut t = base.clone();
        t.reason = Reason::Adjustment;
        variants.push(t);
        let mut t = base.clone();
        t.link = None;
        variants.push(t);
        let mut t = base.clone();
        t.postings.swap(0, 1);
        variants.push(t);
        variants.push(transfer(6));
        for v in variants {
            assert_ne!(v.hash(), base.hash(), "{v:?}");
        }
        assert_eq!(base.clone().hash(), base.hash());
    }

    #[test]
    fn link_string_form_round_trips() {
        for l in [
            Link::Job("j".into()),
            Link::Receipt("r".into()),
            Link::Audit("a".into()),
            Link::Distribution("p/1".into()),
            Link::Payment("x".into()),
        ] {
            assert_eq!(l.to_string().parse::<Link>().unwrap(), l);
        }
        assert!("nope:x".parse::<Link>().is_err());
        assert!("job:".parse::<Link>().is_err());
    }

    #[test]
    fn json_rejects_unknown_fields_and_bad_accounts() {
        let json = serde_json::to_string(&transfer(5)).unwrap();
        let back: Transaction = serde_json::from_str(&json).unwrap();
        assert_eq!(back, transfer(5));
        let extra = json.replacen('{', "{\"x\":1,", 1);
        assert!(serde_json::from_str::<Transaction>(&extra).is_err());
        let bad = json.replace("client:c", "wallet:c");
        assert!(serde_json::from_str::<Transaction>(&bad).is_err());
    }
}
