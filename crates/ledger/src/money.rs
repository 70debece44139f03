//! Money as integers: a named [`Currency`] and a non-negative [`Amount`] of its
//! micro-units, with checked arithmetic only.
//!
//! Why: floats cannot represent money exactly and wrapping integers silently
//! mint or burn it. Every amount here is an integer number of micro-units
//! (10⁻⁶ of the currency's unit, the same unit as a receipt's
//! `charged_micros`). An `Amount` is a `u64` restricted to `0..=i64::MAX` so
//! that every amount and every balance fits a SQL `BIGINT`/SQLite `INTEGER`
//! without conversion surprises; balances (which may be negative for the
//! external account) are `i64`. Any operation that would leave that range is
//! an error, never a wrap or a saturation.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Micro-units per whole unit of a currency.
pub const MICROS_PER_UNIT: u64 = 1_000_000;

/// Basis points in one whole (100%).
pub const BPS_DENOMINATOR: u32 = 10_000;

/// Why an amount or currency was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The currency code is not one this ledger knows.
    #[error("unknown currency {code:?} (known: USD, EUR, GBP, USDC)")]
    UnknownCurrency {
        /// The code as given.
        code: String,
    },
    /// A negative amount was given where only amounts ≥ 0 make sense.
    #[error("amount must not be negative, got {micros} micro-units")]
    Negative {
        /// The rejected value.
        micros: i128,
    },
    /// The value exceeds the largest representable amount.
    #[error("amount {micros} micro-units exceeds the maximum {max}")]
    TooLarge {
        /// The rejected value.
        micros: u128,
        /// [`Amount::MAX_MICROS`].
        max: u64,
    },
    /// An arithmetic step overflowed.
    #[error("overflow computing {op}")]
    Overflow {
        /// What was being computed.
        op: &'static str,
    },
    /// A subtraction would go below zero.
    #[error("{left} minus {right} micro-units would be negative")]
    Underflow {
        /// Minuend.
        left: u64,
        /// Subtrahend.
        right: u64,
    },
    /// Two amounts of different currencies were combined.
    #[error("currency mismatch: {left} vs {right}")]
    CurrencyMismatch {
        /// One currency.
        left: Currency,
        /// The other.
        right: Currency,
    },
    /// A decimal string does not parse.
    #[error("cannot parse {input:?} as an amount: {reason}")]
    Parse {
        /// The input.
        input: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Basis points above 10 000 (100%).
    #[error("{bps} basis points exceeds 10000 (100%)")]
    BpsOutOfRange {
        /// The rejected value.
        bps: u32,
    },
}

/// A currency the ledger accepts. Serialized as its ISO-style code; ordered
/// alphabetically by code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Currency {
    /// Euro.
    Eur,
    /// Pound sterling.
    Gbp,
    /// US dollar.
    Usd,
    /// USD Coin (a dollar stablecoin; kept apart from USD on purpose).
    Usdc,
}

impl Currency {
    /// Every known currency, in code order.
    pub const ALL: [Currency; 4] = [Currency::Eur, Currency::Gbp, Currency::Usd, Currency::Usdc];

    /// Position in [`Currency::ALL`] (a dense index for per-currency arrays).
    pub fn index(self) -> usize {
        match self {
            Currency::Eur => 0,
            Currency::Gbp => 1,
            Currency::Usd => 2,
            Currency::Usdc => 3,
        }
    }

    /// The code, e.g. `"USD"`.
    pub fn code(self) -> &'static str {
        match self {
            Currency::Usd => "USD",
            Currency::Eur => "EUR",
            Currency::Gbp => "GBP",
            Currency::Usdc => "USDC",
        }
    }

    /// Parses a code exactly (upper case); anything else is `UnknownCurrency`.
    pub fn parse(code: &str) -> Result<Currency, MoneyError> {
        Currency::ALL
            .into_iter()
            .find(|c| c.code() == code)
            .ok_or_else(|| MoneyError::UnknownCurrency { code: code.into() })
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::parse(s)
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Currency::parse(&s)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.code().to_string()
    }
}

/// A non-negative number of micro-units of one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "RawAmount", into = "RawAmount")]
pub struct Amount {
    currency: Currency,
    micros: u64,
}

/// The serde shape of an amount; wide enough that negative and oversized
/// inputs reach our own checks and get our error messages.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAmount {
    currency: Currency,
    micros: i128,
}

impl TryFrom<RawAmount> for Amount {
    type Error = MoneyError;
    fn try_from(r: RawAmount) -> Result<Self, Self::Error> {
        Amount::from_signed(r.currency, r.micros)
    }
}

