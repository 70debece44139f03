//! A team of threads that runs one forward pass together: every member runs
//! the same layer loop, the matmuls and attention are split into tasks that
//! members claim dynamically, and each task's output goes to a slot that all
//! members read after a barrier. Safe code only: members are scoped threads
//! (`std::thread::scope`), so they borrow the model and the KV cache.
//!
//! The barrier spins briefly and then parks, so a member waiting for a
//! descheduled partner on a busy shared machine gives its core back instead
//! of burning it. Which member runs a task never changes what the task
//! computes, so results do not depend on the team size or on timing.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Most tasks one stage may have.
pub(crate) const MAX_TASKS: usize = 64;
/// How long a member spins at a barrier before parking.
const SPIN: Duration = Duration::from_micros(40);

/// What members share.
struct Shared {
    size: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
    sleepers: AtomicUsize,
    poisoned: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
    next: AtomicUsize,
    slots: [Vec<Mutex<Vec<f32>>>; 2],
}

/// One member's handle.
pub(crate) struct Team<'s> {
    pub(crate) id: usize,
    pub(crate) size: usize,
    shared: &'s Shared,
    stage: std::cell::Cell<usize>,
    base: std::cell::Cell<usize>,
}

/// The slots of a finished stage; valid until two more stages have run.
#[derive(Clone, Copy)]
pub(crate) struct Stage(usize);

/// Run `f` on `threads` members (the caller is member 0); returns member 0's
/// result. A panic in any member is re-raised here after all have stopped.
pub(crate) fn run<R: Send>(threads: usize, f: impl Fn(&Team<'_>) -> R + Sync) -> R {
    let size = threads.max(1);
    let slots = || (0..MAX_TASKS).map(|_| Mutex::new(Vec::new())).collect();
    let shared = Shared {
        size,
        arrived: AtomicUsize::new(0),
        generation: AtomicUsize::new(0),
        sleepers: AtomicUsize::new(0),
        poisoned: AtomicBool::new(false),
        lock: Mutex::new(()),
        wake: Condvar::new(),
        next: AtomicUsize::new(0),
        slots: [slots(), slots()],
    };
    let member = |id: usize| {
        let _guard = PoisonOnPanic(&shared);
        f(&Team {
            id,
            size,
            shared: &shared,
            stage: 0.into(),
            base: 0.into(),
        })
    };
    if size == 1 {
        return member(0);
    }
    std::thread::scope(|s| {
        let others: Vec<_> = (1..size).map(|id| s.spawn(move || member(id))).collect();
        let mine = member(0);
        for h in others {
            if let Err(e) = h.join() {
                std::panic::resume_unwind(e);
            }
        }
        mine
    })
}

/// Wakes and poisons the team if its member unwinds, so no one waits forever.
struct PoisonOnPanic<'s>(&'s Shared);

impl Drop for PoisonOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.poisoned.store(true, Ordering::SeqCst);
            let _l = self.0.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.0.wake.notify_all();
        }
    }
}

impl Team<'_> {
    /// Run `n` tasks (at most [`MAX_TASKS`]) spread over the members:
    /// `work(task, out)` fills the task's slot. Returns after every member
    /// has finished the stage.
    pub(crate) fn tasks(&self, n: usize, mut work: impl FnMut(usize, &mut Vec<f32>)) -> Stage {
        assert!(n <= MAX_TASKS, "{n} tasks in one stage");
        let parity = self.stage.get() % 2;
        self.stage.set(self.stage.get() + 1);
        let slots = &self.shared.slots[parity];
        if self.size == 1 {
            for (t, slot) in slots.iter().enumerate().take(n) {
                let mut v = lock(slot);
                v.clear();
                work(t, &mut v);
            }
            return Stage(parity);
        }
        let base = self.base.get();
        loop {
            let t = self
                .shared
                .next
                .fetch_add(1, Ordering::Relaxed)
                .wrapping_sub(base);
            if t >= n {
                break;
            }
            let mut v = lock(&slots[t]);
            v.clear();
            work(t, &mut v);
        }
        // Every member made exactly one failing claim.
        self.base.set(base.wrapping_add(n + self.size));
        self.barrier();
        Stage(parity)
    }

    /// The output of `task` in a finished stage.
    pub(crate) fn result(&self, stage: Stage, task: usize) -> MutexGuard<'_, Vec<f32>> {
        lock(&self.shared.slots[stage.0][task])
    }

    /// Wait until every member has arrived.
    pub(crate) fn barrier(&self) {
        let sh = self.shared;
        if sh.size == 1 {
            return;
        }
        let gen = sh.generation.load(Ordering::Acquire);
        if sh.arrived.fetch_add(1, Ordering::AcqRel) + 1 == sh.size {
            sh.arrived.store(0, Ordering::Relaxed);
            sh.generation.store(gen.wrapping_add(1), Ordering::SeqCst);
            if sh.sleepers.load(Ordering::SeqCst) > 0 {
                let _l = lock(&sh.lock);
                sh.wake.notify_all();
            }
            return;
        }
        let start = Instant::now();
        let mut spins = 0u32;
        while sh.generation.load(Ordering::Acquire) == gen {
            self.check_poison();
            std::hint::spin_loop();
            spins += 1;
            if spins.is_multiple_of(64) && start.elapsed() > SPIN {
                self.park(gen);
                break;
            }
        }
    }

    fn park(&self, gen: usize) {
        let sh = self.shared;
        let mut l = lock(&sh.lock);
        sh.sleepers.fetch_add(1, Ordering::SeqCst);
        while sh.generation.load(Ordering::SeqCst) == gen {
            self.check_poison();
            l = sh.wake.wait(l).unwrap_or_else(|e| e.into_inner());
        }
        sh.sleepers.fetch_sub(1, Ordering::SeqCst);
    }

    fn check_poison(&self) {
        if self.shared.poisoned.load(Ordering::Relaxed) {
            panic!("another member of the engine's thread team panicked");
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_member_sees_every_task_result() {
        for threads in [1, 2, 3] {
            let sums = run(threads, |team| {
                let mut seen = Vec::new();
                for round in 0..50usize {
                    let n = 1 + round % 7;
                    let st = team.tasks(n, |t, out| out.push((round * 100 + t) as f32));
                    let s: f32 = (0..n).map(|t| team.result(st, t)[0]).sum();
                    seen.push(s);
                }
                seen
            });
            let want: Vec<f32> = (0..50usize)
                .map(|r| (0..1 + r % 7).map(|t| (r * 100 + t) as f32).sum())
                .collect();
            assert_eq!(sums, want, "threads {threads}");
        }
    }

    #[test]
    fn a_panicking_member_does_not_hang_the_team() {
        let r = std::panic::catch_unwind(|| {
            run(2, |team| {
                if team.id == 1 {
                    panic!("boom");
                }
                team.barrier();
            })
        });
        assert!(r.is_err());
    }
}
