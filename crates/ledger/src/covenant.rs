//! Lender covenant policies and their evaluation against metrics statements.
//!
//! Why: a lender writes its covenants once (TOML or JSON) and checks them
//! against statements it has verified, without trusting the operator. Every
//! check reports pass/fail together with the numbers behind it.
//!
//! Comparisons are exact integer cross-multiplications, never floats:
//!
//! - uptime: `uptime_ms × 10⁴ ≥ min_uptime_bps × epoch_ms`;
//! - DSCR: `net_revenue × 10⁴ ≥ min_dscr_bps × debt_service` where
//!   `min_dscr = 1.25` is read exactly as 12 500 (four decimals at most);
//! - failed-audit rate: `failed × 10⁴ ≤ max_failed_audit_rate_bps × audits`
//!   (no audits counts as a rate of 0).
//!
//! Displayed ratios round so that the shown figure never contradicts the
//! verdict (achieved values down, the failure rate up). With `scope =
//! "each_epoch"` (default) every statement must pass; with `"period"` the
//! figures are summed over all statements first (debt service × epochs).

use std::fmt;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use crate::money::{format_micros, Currency, MoneyError, BPS_DENOMINATOR};
use crate::statement::StatementBody;

/// Why a policy could not be loaded or evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CovenantError {
    /// The file does not parse.
    #[error("policy does not parse: {reason}")]
    Parse {
        /// Parser message.
        reason: String,
    },
    /// The policy is inconsistent.
    #[error("invalid policy: {reason}")]
    Invalid {
        /// What is wrong.
        reason: String,
    },
    /// Nothing to evaluate.
    #[error("no statements to evaluate")]
    NoStatements,
    /// A statement is in another currency than the policy.
    #[error(
        "statement for epoch starting {epoch_start_s} is in {found}, policy expects {expected}"
    )]
    Currency {
        /// Epoch start.
        epoch_start_s: u64,
        /// Statement currency.
        found: Currency,
        /// Policy currency.
        expected: Currency,
    },
    /// Summing figures overflowed.
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// A non-negative ratio with four decimals, held as ten-thousandths
/// (`1.25` ↔ 12 500). Reads a TOML/JSON number or a decimal string exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ratio(pub u64);

impl Ratio {
    /// Parses `"1.25"`-style decimals with at most four decimals.
    pub fn parse(s: &str) -> Result<Ratio, String> {
        let (w, f) = s.split_once('.').unwrap_or((s, ""));
        let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
        if !digits(w) || (s.contains('.') && !digits(f)) || f.len() > 4 {
            return Err(format!(
                "ratio {s:?} must be a non-negative decimal with at most 4 decimals"
            ));
        }
        let w: u64 = w.parse().map_err(|_| format!("ratio {s:?} too large"))?;
        let f: u64 = format!("{f:0<4}").parse().unwrap_or(0);
        w.checked_mul(10_000)
            .and_then(|x| x.checked_add(f))
            .map(Ratio)
            .ok_or_else(|| format!("ratio {s:?} too large"))
    }
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:04}", self.0 / 10_000, self.0 % 10_000)
    }
}