impl From<Amount> for RawAmount {
    fn from(a: Amount) -> RawAmount {
        RawAmount {
            currency: a.currency,
            micros: a.micros.into(),
        }
    }
}

impl Amount {
    /// Largest amount: `i64::MAX` micro-units (fits SQL BIGINT).
    pub const MAX_MICROS: u64 = i64::MAX as u64;

    /// Zero of a currency.
    pub fn zero(currency: Currency) -> Amount {
        Amount {
            currency,
            micros: 0,
        }
    }

    /// An amount of `micros` micro-units; rejects values above [`Self::MAX_MICROS`].
    pub fn from_micros(currency: Currency, micros: u64) -> Result<Amount, MoneyError> {
        if micros > Self::MAX_MICROS {
            return Err(MoneyError::TooLarge {
                micros: micros.into(),
                max: Self::MAX_MICROS,
            });
        }
        Ok(Amount { currency, micros })
    }

    /// An amount from a signed input (API, CLI, database); negatives are rejected.
    pub fn from_signed(currency: Currency, micros: i128) -> Result<Amount, MoneyError> {
        if micros < 0 {
            return Err(MoneyError::Negative { micros });
        }
        let m = u64::try_from(micros).map_err(|_| MoneyError::TooLarge {
            micros: micros.unsigned_abs(),
            max: Self::MAX_MICROS,
        })?;
        Amount::from_micros(currency, m)
    }

    /// Parses a decimal in whole units with at most 6 decimals, e.g.
    /// `"12.5"` → 12 500 000 micro-units. A leading `-` is a `Negative` error.
    pub fn parse_decimal(currency: Currency, input: &str) -> Result<Amount, MoneyError> {
        let bad = |reason| MoneyError::Parse {
            input: input.into(),
            reason,
        };
        if let Some(rest) = input.strip_prefix('-') {
            let magnitude = Amount::parse_decimal(currency, rest)?;
            return Err(MoneyError::Negative {
                micros: -i128::from(magnitude.micros),
            });
        }
        let (whole, frac) = input.split_once('.').unwrap_or((input, ""));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || (input.contains('.') && !digits(frac)) {
            return Err(bad(
                "expected digits with an optional '.' and up to 6 decimals",
            ));
        }
        if frac.len() > 6 {
            return Err(bad("more than 6 decimal places (finer than a micro-unit)"));
        }
        let w: u128 = whole.parse().map_err(|_| bad("whole part too large"))?;
        let f: u128 = format!("{frac:0<6}").parse().unwrap_or(0);
        let micros = w
            .checked_mul(MICROS_PER_UNIT.into())
            .and_then(|x| x.checked_add(f))
            .ok_or_else(|| bad("too large"))?;
        let m = u64::try_from(micros).map_err(|_| MoneyError::TooLarge {
            micros,
            max: Self::MAX_MICROS,
        })?;
        Amount::from_micros(currency, m)
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The number of micro-units.
    pub fn micros(&self) -> u64 {
        self.micros
    }

    /// Whether this is zero.
    pub fn is_zero(&self) -> bool {
        self.micros == 0
    }

    fn same(&self, other: &Amount) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }

    /// `self + other`; errors on currency mismatch or overflow past the maximum.
    pub fn checked_add(self, other: Amount) -> Result<Amount, MoneyError> {
        self.same(&other)?;
        let sum = self
            .micros
            .checked_add(other.micros)
            .ok_or(MoneyError::Overflow { op: "amount sum" })?;
        Amount::from_micros(self.currency, sum)
    }

    /// `self - other`; errors on currency mismatch or a negative result.
    pub fn checked_sub(self, other: Amount) -> Result<Amount, MoneyError> {
        self.same(&other)?;
        let diff = self
            .micros
            .checked_sub(other.micros)
            .ok_or(MoneyError::Underflow {
                left: self.micros,
                right: other.micros,
            })?;
        Ok(Amount {
            currency: self.currency,
            micros: diff,
        })
    }

    /// The smaller of two amounts of the same currency.
    pub fn min(self, other: Amount) -> Result<Amount, MoneyError> {
        self.same(&other)?;
        Ok(if other.micros < self.micros {
            other
        } else {
            self
        })
    }

