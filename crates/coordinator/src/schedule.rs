//! Placement: which live provider gets a job. Pure, no I/O, so the policy can
//! be tested on its own (latency-, price- and trust-aware scoring comes with
//! the scheduling issue; today it is least-loaded among those that serve the
//! model and have not already failed this job).

/// What the scheduler knows about one candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// Provider key.
    pub key: &'a str,
    /// Jobs now assigned.
    pub in_flight: u32,
    /// Jobs it runs at once.
    pub max_concurrent: u32,
}

/// How many jobs may queue at a provider per slot before it counts as full.
pub const QUEUE_FACTOR: u32 = 4;

/// Picks the least-loaded candidate not in `exclude`, by load ratio then key
/// (deterministic). `None` if every candidate is excluded or full.
pub fn choose(cands: &[Candidate<'_>], exclude: &[String]) -> Option<usize> {
    cands
        .iter()
        .enumerate()
        .filter(|(_, c)| !exclude.iter().any(|e| e == c.key))
        .filter(|(_, c)| c.in_flight < c.max_concurrent.max(1) * QUEUE_FACTOR)
        .min_by(|(_, a), (_, b)| {
            // Compare a.in_flight/a.max vs b.in_flight/b.max without floats.
            let la = u64::from(a.in_flight) * u64::from(b.max_concurrent.max(1));
            let lb = u64::from(b.in_flight) * u64::from(a.max_concurrent.max(1));
            la.cmp(&lb).then_with(|| a.key.cmp(b.key))
        })
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(key: &str, in_flight: u32, max: u32) -> Candidate<'_> {
        Candidate {
            key,
            in_flight,
            max_concurrent: max,
        }
    }

    #[test]
    fn picks_least_loaded_then_key() {
        let cs = [c("b", 1, 1), c("a", 0, 1), c("c", 0, 1)];
        assert_eq!(choose(&cs, &[]), Some(1));
        let cs = [c("b", 1, 2), c("a", 1, 1)];
        assert_eq!(choose(&cs, &[]), Some(0));
    }

    #[test]
    fn excludes_and_full() {
        let cs = [c("a", 0, 1), c("b", 4, 1)];
        assert_eq!(choose(&cs, &["a".into()]), None);
        assert_eq!(choose(&cs, &[]), Some(0));
        assert_eq!(choose(&[], &[]), None);
    }
}
