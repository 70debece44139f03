//! What is being placed: the workload class (with its parsing from a request
//! field or header, and per-endpoint defaults), the model's requirements
//! ([`ModelSpec`]), and the [`Request`] the placement functions take. Time is
//! passed in (`now_ms`); nothing here reads a clock.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{PlacementError, WorkloadParseError};
use crate::latency::GeoPoint;
use crate::provider::{AttestationLevel, ProviderId};

/// Default interactive TTFT SLO, ms (MLPerf Inference's interactive
/// scenario uses a 450 ms p99 TTFT; 500 ms leaves a little network room).
pub const DEFAULT_TTFT_SLO_MS: u32 = 500;
/// Default batch deadline: 24 hours (OpenAI's Batch API completion window).
pub const DEFAULT_BATCH_DEADLINE_MS: u64 = 24 * 3_600_000;
/// Default fine-tune length, hours.
pub const DEFAULT_FINE_TUNE_HOURS: u32 = 4;
/// Default fine-tune VRAM need, GiB (LoRA on a 7–8B model in BF16).
pub const DEFAULT_FINE_TUNE_VRAM_GIB: u32 = 24;
/// Largest token count a request may name.
pub const MAX_TOKENS: u32 = 10_000_000;

/// The workload class of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "class")]
pub enum WorkloadClass {
    /// A person is waiting: TTFT must meet the SLO.
    Interactive {
        /// TTFT SLO, ms.
        ttft_slo_ms: u32,
    },
    /// Finish before a deadline, cheapest first.
    Batch {
        /// Time from submission to completion, ms.
        deadline_ms: u64,
    },
    /// Multi-hour training on reliable, big-enough hardware.
    FineTune {
        /// Expected duration, hours.
        hours: u32,
        /// VRAM needed in one provider, GiB.
        min_vram_gib: u32,
    },
}

/// Index of a class in per-class tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassKind {
    /// Interactive.
    Interactive = 0,
    /// Batch.
    Batch = 1,
    /// Fine-tune.
    FineTune = 2,
}

impl ClassKind {
    /// All kinds, in table order.
    pub const ALL: [ClassKind; 3] = [
        ClassKind::Interactive,
        ClassKind::Batch,
        ClassKind::FineTune,
    ];

    /// Its name as parsed and printed.
    pub fn name(self) -> &'static str {
        match self {
            ClassKind::Interactive => "interactive",
            ClassKind::Batch => "batch",
            ClassKind::FineTune => "fine-tune",
        }
    }
}

/// The API endpoint a request came in on, for the default class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v1/chat/completions` and `/v1/completions`.
    Completions,
    /// `/v1/batches`.
    Batches,
    /// `/v1/fine_tuning/jobs`.
    FineTuning,
}

impl WorkloadClass {
    /// Interactive with the default SLO.
    pub const INTERACTIVE: WorkloadClass = WorkloadClass::Interactive {
        ttft_slo_ms: DEFAULT_TTFT_SLO_MS,
    };

    /// The class a request gets when it names none.
    pub fn default_for(endpoint: Endpoint) -> WorkloadClass {
        match endpoint {
            Endpoint::Completions => WorkloadClass::INTERACTIVE,
            Endpoint::Batches => WorkloadClass::Batch {
                deadline_ms: DEFAULT_BATCH_DEADLINE_MS,
            },
            Endpoint::FineTuning => WorkloadClass::FineTune {
                hours: DEFAULT_FINE_TUNE_HOURS,
                min_vram_gib: DEFAULT_FINE_TUNE_VRAM_GIB,
            },
        }
    }

    /// Its kind.
    pub fn kind(&self) -> ClassKind {
        match self {
            WorkloadClass::Interactive { .. } => ClassKind::Interactive,
            WorkloadClass::Batch { .. } => ClassKind::Batch,
            WorkloadClass::FineTune { .. } => ClassKind::FineTune,
        }
    }
}

fn param(key: &'static str, value: &str, min: u64, max: u64) -> Result<u64, WorkloadParseError> {
    let v: u64 = value
        .parse()
        .map_err(|_| WorkloadParseError::BadParameter {
            param: format!("{key}={value}"),
        })?;
    if (min..=max).contains(&v) {
        Ok(v)
    } else {
        Err(WorkloadParseError::OutOfRange {
            key,
            value: v,
            min,
            max,
        })
    }
}

impl FromStr for WorkloadClass {
    type Err = WorkloadParseError;