    /// `floor(self × bps / 10 000)`: a basis-point share, rounded down.
    pub fn bps_floor(self, bps: u32) -> Result<Amount, MoneyError> {
        check_bps(bps)?;
        let v = u128::from(self.micros) * u128::from(bps) / u128::from(BPS_DENOMINATOR);
        // v ≤ self.micros because bps ≤ 10 000.
        let micros = u64::try_from(v).map_err(|_| MoneyError::Overflow { op: "bps share" })?;
        Ok(Amount {
            currency: self.currency,
            micros,
        })
    }
}

/// Rejects basis points above 10 000.
pub fn check_bps(bps: u32) -> Result<(), MoneyError> {
    if bps > BPS_DENOMINATOR {
        Err(MoneyError::BpsOutOfRange { bps })
    } else {
        Ok(())
    }
}

impl fmt::Display for Amount {
    /// `12.500000 USD`: always six decimals, so the text is exact.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:06} {}",
            self.micros / MICROS_PER_UNIT,
            self.micros % MICROS_PER_UNIT,
            self.currency
        )
    }
}

/// Formats a signed micro-unit balance as a decimal, e.g. `-1.000001`.
pub fn format_micros(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    format!("{sign}{}.{:06}", m / MICROS_PER_UNIT, m % MICROS_PER_UNIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_codes_round_trip_and_unknown_is_rejected() {
        for (i, c) in Currency::ALL.into_iter().enumerate() {
            assert_eq!(Currency::parse(c.code()).unwrap(), c);
            assert_eq!(c.index(), i);
        }
        assert!(matches!(
            Currency::parse("usd"),
            Err(MoneyError::UnknownCurrency { .. })
        ));
        let err = serde_json::from_str::<Currency>("\"XYZ\"").unwrap_err();
        assert!(err.to_string().contains("unknown currency"), "{err}");
    }

    #[test]
    fn negative_and_oversized_inputs_are_rejected() {
        assert_eq!(
            Amount::from_signed(Currency::Usd, -5),
            Err(MoneyError::Negative { micros: -5 })
        );
        assert!(matches!(
            Amount::from_micros(Currency::Usd, Amount::MAX_MICROS + 1),
            Err(MoneyError::TooLarge { .. })
        ));
        let err = serde_json::from_str::<Amount>(r#"{"currency":"USD","micros":-7}"#).unwrap_err();
        assert!(err.to_string().contains("must not be negative"), "{err}");
        assert!(matches!(
            Amount::parse_decimal(Currency::Usd, "-1.5"),
            Err(MoneyError::Negative { micros: -1_500_000 })
        ));
    }

    #[test]
    fn decimal_parsing_is_exact() {
        let a = Amount::parse_decimal(Currency::Eur, "12.000345").unwrap();
        assert_eq!(a.micros(), 12_000_345);
        assert_eq!(a.to_string(), "12.000345 EUR");
        assert_eq!(
            Amount::parse_decimal(Currency::Eur, "3").unwrap().micros(),
            3_000_000
        );
        for bad in ["", ".", "1.", "1.0000001", "1e3", "1,5", "+1"] {
            assert!(
                Amount::parse_decimal(Currency::Eur, bad).is_err(),
                "{bad:?} parsed"
            );
        }
    }

    #[test]
    fn arithmetic_is_checked() {
        let max = Amount::from_micros(Currency::Usd, Amount::MAX_MICROS).unwrap();
        let one = Amount::from_micros(Currency::Usd, 1).unwrap();
        assert!(matches!(
            max.checked_add(one),
            Err(MoneyError::TooLarge { .. })
        ));
        assert!(matches!(
            one.checked_sub(max),
            Err(MoneyError::Underflow { .. })
        ));
        let eur = Amount::from_micros(Currency::Eur, 1).unwrap();
        assert!(matches!(
            one.checked_add(eur),
            Err(MoneyError::CurrencyMismatch { .. })
        ));
        assert_eq!(max.checked_sub(max).unwrap().micros(), 0);
    }

    #[test]
    fn bps_share_rounds_down_and_rejects_over_100_percent() {
        let a = Amount::from_micros(Currency::Usd, 999).unwrap();
        assert_eq!(a.bps_floor(1_000).unwrap().micros(), 99);
        assert_eq!(a.bps_floor(10_000).unwrap().micros(), 999);
        assert!(matches!(
            a.bps_floor(10_001),
            Err(MoneyError::BpsOutOfRange { bps: 10_001 })
        ));
    }

    #[test]
    fn signed_formatting() {
        assert_eq!(format_micros(-1_000_001), "-1.000001");
        assert_eq!(format_micros(i64::MIN), "-9223372036854.775808");
    }
}