impl Serialize for Ratio {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Ratio {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Ratio;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative ratio such as 1.25 or \"1.25\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Ratio, E> {
                Ratio::parse(v).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Ratio, E> {
                Ratio::parse(&v.to_string()).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Ratio, E> {
                Ratio::parse(&v.to_string()).map_err(E::custom)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Ratio, E> {
                // Rust prints the shortest decimal that reads back as `v`,
                // so 1.25 becomes "1.25" and is then parsed exactly.
                Ratio::parse(&format!("{v}")).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Whether checks apply per statement or to the whole period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Every epoch must pass.
    #[default]
    EachEpoch,
    /// The sums over all epochs must pass.
    Period,
}

/// A lender's covenants. Every check is optional; at least one must be set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CovenantPolicy {
    /// Label for reports.
    #[serde(default)]
    pub name: Option<String>,
    /// Currency the money figures must be in.
    #[serde(default)]
    pub currency: Option<Currency>,
    /// Minimum uptime, basis points (9900 = 99%).
    #[serde(default)]
    pub min_uptime_bps: Option<u32>,
    /// Minimum debt-service coverage ratio (net revenue ÷ debt service).
    #[serde(default)]
    pub min_dscr: Option<Ratio>,
    /// Debt service due per epoch, micro-units; required with `min_dscr`.
    #[serde(default)]
    pub debt_service_micros: Option<u64>,
    /// Maximum failed audits per audit, basis points (50 = 0.5%).
    #[serde(default)]
    pub max_failed_audit_rate_bps: Option<u32>,
    /// Per epoch or whole period.
    #[serde(default)]
    pub scope: Scope,
}

impl CovenantPolicy {
    /// Parses and validates a TOML policy.
    pub fn from_toml_str(s: &str) -> Result<Self, CovenantError> {
        let p: CovenantPolicy = toml::from_str(s).map_err(|e| CovenantError::Parse {
            reason: e.to_string(),
        })?;
        p.validate()?;
        Ok(p)
    }

    /// Parses and validates a JSON policy.
    pub fn from_json_str(s: &str) -> Result<Self, CovenantError> {
        let p: CovenantPolicy = serde_json::from_str(s).map_err(|e| CovenantError::Parse {
            reason: e.to_string(),
        })?;
        p.validate()?;
        Ok(p)
    }

    /// Checks consistency: bps ≤ 10 000, DSCR has a positive debt service,
    /// at least one check.
    pub fn validate(&self) -> Result<(), CovenantError> {
        let bad = |reason: &str| {
            Err(CovenantError::Invalid {
                reason: reason.into(),
            })
        };
        let bps = [self.min_uptime_bps, self.max_failed_audit_rate_bps];
        if bps.iter().flatten().any(|b| *b > BPS_DENOMINATOR) {
            return bad("basis points must be at most 10000");
        }
        if self.min_dscr.is_some() && matches!(self.debt_service_micros, None | Some(0)) {
            return bad("min_dscr needs a positive debt_service_micros");
        }
        if self.min_uptime_bps.is_none()
            && self.min_dscr.is_none()
            && self.max_failed_audit_rate_bps.is_none()
        {
            return bad("no checks configured");
        }
        Ok(())
    }
}

/// What a check measured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum CheckDetail {
    /// Uptime.
    Uptime {
        /// Time up.
        uptime_ms: u64,
        /// Time in the window.
        total_ms: u64,
        /// Achieved, rounded down.
        uptime_bps: u64,
        /// Required.
        min_bps: u32,
    },
    /// Debt-service coverage.
    Dscr {
        /// Net revenue.
        net_revenue_micros: u64,
        /// Debt service due.
        debt_service_micros: u64,
        /// Achieved, rounded down.
        dscr: Ratio,
        /// Required.
        min_dscr: Ratio,
    },
    /// Failed-audit rate.
    FailedAuditRate {
        /// Failed audits.
        failed: u64,
        /// All audits.
        audits: u64,
        /// Achieved, rounded up.
        rate_bps: u64,
        /// Allowed.
        max_bps: u32,
    },
}

/// One check over one window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Window start, unix s.
    pub start_s: u64,
    /// Window end, unix s.
    pub end_s: u64,
    /// Verdict.
    pub passed: bool,
    /// Numbers.
    pub detail: CheckDetail,
}

/// The outcome of [`evaluate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CovenantReport {
    /// Policy label.
    pub policy: Option<String>,
    /// Provider key.
    pub provider: String,
    /// Currency of the money figures.
    pub currency: Currency,
    /// Scope used.
    pub scope: Scope,
    /// Statements evaluated.
    pub statements: usize,
    /// Every check.
    pub checks: Vec<CheckResult>,
    /// True iff every check passed.
    pub passed: bool,
}

/// Figures summed over a window.
#[derive(Default)]
struct Window {
    start_s: u64,
    end_s: u64,
    epochs: u64,
    total_ms: u128,
    uptime_ms: u128,
    net_micros: u128,
    audits: u128,
    failed: u128,
}

impl Window {
    fn add(&mut self, s: &StatementBody) {
        if self.epochs == 0 {
            self.start_s = s.epoch.start_s();
        }
        self.end_s = s.epoch.end_s();
        self.epochs += 1;
        let f = &s.figures;
        self.total_ms += u128::from(s.epoch.len_ms());
        self.uptime_ms += u128::from(f.uptime_ms);
        self.net_micros += u128::from(f.net_revenue_micros);
        self.audits += u128::from(f.audits_passed) + u128::from(f.audits_failed);
        self.failed += u128::from(f.audits_failed);
    }
}

fn narrow(v: u128) -> Result<u64, CovenantError> {
    u64::try_from(v).map_err(|_| {
        MoneyError::Overflow {
            op: "covenant sums",
        }
        .into()
    })
}

