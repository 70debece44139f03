//! Typed account identifiers and the rule for which accounts may go negative.
//!
//! Why: a stringly-typed account name lets a typo move money to an account no
//! one reads. [`AccountId`] names every account the settlement flows use, and
//! has one stable string form (`kind` or `kind:id`) for storage and JSON. Only
//! the [`AccountKind::External`] account — the world outside the ledger, debited
//! on deposits and credited on withdrawals — may hold a negative balance.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest id inside an account name, in bytes.
pub const MAX_ID_LEN: usize = 200;

/// Why an account name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// The kind prefix is not one we know.
    #[error("unknown account kind {kind:?} in {input:?}")]
    UnknownKind {
        /// The prefix.
        kind: String,
        /// The whole input.
        input: String,
    },
    /// The kind needs an id (`client:<id>`) and none was given, or one was
    /// given to a kind that takes none.
    #[error("account {input:?}: {reason}")]
    Shape {
        /// The whole input.
        input: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The id is empty, too long, or contains whitespace/control characters.
    #[error("invalid {kind} id {id:?}: must be 1..={MAX_ID_LEN} bytes without whitespace or control characters")]
    InvalidId {
        /// Account kind.
        kind: AccountKind,
        /// The id.
        id: String,
    },
}

/// The kind of an account, without its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    /// Money outside the ledger (deposits come from here, withdrawals go here).
    External,
    /// A client's prepaid credit.
    Client,
    /// Money held for one job between dispatch and completion.
    JobEscrow,
    /// A completed job's charge, held until its audit ends.
    AuditHold,
    /// A provider's withdrawable earnings.
    ProviderEarnings,
    /// A provider's stake, slashed on failed audits.
    ProviderStake,
    /// The protocol's fee income.
    ProtocolFee,
    /// The insurance fund that receives slashed stake.
    Insurance,
    /// A revenue-share pool's undistributed money.
    Pool,
    /// A revenue-share holder's withdrawable payouts.
    Holder,
}

impl AccountKind {
    /// Whether accounts of this kind may have a negative balance. Only the
    /// external account does: it mirrors money that entered the ledger.
    pub fn allows_credit(self) -> bool {
        matches!(self, AccountKind::External)
    }

    /// The storage prefix.
    pub fn prefix(self) -> &'static str {
        match self {
            AccountKind::External => "external",
            AccountKind::Client => "client",
            AccountKind::JobEscrow => "escrow",
            AccountKind::AuditHold => "hold",
            AccountKind::ProviderEarnings => "earnings",
            AccountKind::ProviderStake => "stake",
            AccountKind::ProtocolFee => "fee",
            AccountKind::Insurance => "insurance",
            AccountKind::Pool => "pool",
            AccountKind::Holder => "holder",
        }
    }

    fn has_id(self) -> bool {
        !matches!(
            self,
            AccountKind::External | AccountKind::ProtocolFee | AccountKind::Insurance
        )
    }

    const ALL: [AccountKind; 10] = [
        AccountKind::External,
        AccountKind::Client,
        AccountKind::JobEscrow,
        AccountKind::AuditHold,
        AccountKind::ProviderEarnings,
        AccountKind::ProviderStake,
        AccountKind::ProtocolFee,
        AccountKind::Insurance,
        AccountKind::Pool,
        AccountKind::Holder,
    ];
}

impl fmt::Display for AccountKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.prefix())
    }
}

/// An account. String form: `external`, `fee`, `insurance`, or `<prefix>:<id>`
/// (`client:…`, `escrow:<job>`, `hold:<job>`, `earnings:<provider key>`,
/// `stake:<provider key>`, `pool:<pool id>`, `holder:<holder id>`). Ids may
/// themselves contain `:` (provider keys are `ed25519:<hex>`); only the first
/// `:` separates the prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum AccountId {
    /// See [`AccountKind::External`].
    External,
    /// A client's prepaid credit, by client id.
    Client(String),
    /// A job's escrow, by job id.
    JobEscrow(String),
    /// A job's audit hold, by job id.
    AuditHold(String),
    /// A provider's earnings, by provider key.
    ProviderEarnings(String),
    /// A provider's stake, by provider key.
    ProviderStake(String),
    /// The protocol fee account.
    ProtocolFee,
    /// The insurance fund.
    Insurance,
    /// A revenue-share pool, by pool id.
    Pool(String),
    /// A revenue-share holder, by holder id.
    Holder(String),
}

impl AccountId {
    /// The kind.
    pub fn kind(&self) -> AccountKind {
        match self {
            AccountId::External => AccountKind::External,
            AccountId::Client(_) => AccountKind::Client,
            AccountId::JobEscrow(_) => AccountKind::JobEscrow,
            AccountId::AuditHold(_) => AccountKind::AuditHold,
            AccountId::ProviderEarnings(_) => AccountKind::ProviderEarnings,
            AccountId::ProviderStake(_) => AccountKind::ProviderStake,
            AccountId::ProtocolFee => AccountKind::ProtocolFee,
            AccountId::Insurance => AccountKind::Insurance,
            AccountId::Pool(_) => AccountKind::Pool,
            AccountId::Holder(_) => AccountKind::Holder,
        }
    }