    /// Parses `class[;key=value]*`, e.g. `interactive`, `interactive;ttft_ms=300`,
    /// `batch;deadline_s=3600`, `fine-tune;hours=8;min_vram_gib=80`.
    /// Case-insensitive; `finetune` and `fine_tune` are accepted too.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.split(';').map(str::trim);
        let head = parts.next().unwrap_or("").to_ascii_lowercase();
        let mut class = match head.as_str() {
            "" => return Err(WorkloadParseError::Empty),
            "interactive" => WorkloadClass::default_for(Endpoint::Completions),
            "batch" => WorkloadClass::default_for(Endpoint::Batches),
            "fine-tune" | "finetune" | "fine_tune" => {
                WorkloadClass::default_for(Endpoint::FineTuning)
            }
            _ => return Err(WorkloadParseError::UnknownClass { value: head }),
        };
        for p in parts.filter(|p| !p.is_empty()) {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| WorkloadParseError::BadParameter {
                    param: p.to_string(),
                })?;
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            match (&mut class, k.as_str()) {
                (WorkloadClass::Interactive { ttft_slo_ms }, "ttft_ms") => {
                    *ttft_slo_ms = param("ttft_ms", v, 1, 600_000)? as u32;
                }
                (WorkloadClass::Batch { deadline_ms }, "deadline_s") => {
                    *deadline_ms = param("deadline_s", v, 1, 30 * 86_400)? * 1_000;
                }
                (WorkloadClass::FineTune { hours, .. }, "hours") => {
                    *hours = param("hours", v, 1, 24 * 90)? as u32;
                }
                (WorkloadClass::FineTune { min_vram_gib, .. }, "min_vram_gib") => {
                    *min_vram_gib = param("min_vram_gib", v, 1, 64 * 192)? as u32;
                }
                (c, _) => {
                    return Err(WorkloadParseError::UnknownParameter {
                        class: c.kind().name(),
                        key: k,
                    })
                }
            }
        }
        Ok(class)
    }
}

impl fmt::Display for WorkloadClass {
    /// The canonical spelling, which parses back to the same value (batch
    /// deadlines print in whole seconds).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WorkloadClass::Interactive { ttft_slo_ms } => {
                write!(f, "interactive;ttft_ms={ttft_slo_ms}")
            }
            WorkloadClass::Batch { deadline_ms } => {
                write!(f, "batch;deadline_s={}", deadline_ms / 1_000)
            }
            WorkloadClass::FineTune {
                hours,
                min_vram_gib,
            } => {
                write!(f, "fine-tune;hours={hours};min_vram_gib={min_vram_gib}")
            }
        }
    }
}

/// What a model needs, from the coordinator's catalog (authoritative) or,
/// failing that, from the first provider that offered it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// Model id.
    pub id: String,
    /// Parameter count.
    pub params: u64,
    /// Weights, bytes.
    pub size_bytes: u64,
    /// VRAM needed in one provider, MiB.
    pub vram_mib: u64,
}

impl ModelSpec {
    /// A spec whose VRAM need is the weights plus 20% for KV cache and
    /// activations at modest batch sizes, at least 256 MiB.
    pub fn from_size(id: &str, params: u64, size_bytes: u64) -> ModelSpec {
        let mib = (size_bytes + size_bytes / 5).div_ceil(1 << 20);
        ModelSpec {
            id: id.to_string(),
            params,
            size_bytes,
            vram_mib: mib.max(256),
        }
    }
}

/// Where the client is, as far as the coordinator knows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientInfo {
    /// Approximate coordinates (e.g. from GeoIP).
    pub location: Option<GeoPoint>,
    /// Client region label, to look up measured client RTTs.
    pub region: Option<String>,
    /// Measured RTT from the client to the coordinator, ms.
    pub rtt_to_coordinator_ms: Option<f64>,
}

/// Price limits a request accepts; `None` = no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceCap {
    /// Max per 1M input tokens, micro-USD.
    pub input_per_mtok_micros: Option<u64>,
    /// Max per 1M output tokens, micro-USD.
    pub output_per_mtok_micros: Option<u64>,
    /// Max per hour (fine-tune), micro-USD.
    pub per_hour_micros: Option<u64>,
    /// Max estimated cost of the whole job, micro-USD.
    pub job_micros: Option<u64>,
}

/// One request to place.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Model id (fine-tune: the base model, informational).
    pub model: String,
    /// Workload class.
    pub class: WorkloadClass,
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Maximum output tokens.
    pub max_output_tokens: u32,
    /// Client location.
    #[serde(default)]
    pub client: ClientInfo,
    /// Least attestation accepted.
    #[serde(default)]
    pub min_attestation: AttestationLevel,
    /// Least reputation accepted, basis points (the class minimum applies too).
    #[serde(default)]
    pub min_reputation_bp: u16,
    /// Price limits.
    #[serde(default)]
    pub price_cap: PriceCap,
    /// Providers already tried for this job.
    #[serde(default)]
    pub exclude: Vec<ProviderId>,
    /// Keep idle providers whose throughput estimate is stale (not
    /// measured for `latency.probe_after_ms`) even when their estimated
    /// TTFT misses the objective: the job probes them. A coordinator asks
    /// this after a placement without it found nothing, so the fast path
    /// keeps its SLO pruning.
    #[serde(default)]
    pub probe_stale: bool,
    /// Serve best-effort: the interactive TTFT objective scores providers
    /// but filters none (a coordinator asks this once a job has waited
    /// its bounded time for a provider that meets the objective).
    #[serde(default)]
    pub best_effort: bool,
    /// Now, unix ms.
    pub now_ms: u64,
}