fn check_window(p: &CovenantPolicy, w: &Window) -> Result<Vec<CheckResult>, CovenantError> {
    let d = u128::from(BPS_DENOMINATOR);
    let mut out = Vec::new();
    let mut push = |passed, detail| {
        out.push(CheckResult {
            start_s: w.start_s,
            end_s: w.end_s,
            passed,
            detail,
        })
    };
    if let Some(min) = p.min_uptime_bps {
        push(
            w.uptime_ms * d >= u128::from(min) * w.total_ms,
            CheckDetail::Uptime {
                uptime_ms: narrow(w.uptime_ms)?,
                total_ms: narrow(w.total_ms)?,
                uptime_bps: narrow(w.uptime_ms * d / w.total_ms.max(1))?,
                min_bps: min,
            },
        );
    }
    if let (Some(min), Some(per_epoch)) = (p.min_dscr, p.debt_service_micros) {
        let debt = u128::from(per_epoch) * u128::from(w.epochs);
        push(
            w.net_micros * d >= u128::from(min.0) * debt,
            CheckDetail::Dscr {
                net_revenue_micros: narrow(w.net_micros)?,
                debt_service_micros: narrow(debt)?,
                dscr: Ratio(narrow(w.net_micros * d / debt.max(1))?),
                min_dscr: min,
            },
        );
    }
    if let Some(max) = p.max_failed_audit_rate_bps {
        push(
            w.failed * d <= u128::from(max) * w.audits,
            CheckDetail::FailedAuditRate {
                failed: narrow(w.failed)?,
                audits: narrow(w.audits)?,
                rate_bps: narrow((w.failed * d).div_ceil(w.audits.max(1)))?,
                max_bps: max,
            },
        );
    }
    Ok(out)
}

/// Evaluates `policy` over statements of one provider (already verified
/// with [`crate::statement::verify_chain`] and, ideally, rechecked).
pub fn evaluate(
    policy: &CovenantPolicy,
    statements: &[StatementBody],
) -> Result<CovenantReport, CovenantError> {
    policy.validate()?;
    let first = statements.first().ok_or(CovenantError::NoStatements)?;
    let currency = policy.currency.unwrap_or(first.params.currency);
    for s in statements {
        if s.params.currency != currency {
            return Err(CovenantError::Currency {
                epoch_start_s: s.epoch.start_s(),
                found: s.params.currency,
                expected: currency,
            });
        }
    }
    let mut checks = Vec::new();
    match policy.scope {
        Scope::EachEpoch => {
            for s in statements {
                let mut w = Window::default();
                w.add(s);
                checks.extend(check_window(policy, &w)?);
            }
        }
        Scope::Period => {
            let mut w = Window::default();
            statements.iter().for_each(|s| w.add(s));
            checks.extend(check_window(policy, &w)?);
        }
    }
    Ok(CovenantReport {
        policy: policy.name.clone(),
        provider: first.provider.to_string(),
        currency,
        scope: policy.scope,
        statements: statements.len(),
        passed: checks.iter().all(|c| c.passed),
        checks,
    })
}

fn pct(bps: u64) -> String {
    format!("{}.{:02}%", bps / 100, bps % 100)
}

fn money(micros: u64, c: Currency) -> String {
    format!(
        "{} {c}",
        format_micros(i64::try_from(micros).unwrap_or(i64::MAX))
    )
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "FAIL"
    }
}

impl fmt::Display for CovenantReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.policy.as_deref().unwrap_or("covenants");
        writeln!(
            f,
            "{}: {name} for provider {} over {} statement(s)",
            verdict(self.passed),
            self.provider,
            self.statements
        )?;
        for c in &self.checks {
            let w = format!("[{}, {})", c.start_s, c.end_s);
            let line = match &c.detail {
                CheckDetail::Uptime {
                    uptime_ms,
                    total_ms,
                    uptime_bps,
                    min_bps,
                } => format!(
                    "uptime {} >= {} required ({uptime_ms} of {total_ms} ms up)",
                    pct(*uptime_bps),
                    pct((*min_bps).into())
                ),
                CheckDetail::Dscr {
                    net_revenue_micros,
                    debt_service_micros,
                    dscr,
                    min_dscr,
                } => format!(
                    "DSCR {dscr} >= {min_dscr} required (net revenue {} / debt service {})",
                    money(*net_revenue_micros, self.currency),
                    money(*debt_service_micros, self.currency)
                ),
                CheckDetail::FailedAuditRate {
                    failed,
                    audits,
                    rate_bps,
                    max_bps,
                } => format!(
                    "failed-audit rate {} <= {} allowed ({failed} failed of {audits} audits)",
                    pct(*rate_bps),
                    pct((*max_bps).into())
                ),
            };
            writeln!(f, "  {} {w} {line}", verdict(c.passed))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
