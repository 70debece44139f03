//! What the proxy does to the traffic: one-way delay, jitter, loss and the
//! seed that makes a run reproducible. Validated before a proxy starts so a
//! nonsensical setting fails loudly instead of panicking in a pipe task.

use std::time::Duration;

use crate::error::NetemError;
use crate::schedule::MIN_RTO;

/// Largest supported `one_way_delay + jitter`.
pub const MAX_ONE_WAY: Duration = Duration::from_secs(60);

/// Impairment applied to each direction of every proxied connection.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Impairment {
    /// Fixed delay added to every byte, each direction.
    pub one_way_delay: Duration,
    /// Extra delay, uniform in `[0, jitter]`, drawn per read chunk.
    pub jitter: Duration,
    /// Probability that a TCP segment is lost (`0.0..=1.0`); a lost segment
    /// costs a retransmission timeout, see [`Impairment::rto`].
    pub loss: f64,
    /// Seed of the jitter and loss draws.
    pub seed: u64,
}

impl Default for Impairment {
    /// No impairment: a transparent proxy.
    fn default() -> Self {
        Impairment {
            one_way_delay: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: 0.0,
            seed: 0,
        }
    }
}

impl Impairment {
    /// A fixed one-way delay, no jitter, no loss.
    pub fn delay(one_way_delay: Duration) -> Impairment {
        Impairment {
            one_way_delay,
            ..Impairment::default()
        }
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<(), NetemError> {
        if !(0.0..=1.0).contains(&self.loss) {
            return Err(NetemError::LossOutOfRange { loss: self.loss });
        }
        let total = self.one_way_delay.checked_add(self.jitter);
        if total.is_none_or(|t| t > MAX_ONE_WAY) {
            return Err(NetemError::DelayTooLarge {
                delay: self.one_way_delay,
                jitter: self.jitter,
                max: MAX_ONE_WAY,
            });
        }
        Ok(())
    }

    /// The worst-case round trip the proxy adds: `2 × (delay + jitter)`.
    pub fn rtt(&self) -> Duration {
        (self.one_way_delay + self.jitter) * 2
    }

    /// The retransmission timeout a lost segment costs:
    /// `max(200 ms, 2 × RTT)`, 200 ms being Linux's minimum RTO and twice the
    /// round trip a conservative stand-in for `SRTT + 4 × RTTVAR`.
    pub fn rto(&self) -> Duration {
        (self.rtt() * 2).max(MIN_RTO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_rejects_bad_loss_and_huge_delay() {
        let ok = Impairment::delay(Duration::from_millis(40));
        assert!(ok.validate().is_ok());
        for loss in [-0.1, 1.5, f64::NAN] {
            let bad = Impairment { loss, ..ok };
            assert!(matches!(
                bad.validate(),
                Err(NetemError::LossOutOfRange { .. })
            ));
        }
        let huge = Impairment {
            jitter: Duration::from_secs(61),
            ..ok
        };
        assert!(matches!(
            huge.validate(),
            Err(NetemError::DelayTooLarge { .. })
        ));
    }

    #[test]
    fn rto_has_a_floor_and_follows_the_round_trip() {
        assert_eq!(Impairment::delay(Duration::from_millis(5)).rto(), MIN_RTO);
        let far = Impairment {
            one_way_delay: Duration::from_millis(150),
            jitter: Duration::from_millis(10),
            ..Impairment::default()
        };
        assert_eq!(far.rtt(), Duration::from_millis(320));
        assert_eq!(far.rto(), Duration::from_millis(640));
    }
}