impl Request {
    /// A request with defaults: no client info, no trust or price limits.
    pub fn new(
        model: &str,
        class: WorkloadClass,
        prompt_tokens: u32,
        max_output_tokens: u32,
        now_ms: u64,
    ) -> Request {
        Request {
            model: model.to_string(),
            class,
            prompt_tokens,
            max_output_tokens,
            client: ClientInfo::default(),
            min_attestation: AttestationLevel::None,
            min_reputation_bp: 0,
            price_cap: PriceCap::default(),
            exclude: Vec::new(),
            probe_stale: false,
            best_effort: false,
            now_ms,
        }
    }

    /// Rejects token counts beyond [`MAX_TOKENS`].
    pub fn check(&self) -> Result<(), PlacementError> {
        for (field, v) in [
            ("prompt_tokens", self.prompt_tokens),
            ("max_output_tokens", self.max_output_tokens),
        ] {
            if v > MAX_TOKENS {
                return Err(PlacementError::TokensOutOfRange {
                    field,
                    value: u64::from(v),
                    max: u64::from(MAX_TOKENS),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_defaults_and_params() {
        assert_eq!(
            "interactive".parse(),
            Ok(WorkloadClass::Interactive { ttft_slo_ms: 500 })
        );
        assert_eq!(
            " Interactive ; ttft_ms=250 ".parse(),
            Ok(WorkloadClass::Interactive { ttft_slo_ms: 250 })
        );
        assert_eq!(
            "batch".parse(),
            Ok(WorkloadClass::Batch {
                deadline_ms: DEFAULT_BATCH_DEADLINE_MS
            })
        );
        assert_eq!(
            "batch;deadline_s=60".parse(),
            Ok(WorkloadClass::Batch {
                deadline_ms: 60_000
            })
        );
        for s in ["fine-tune", "finetune", "FINE_TUNE"] {
            assert_eq!(
                s.parse(),
                Ok(WorkloadClass::FineTune {
                    hours: 4,
                    min_vram_gib: 24
                }),
                "{s}"
            );
        }
        assert_eq!(
            "fine-tune;hours=8;min_vram_gib=80".parse(),
            Ok(WorkloadClass::FineTune {
                hours: 8,
                min_vram_gib: 80
            })
        );
    }

    #[test]
    fn rejects_bad_classes_with_named_errors() {
        assert_eq!("".parse::<WorkloadClass>(), Err(WorkloadParseError::Empty));
        assert!(matches!(
            "realtime".parse::<WorkloadClass>(),
            Err(WorkloadParseError::UnknownClass { .. })
        ));
        assert!(matches!(
            "batch;ttft_ms=5".parse::<WorkloadClass>(),
            Err(WorkloadParseError::UnknownParameter { class: "batch", .. })
        ));
        assert!(matches!(
            "interactive;ttft_ms".parse::<WorkloadClass>(),
            Err(WorkloadParseError::BadParameter { .. })
        ));
        assert!(matches!(
            "interactive;ttft_ms=-1".parse::<WorkloadClass>(),
            Err(WorkloadParseError::BadParameter { .. })
        ));
        assert!(matches!(
            "interactive;ttft_ms=0".parse::<WorkloadClass>(),
            Err(WorkloadParseError::OutOfRange { key: "ttft_ms", .. })
        ));
    }

    #[test]
    fn display_round_trips() {
        for c in [
            WorkloadClass::Interactive { ttft_slo_ms: 321 },
            WorkloadClass::Batch { deadline_ms: 7_000 },
            WorkloadClass::FineTune {
                hours: 3,
                min_vram_gib: 40,
            },
        ] {
            assert_eq!(c.to_string().parse(), Ok(c));
        }
    }

    #[test]
    fn model_spec_adds_headroom_and_request_checks_tokens() {
        let m = ModelSpec::from_size("m", 8_000_000_000, 16_000_000_000);
        assert_eq!(m.vram_mib, (19_200_000_000u64).div_ceil(1 << 20));
        assert_eq!(ModelSpec::from_size("tiny", 1, 10).vram_mib, 256);
        let mut r = Request::new("m", WorkloadClass::INTERACTIVE, 10, 10, 0);
        assert!(r.check().is_ok());
        r.prompt_tokens = MAX_TOKENS + 1;
        assert!(matches!(
            r.check(),
            Err(PlacementError::TokensOutOfRange {
                field: "prompt_tokens",
                ..
            })
        ));
    }
}
