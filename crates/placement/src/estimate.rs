//! Per-candidate estimates: TTFT (network RTT + queue wait + prefill +
//! cold load), completion time, and job cost in integer micro-USD. The same
//! function serves the fast path, the explain path and `plan`, so their
//! figures agree by construction.

use serde::Serialize;

use crate::latency::{self, RttSource};
use crate::provider::Provenance;

/// Estimated timings and cost of one request on one provider.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Estimate {
    /// Time to first token, ms.
    pub ttft_ms: f64,
    /// Client ↔ coordinator leg, ms (0 in direct topology).
    pub client_rtt_ms: f64,
    /// Where the client leg came from.
    pub client_rtt_source: RttSource,
    /// Coordinator ↔ provider (relay) or client ↔ provider (direct), ms.
    pub provider_rtt_ms: f64,
    /// Where the provider leg came from.
    pub provider_rtt_source: RttSource,
    /// Queue wait, ms.
    pub queue_ms: f64,
    /// Prefill, ms.
    pub prefill_ms: f64,
    /// Loading the model cold, ms (0 when loaded).
    pub cold_load_ms: f64,
    /// Decoding the output, ms.
    pub decode_ms: f64,
    /// TTFT + decode, ms.
    pub completion_ms: f64,
    /// Where the throughput figures came from.
    pub throughput_source: Provenance,
    /// Estimated cost, micro-USD (rounded up).
    pub cost_micros: u64,
    /// Whether the provider was kept despite a TTFT estimate above the
    /// objective because the estimate is stale (idle, not measured for
    /// `latency.probe_after_ms`): the job re-measures it.
    pub probe: bool,
}

/// Inputs of [`estimate`] that vary per candidate.
#[derive(Clone, Copy, Debug)]
pub struct EstimateInputs {
    /// Client leg, ms, and its source.
    pub client_rtt: (f64, RttSource),
    /// Provider leg, ms, and its source.
    pub provider_rtt: (f64, RttSource),
    /// Jobs running.
    pub active: u32,
    /// Jobs queued.
    pub queued: u32,
    /// Slots.
    pub max_concurrency: u32,
    /// Measured mean service time, ms, if any.
    pub service_ms: Option<f64>,
    /// Prefill tok/s.
    pub prefill_tps: f64,
    /// Decode tok/s.
    pub decode_tps: f64,
    /// Where the throughputs came from.
    pub throughput_source: Provenance,
    /// Cold-load time, ms (0 when loaded).
    pub cold_load_ms: f64,
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Output tokens.
    pub output_tokens: u32,
    /// Job cost, micro-USD.
    pub cost_micros: u64,
}

/// Computes the estimate. Without a measured service time, queue rounds are
/// as long as this request's own prefill + decode.
pub fn estimate(i: &EstimateInputs) -> Estimate {
    let prefill_ms = latency::prefill_ms(i.prompt_tokens, i.prefill_tps);
    let decode_ms = f64::from(i.output_tokens) * 1e3 / i.decode_tps;
    let service = i.service_ms.unwrap_or(prefill_ms + decode_ms);
    let queue_ms = latency::queue_wait_ms(i.active, i.queued, i.max_concurrency, service);
    let ttft_ms = i.client_rtt.0 + i.provider_rtt.0 + queue_ms + prefill_ms + i.cold_load_ms;
    Estimate {
        ttft_ms,
        client_rtt_ms: i.client_rtt.0,
        client_rtt_source: i.client_rtt.1,
        provider_rtt_ms: i.provider_rtt.0,
        provider_rtt_source: i.provider_rtt.1,
        queue_ms,
        prefill_ms,
        cold_load_ms: i.cold_load_ms,
        decode_ms,
        completion_ms: ttft_ms + decode_ms,
        throughput_source: i.throughput_source,
        cost_micros: i.cost_micros,
        probe: false,
    }
}

/// Exact token cost numerator: micro-USD per 1M tokens × tokens. Divide by
/// 1e6 (rounding up) for micro-USD; compare numerators to rank without
/// rounding.
pub fn token_cost_numerator(
    input_per_mtok: u64,
    output_per_mtok: u64,
    prompt: u32,
    output: u32,
) -> u128 {
    u128::from(input_per_mtok) * u128::from(prompt)
        + u128::from(output_per_mtok) * u128::from(output)
}

/// Micro-USD from a numerator, rounded up, saturating.
pub fn micros_from_numerator(n: u128) -> u64 {
    // u64 division by a constant compiles to a multiply; u128 division is a
    // library call, and this runs once per candidate.
    match u64::try_from(n) {
        Ok(small) => small.div_ceil(1_000_000),
        Err(_) => u64::try_from(n.div_ceil(1_000_000)).unwrap_or(u64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> EstimateInputs {
        EstimateInputs {
            client_rtt: (20.0, RttSource::Measured),
            provider_rtt: (30.0, RttSource::Modelled),
            active: 0,
            queued: 0,
            max_concurrency: 1,
            service_ms: None,
            prefill_tps: 1_000.0,
            decode_tps: 50.0,
            throughput_source: Provenance::SelfDeclared,
            cold_load_ms: 0.0,
            prompt_tokens: 200,
            output_tokens: 100,
            cost_micros: 7,
        }
    }

    #[test]
    fn ttft_is_rtt_plus_queue_plus_prefill() {
        let e = estimate(&inputs());
        assert_eq!(e.prefill_ms, 200.0);
        assert_eq!(e.queue_ms, 0.0);
        assert_eq!(e.ttft_ms, 250.0);
        assert_eq!(e.decode_ms, 2_000.0);
        assert_eq!(e.completion_ms, 2_250.0);
        let busy = estimate(&EstimateInputs {
            active: 1,
            ..inputs()
        });
        assert_eq!(busy.queue_ms, 2_200.0);
        let measured = estimate(&EstimateInputs {
            active: 1,
            service_ms: Some(100.0),
            ..inputs()
        });
        assert_eq!(measured.queue_ms, 100.0);
        let cold = estimate(&EstimateInputs {
            cold_load_ms: 1_000.0,
            ..inputs()
        });
        assert_eq!(cold.ttft_ms, 1_250.0);
    }

    #[test]
    fn token_cost_rounds_up() {
        let n = token_cost_numerator(1_000_000, 2_000_000, 1, 1);
        assert_eq!(micros_from_numerator(n), 3);
        assert_eq!(micros_from_numerator(token_cost_numerator(1, 1, 1, 0)), 1);
        assert_eq!(micros_from_numerator(0), 0);
        let big = u128::from(u64::MAX) * 3;
        assert_eq!(
            micros_from_numerator(big),
            u64::try_from(big.div_ceil(1_000_000)).unwrap()
        );
        assert_eq!(micros_from_numerator(u128::MAX), u64::MAX);
    }
}
