//! Per-model prices and the exact charge for a job.
//!
//! Why: the receipt records a charge, the ledger moves money, and both must
//! agree to the micro-unit. The rule is the receipt's
//! ([`proofmesh_receipt::charge_micros`], `docs/RECEIPTS.md`):
//!
//! ```text
//! charge = ceil((prompt_tokens × input_per_mtok + completion_tokens × output_per_mtok) / 10⁶)
//! ```
//!
//! computed in `u128` (it cannot overflow there), rounded **up** to the next
//! micro-unit so a provider never serves a fraction for free. Where the receipt
//! function saturates at `u64::MAX`, [`ModelPrice::charge`] returns an error
//! instead; on every representable charge the two are equal (property-tested).
//! GPU-hour pricing (batch, fine-tune) uses the same rounding:
//! `ceil(gpu_seconds × per_gpu_hour / 3600)`.

use std::collections::BTreeMap;

use proofmesh_receipt::{Price, ReceiptBody};
use serde::{Deserialize, Serialize};

use crate::money::{Amount, Currency, MoneyError};

/// Why a price or charge was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    /// Bad currency or amount.
    #[error(transparent)]
    Money(#[from] MoneyError),
    /// The price book has no entry for the model.
    #[error("no price for model {model}")]
    UnknownModel {
        /// Model digest/name.
        model: String,
    },
    /// The receipt's recorded charge is not what its counts and rates give.
    #[error("receipt {receipt_id} records a charge of {recorded} micro-units, but its token counts and rates give {computed}")]
    ReceiptMismatch {
        /// Receipt.
        receipt_id: String,
        /// In the receipt.
        recorded: u64,
        /// Recomputed.
        computed: u64,
    },
    /// The model has no GPU-hour rate.
    #[error("model has no per-GPU-hour price")]
    NoGpuRate,
}

/// A provider's rates for one model, in micro-units of `currency`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    /// Currency of all rates.
    pub currency: Currency,
    /// Per 1M prompt tokens.
    pub input_per_mtok_micros: u64,
    /// Per 1M completion tokens.
    pub output_per_mtok_micros: u64,
    /// Per GPU-hour, for batch and fine-tune work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_hour_micros: Option<u64>,
}

fn ceil_div_to_amount(currency: Currency, numerator: u128, d: u128) -> Result<Amount, MoneyError> {
    let micros = numerator.div_ceil(d);
    let m = u64::try_from(micros).map_err(|_| MoneyError::TooLarge {
        micros,
        max: Amount::MAX_MICROS,
    })?;
    Amount::from_micros(currency, m)
}

impl ModelPrice {
    /// Token-priced model without a GPU-hour rate.
    pub fn per_token(currency: Currency, input_per_mtok: u64, output_per_mtok: u64) -> Self {
        ModelPrice {
            currency,
            input_per_mtok_micros: input_per_mtok,
            output_per_mtok_micros: output_per_mtok,
            gpu_hour_micros: None,
        }
    }

    /// The receipt's charge formula ([`proofmesh_receipt::token_cost`]):
    /// one formula for what a receipt says and what the ledger moves.
    fn token_cost(&self, prompt: u32, completion: u32) -> u128 {
        proofmesh_receipt::token_cost(
            prompt,
            completion,
            self.input_per_mtok_micros,
            self.output_per_mtok_micros,
        )
    }

    /// The exact charge for a job (module docs give the rule).
    pub fn charge(&self, prompt: u32, completion: u32) -> Result<Amount, PriceError> {
        let cost = self.token_cost(prompt, completion);
        Ok(ceil_div_to_amount(self.currency, cost, 1_000_000)?)
    }

    /// The charge for `gpu_seconds` of GPU time, rounded up.
    pub fn gpu_charge(&self, gpu_seconds: u64) -> Result<Amount, PriceError> {
        let rate = self.gpu_hour_micros.ok_or(PriceError::NoGpuRate)?;
        let cost = u128::from(gpu_seconds) * u128::from(rate);
        Ok(ceil_div_to_amount(self.currency, cost, 3600)?)
    }

    /// The most completion tokens whose charge (with `prompt` prompt tokens)
    /// stays within `budget`; `None` if even zero completion tokens exceed
    /// it. Lets the gateway cap `max_tokens` at a client's max price.
    pub fn max_completion_within(&self, prompt: u32, budget: Amount) -> Option<u32> {
        // ceil(x / 10⁶) ≤ B  ⟺  x ≤ B·10⁶.
        let limit = u128::from(budget.micros()) * 1_000_000;
        let fixed = self.token_cost(prompt, 0);
        let room = limit.checked_sub(fixed)?;
        if self.output_per_mtok_micros == 0 {
            return Some(u32::MAX);
        }
        let c = room / u128::from(self.output_per_mtok_micros);
        Some(u32::try_from(c).unwrap_or(u32::MAX))
    }

    /// The receipt's `Price` for a job with these counts.
    pub fn receipt_price(&self, prompt: u32, completion: u32) -> Result<Price, PriceError> {
        Ok(Price {
            currency: self.currency.code().to_string(),
            input_per_mtok_micros: self.input_per_mtok_micros,
            output_per_mtok_micros: self.output_per_mtok_micros,
            charged_micros: self.charge(prompt, completion)?.micros(),
        })
    }