    /// The id part, if the kind has one.
    pub fn id(&self) -> Option<&str> {
        match self {
            AccountId::External | AccountId::ProtocolFee | AccountId::Insurance => None,
            AccountId::Client(s)
            | AccountId::JobEscrow(s)
            | AccountId::AuditHold(s)
            | AccountId::ProviderEarnings(s)
            | AccountId::ProviderStake(s)
            | AccountId::Pool(s)
            | AccountId::Holder(s) => Some(s),
        }
    }

    /// Builds an account of `kind` with `id` (ignored, and must be `None`,
    /// for kinds without ids), validating the id.
    pub fn new(kind: AccountKind, id: Option<&str>) -> Result<AccountId, AccountError> {
        let shape = |reason| AccountError::Shape {
            input: format!("{}:{}", kind.prefix(), id.unwrap_or("")),
            reason,
        };
        let acct = match (kind.has_id(), id) {
            (false, None) => match kind {
                AccountKind::External => AccountId::External,
                AccountKind::ProtocolFee => AccountId::ProtocolFee,
                _ => AccountId::Insurance,
            },
            (false, Some(_)) => return Err(shape("this account kind takes no id")),
            (true, None) => return Err(shape("this account kind needs an id")),
            (true, Some(id)) => {
                let s = id.to_string();
                match kind {
                    AccountKind::Client => AccountId::Client(s),
                    AccountKind::JobEscrow => AccountId::JobEscrow(s),
                    AccountKind::AuditHold => AccountId::AuditHold(s),
                    AccountKind::ProviderEarnings => AccountId::ProviderEarnings(s),
                    AccountKind::ProviderStake => AccountId::ProviderStake(s),
                    AccountKind::Pool => AccountId::Pool(s),
                    _ => AccountId::Holder(s),
                }
            }
        };
        acct.validate()?;
        Ok(acct)
    }

    /// Checks the id rules (the enum's fields are public, so a hand-built
    /// account is validated again when a transaction is checked).
    pub fn validate(&self) -> Result<(), AccountError> {
        match self.id() {
            None => Ok(()),
            Some(id) if valid_id(id) => Ok(()),
            Some(id) => Err(AccountError::InvalidId {
                kind: self.kind(),
                id: id.to_string(),
            }),
        }
    }

    /// Whether this account may go negative.
    pub fn allows_credit(&self) -> bool {
        self.kind().allows_credit()
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && !id.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.id() {
            None => f.write_str(self.kind().prefix()),
            Some(id) => write!(f, "{}:{}", self.kind().prefix(), id),
        }
    }
}

impl FromStr for AccountId {
    type Err = AccountError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (prefix, id) = match s.split_once(':') {
            Some((p, id)) => (p, Some(id)),
            None => (s, None),
        };
        let kind = AccountKind::ALL
            .into_iter()
            .find(|k| k.prefix() == prefix)
            .ok_or_else(|| AccountError::UnknownKind {
                kind: prefix.into(),
                input: s.into(),
            })?;
        AccountId::new(kind, id).map_err(|e| match e {
            AccountError::Shape { reason, .. } => AccountError::Shape {
                input: s.into(),
                reason,
            },
            other => other,
        })
    }
}

impl TryFrom<String> for AccountId {
    type Error = AccountError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<AccountId> for String {
    fn from(a: AccountId) -> String {
        a.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<AccountId> {
        vec![
            AccountId::External,
            AccountId::Client("client-1".into()),
            AccountId::JobEscrow("job_1".into()),
            AccountId::AuditHold("job_1".into()),
            AccountId::ProviderEarnings("ed25519:abcd".into()),
            AccountId::ProviderStake("ed25519:abcd".into()),
            AccountId::ProtocolFee,
            AccountId::Insurance,
            AccountId::Pool("pool-a".into()),
            AccountId::Holder("alice".into()),
        ]
    }

    #[test]
    fn string_form_round_trips_for_every_kind() {
        for a in samples() {
            let s = a.to_string();
            assert_eq!(s.parse::<AccountId>().unwrap(), a, "{s}");
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(serde_json::from_str::<AccountId>(&json).unwrap(), a);
        }
        assert_eq!(
            AccountId::ProviderEarnings("ed25519:ff".into()).to_string(),
            "earnings:ed25519:ff"
        );
    }

    #[test]
    fn only_external_allows_credit() {
        for a in samples() {
            assert_eq!(a.allows_credit(), a == AccountId::External, "{a}");
        }
    }

    #[test]
    fn bad_names_are_rejected_with_reasons() {
        assert!(matches!(
            "wallet:x".parse::<AccountId>(),
            Err(AccountError::UnknownKind { .. })
        ));
        assert!(matches!(
            "client".parse::<AccountId>(),
            Err(AccountError::Shape { .. })
        ));
        assert!(matches!(
            "fee:x".parse::<AccountId>(),
            Err(AccountError::Shape { .. })
        ));
        for bad in ["client:", "client:a b", "client:a\nb"] {
            assert!(
                matches!(
                    bad.parse::<AccountId>(),
                    Err(AccountError::InvalidId { .. })
                ),
                "{bad:?}"
            );
        }
        let long = format!("client:{}", "x".repeat(MAX_ID_LEN + 1));
        assert!(long.parse::<AccountId>().is_err());
        assert!(AccountId::Client(String::new()).validate().is_err());
    }
}
