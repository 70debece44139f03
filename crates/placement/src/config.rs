//! Placement configuration: score weights and ranking rule per workload
//! class, the network topology the latency model assumes, cooldown policy and
//! reference prices for score normalisation. Validated once
//! ([`PlacementConfig::validate`]) when a [`crate::Registry`] is built.

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::failover::CooldownPolicy;
use crate::latency::{GeoPoint, LatencyConfig};
use crate::workload::ClassKind;

/// Weights of the score components (each component is in `[0, 1]`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Weights {
    /// Cheaper is better.
    pub cost: f64,
    /// Lower estimated TTFT is better.
    pub latency: f64,
    /// Higher reputation is better.
    pub reputation: f64,
    /// Less loaded is better.
    pub load: f64,
    /// Hardware no bigger than the model needs is better.
    pub tier: f64,
}

/// How feasible candidates are ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ranking {
    /// Highest weighted score first.
    Score,
    /// Lowest estimated job cost first; score breaks ties.
    CheapestFirst,
}

/// Policy of one workload class.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassPolicy {
    /// Score weights.
    pub weights: Weights,
    /// Ordering rule.
    pub ranking: Ranking,
    /// Whether providers that would have to load the model cold qualify.
    /// Their TTFT includes the load time, so cold loads rarely meet an
    /// interactive SLO; they also lose `cold_penalty` points of score.
    pub allow_cold_load: bool,
    /// Score subtracted for a cold load.
    pub cold_penalty: f64,
    /// Least reputation, basis points.
    pub min_reputation_bp: u16,
    /// Least uptime, basis points.
    pub min_uptime_bp: u16,
}

/// Which network legs make up the RTT in a TTFT estimate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Topology {
    /// Tokens go provider → coordinator → client (today's architecture):
    /// RTT = client↔coordinator + coordinator↔provider.
    Relay,
    /// Tokens go provider → client directly (regional gateways): RTT =
    /// client↔provider, measured per client region where known, else
    /// modelled from the client's coordinates.
    Direct,
}

/// All placement settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlacementConfig {
    /// Where the coordinator is.
    pub coordinator: GeoPoint,
    /// Relay or direct.
    pub topology: Topology,
    /// Latency model.
    pub latency: LatencyConfig,
    /// Policy per class, indexed by [`ClassKind`].
    pub classes: [ClassPolicy; 3],
    /// A provider is full at `max_concurrency × queue_factor` jobs.
    pub queue_factor: u32,
    /// Ranked alternates to return for failover.
    pub alternates: usize,
    /// Price per 1M tokens that scores 0.5 on cost, micro-USD.
    pub cost_ref_per_mtok_micros: u64,
    /// Price per hour that scores 0.5 on cost (fine-tune), micro-USD.
    pub cost_ref_per_hour_micros: u64,
    /// TTFT that scores 0.5 on latency outside interactive, ms.
    pub latency_ref_ms: f64,
    /// Failure cooldown.
    pub cooldown: CooldownPolicy,
    /// Most providers the registry accepts.
    pub max_providers: usize,
}

impl Default for PlacementConfig {
    fn default() -> Self {
        let interactive = ClassPolicy {
            weights: Weights {
                cost: 0.20,
                latency: 0.35,
                reputation: 0.15,
                load: 0.15,
                tier: 0.15,
            },
            ranking: Ranking::Score,
            allow_cold_load: true,
            cold_penalty: 0.10,
            min_reputation_bp: 0,
            min_uptime_bp: 0,
        };
        let batch = ClassPolicy {
            weights: Weights {
                cost: 0.50,
                latency: 0.0,
                reputation: 0.20,
                load: 0.10,
                tier: 0.20,
            },
            ranking: Ranking::CheapestFirst,
            allow_cold_load: true,
            cold_penalty: 0.10,
            min_reputation_bp: 0,
            min_uptime_bp: 0,
        };
        let fine_tune = ClassPolicy {
            weights: Weights {
                cost: 0.30,
                latency: 0.0,
                reputation: 0.40,
                load: 0.10,
                tier: 0.20,
            },
            ranking: Ranking::Score,
            allow_cold_load: true,
            cold_penalty: 0.0,
            min_reputation_bp: 9_000,
            min_uptime_bp: 9_800,
        };
        PlacementConfig {
            // Ashburn, Virginia (us-east): a common first coordinator site.
            coordinator: GeoPoint::new(39.04, -77.49),
            topology: Topology::Relay,
            latency: LatencyConfig::default(),
            classes: [interactive, batch, fine_tune],
            queue_factor: 4,
            alternates: 3,
            cost_ref_per_mtok_micros: 200_000,
            cost_ref_per_hour_micros: 2_000_000,
            latency_ref_ms: 1_000.0,
            cooldown: CooldownPolicy::default(),
            max_providers: 1_000_000,
        }
    }
}