    /// The rates a receipt states (no GPU-hour rate).
    pub fn from_receipt_price(p: &Price) -> Result<ModelPrice, PriceError> {
        Ok(ModelPrice::per_token(
            Currency::parse(&p.currency)?,
            p.input_per_mtok_micros,
            p.output_per_mtok_micros,
        ))
    }
}

/// The charge a receipt records, after checking it follows from the
/// receipt's own counts and rates (so the ledger never moves an amount the
/// receipt does not justify).
pub fn receipt_charge(body: &ReceiptBody) -> Result<Amount, PriceError> {
    let price = ModelPrice::from_receipt_price(&body.price)?;
    let computed = price.charge(body.prompt_tokens, body.completion_tokens)?;
    if computed.micros() != body.price.charged_micros {
        return Err(PriceError::ReceiptMismatch {
            receipt_id: body.receipt_id.clone(),
            recorded: body.price.charged_micros,
            computed: computed.micros(),
        });
    }
    Ok(computed)
}

/// A provider's price list: model (digest or name) → rates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PriceBook {
    /// The entries.
    pub models: BTreeMap<String, ModelPrice>,
}

impl PriceBook {
    /// The price of `model`.
    pub fn get(&self, model: &str) -> Result<&ModelPrice, PriceError> {
        self.models
            .get(model)
            .ok_or_else(|| PriceError::UnknownModel {
                model: model.into(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proofmesh_receipt::charge_micros;
    use proofmesh_receipt::testing::sample_body;
    use proofmesh_receipt::Identity;

    #[test]
    fn charge_rounds_up_and_matches_the_receipt_rule() {
        let p = ModelPrice::per_token(Currency::Usd, 100_000, 200_000);
        // 16·0.1 + 8·0.2 = 3.2 micro-units → 4.
        assert_eq!(p.charge(16, 8).unwrap().micros(), 4);
        assert_eq!(
            p.charge(16, 8).unwrap().micros(),
            charge_micros(16, 8, 100_000, 200_000)
        );
        assert_eq!(p.charge(0, 0).unwrap().micros(), 0);
        assert_eq!(p.charge(10, 0).unwrap().micros(), 1);
    }

    #[test]
    fn oversized_charge_is_an_error_not_a_saturation() {
        let p = ModelPrice::per_token(Currency::Usd, u64::MAX, u64::MAX);
        assert!(matches!(
            p.charge(u32::MAX, u32::MAX),
            Err(PriceError::Money(MoneyError::TooLarge { .. }))
        ));
        assert_eq!(
            charge_micros(u32::MAX, u32::MAX, u64::MAX, u64::MAX),
            u64::MAX
        );
    }

    #[test]
    fn gpu_hours_round_up() {
        let mut p = ModelPrice::per_token(Currency::Usd, 1, 1);
        assert_eq!(p.gpu_charge(1), Err(PriceError::NoGpuRate));
        p.gpu_hour_micros = Some(2_000_000);
        assert_eq!(p.gpu_charge(3600).unwrap().micros(), 2_000_000);
        assert_eq!(p.gpu_charge(1).unwrap().micros(), 556); // 555.5… → 556
    }

    #[test]
    fn max_completion_within_is_the_largest_affordable() {
        let p = ModelPrice::per_token(Currency::Usd, 300_000, 700_000);
        let budget = Amount::from_micros(Currency::Usd, 50).unwrap();
        let c = p.max_completion_within(20, budget).unwrap();
        assert!(p.charge(20, c).unwrap().micros() <= 50);
        assert!(p.charge(20, c + 1).unwrap().micros() > 50);
        assert_eq!(p.max_completion_within(1_000_000, budget), None);
    }

    #[test]
    fn receipt_charge_accepts_honest_and_rejects_inflated_receipts() {
        let prov = Identity::from_seed([1; 32]);
        let coord = Identity::from_seed([2; 32]);
        let mut body = sample_body(&prov, &coord, 1000, 500);
        let ok = receipt_charge(&body).unwrap();
        assert_eq!(ok.micros(), body.price.charged_micros);
        assert_eq!(ok.currency(), Currency::Usd);
        body.price.charged_micros += 1;
        assert!(matches!(
            receipt_charge(&body),
            Err(PriceError::ReceiptMismatch { .. })
        ));
        body.price.currency = "DOGE".into();
        assert!(matches!(
            receipt_charge(&body),
            Err(PriceError::Money(MoneyError::UnknownCurrency { .. }))
        ));
    }

    #[test]
    fn price_book_lookup_and_json() {
        let json = r#"{"llama-3b":{"currency":"USD","input_per_mtok_micros":5,"output_per_mtok_micros":9}}"#;
        let book: PriceBook = serde_json::from_str(json).unwrap();
        assert_eq!(book.get("llama-3b").unwrap().output_per_mtok_micros, 9);
        assert!(matches!(
            book.get("other"),
            Err(PriceError::UnknownModel { .. })
        ));
        let p = book
            .get("llama-3b")
            .unwrap()
            .receipt_price(1_000_000, 0)
            .unwrap();
        assert_eq!(p.charged_micros, 5);
    }
}