fn range(field: &'static str, value: f64, min: f64, max: f64) -> Result<(), ConfigError> {
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::OutOfRange {
            field,
            value,
            min,
            max,
        })
    }
}

impl PlacementConfig {
    /// The policy of a class.
    pub fn policy(&self, kind: ClassKind) -> &ClassPolicy {
        &self.classes[kind as usize]
    }

    /// Checks weights and ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for kind in ClassKind::ALL {
            let p = self.policy(kind);
            let w = p.weights;
            let parts = [
                ("cost", w.cost),
                ("latency", w.latency),
                ("reputation", w.reputation),
                ("load", w.load),
                ("tier", w.tier),
                ("cold_penalty", p.cold_penalty),
            ];
            for (component, value) in parts {
                if !(value.is_finite() && (0.0..=1e6).contains(&value)) {
                    return Err(ConfigError::BadWeight {
                        class: kind.name(),
                        component,
                        value,
                    });
                }
            }
            let sum = w.cost + w.latency + w.reputation + w.load + w.tier;
            if sum <= 0.0 {
                return Err(ConfigError::BadWeight {
                    class: kind.name(),
                    component: "sum",
                    value: sum,
                });
            }
            range(
                "min_reputation_bp",
                f64::from(p.min_reputation_bp),
                0.0,
                10_000.0,
            )?;
            range("min_uptime_bp", f64::from(p.min_uptime_bp), 0.0, 10_000.0)?;
        }
        range("coordinator.lat", self.coordinator.lat, -90.0, 90.0)?;
        range("coordinator.lon", self.coordinator.lon, -180.0, 180.0)?;
        range("latency.path_stretch", self.latency.path_stretch, 1.0, 10.0)?;
        range(
            "latency.cold_load_mb_per_s",
            self.latency.cold_load_mb_per_s,
            1.0,
            1e6,
        )?;
        range(
            "latency.throughput_alpha",
            self.latency.throughput_alpha,
            1e-3,
            1.0,
        )?;
        range("queue_factor", f64::from(self.queue_factor), 1.0, 1_000.0)?;
        range("alternates", self.alternates as f64, 0.0, 64.0)?;
        range(
            "cost_ref_per_mtok_micros",
            self.cost_ref_per_mtok_micros as f64,
            1.0,
            1e12,
        )?;
        range(
            "cost_ref_per_hour_micros",
            self.cost_ref_per_hour_micros as f64,
            1.0,
            1e12,
        )?;
        range("latency_ref_ms", self.latency_ref_ms, 1.0, 1e7)?;
        self.cooldown.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_validates_and_bad_values_are_named() {
        assert_eq!(PlacementConfig::default().validate(), Ok(()));
        let mut c = PlacementConfig::default();
        c.classes[1].weights.cost = -1.0;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::BadWeight {
                class: "batch",
                component: "cost",
                ..
            })
        ));
        let mut c = PlacementConfig::default();
        c.classes[0].weights = Weights {
            cost: 0.0,
            latency: 0.0,
            reputation: 0.0,
            load: 0.0,
            tier: 0.0,
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::BadWeight {
                component: "sum",
                ..
            })
        ));
        let mut c = PlacementConfig::default();
        c.latency.path_stretch = 0.5;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::OutOfRange {
                field: "latency.path_stretch",
                ..
            })
        ));
    }
}
