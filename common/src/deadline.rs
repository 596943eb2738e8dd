//! The time an operation may take, and bounded waiting within it.
//!
//! Every wait in every agent goes through a [`Deadline`]: polling for a device
//! to appear, retrying an umount, a child process. Nothing loops "until it
//! works"; when the deadline passes the agent answers with what it knows, so
//! the cluster manager hears from us before its own timer fires.

use std::time::{Duration, Instant};

/// Time kept back from the caller's timeout for reporting the result:
/// a twentieth of it, at most this much.
const MAX_MARGIN: Duration = Duration::from_secs(2);

/// `at + d`, saturating: a duration too long for the clock ends "never"
/// (as far ahead as the clock goes) instead of panicking.
fn later(at: Instant, d: Duration) -> Instant {
    at.checked_add(d).unwrap_or_else(|| {
        // halve until it fits: the furthest instant the clock can hold
        let mut step = d;
        let mut end = at;
        while !step.is_zero() {
            if let Some(e) = end.checked_add(step) {
                end = e;
            } else {
                step /= 2;
            }
        }
        end
    })
}

#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    start: Instant,
    end: Instant,
    total: Duration,
}

impl Deadline {
    /// A deadline of `total` counted from `start`, less a small margin.
    pub fn new(start: Instant, total: Duration) -> Deadline {
        let margin = (total / 20).min(MAX_MARGIN);
        Deadline {
            start,
            end: later(start, total - margin),
            total,
        }
    }

    /// A deadline `total` from now, without margin (for sub-budgets).
    pub fn after(total: Duration) -> Deadline {
        let now = Instant::now();
        Deadline {
            start: now,
            end: later(now, total),
            total,
        }
    }

    /// The whole timeout this deadline was made from.
    pub fn total(&self) -> Duration {
        self.total
    }

    pub fn remaining(&self) -> Duration {
        self.end.saturating_duration_since(Instant::now())
    }

    pub fn expired(&self) -> bool {
        Instant::now() >= self.end
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// A deadline ending `reserve` before this one (at once if less is
    /// left): for a first phase that must leave time for a second one.
    pub fn reserving(&self, reserve: Duration) -> Deadline {
        let end = self
            .end
            .checked_sub(reserve)
            .unwrap_or(self.end)
            .max(Instant::now().min(self.end));
        Deadline {
            start: self.start,
            end,
            total: end.saturating_duration_since(self.start),
        }
    }

    /// Run `f` on a helper thread and wait for its result until this
    /// deadline (but at least `floor`, so a nearly spent deadline still
    /// gets a short answer). `None` when it did not answer in time: the
    /// thread is left behind (a blocked read of dead storage, a name
    /// server or libvirtd that does not answer) and dies with the process,
    /// which exits right after it answers the cluster manager.
    pub fn on_thread<T, F>(&self, floor: Duration, f: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .spawn(move || {
                let _ = tx.send(f());
            })
            .ok()?;
        rx.recv_timeout(self.remaining().max(floor)).ok()
    }

    /// A deadline at most `limit` from now and never past this one.
    pub fn capped(&self, limit: Duration) -> Deadline {
        let now = Instant::now();
        let end = later(now, limit).min(self.end);
        Deadline {
            start: now,
            end,
            total: end.saturating_duration_since(now),
        }
    }

    /// Sleep `d`, or until the deadline if that comes first. Returns false
    /// when the deadline has passed.
    pub fn sleep(&self, d: Duration) -> bool {
        let d = d.min(self.remaining());
        if !d.is_zero() {
            std::thread::sleep(d);
        }
        !self.expired()
    }

    /// Call `check` every `poll` until it returns `Some`, or the deadline
    /// passes (then `None`). `check` runs at least once.
    pub fn wait_for<T>(&self, poll: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
        loop {
            if let Some(v) = check() {
                return Some(v);
            }
            if self.expired() || !self.sleep(poll) {
                return check();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_is_a_twentieth_capped_at_two_seconds() {
        let t0 = Instant::now();
        let d = Deadline::new(t0, Duration::from_secs(10));
        assert_eq!(d.end - t0, Duration::from_millis(9500));
        let d = Deadline::new(t0, Duration::from_secs(120));
        assert_eq!(d.end - t0, Duration::from_secs(118));
        assert_eq!(d.total(), Duration::from_secs(120));
    }

    #[test]
    fn durations_past_the_clock_saturate() {
        let t0 = Instant::now();
        let d = Deadline::new(t0, Duration::MAX);
        assert!(!d.expired());
        assert!(d.remaining() > Duration::from_secs(1 << 40));
        let d = Deadline::after(Duration::MAX);
        assert!(!d.expired());
        let c = d.capped(Duration::MAX);
        assert!(!c.expired());
        assert!(d.capped(Duration::from_secs(1)).remaining() <= Duration::from_secs(1));
        assert!(!d.reserving(Duration::from_secs(1)).expired());
    }

    #[test]
    fn wait_for_gives_up_at_the_deadline() {
        let d = Deadline::after(Duration::from_millis(150));
        let t = Instant::now();
        let mut calls = 0;
        let r: Option<()> = d.wait_for(Duration::from_millis(20), || {
            calls += 1;
            None
        });
        assert!(r.is_none());
        assert!(t.elapsed() >= Duration::from_millis(150));
        assert!(t.elapsed() < Duration::from_secs(2));
        assert!(calls >= 3);
    }

    #[test]
    fn wait_for_returns_as_soon_as_the_condition_holds() {
        let d = Deadline::after(Duration::from_secs(10));
        let mut n = 0;
        let r = d.wait_for(Duration::from_millis(1), || {
            n += 1;
            (n == 3).then_some(n)
        });
        assert_eq!(r, Some(3));
        assert!(!d.expired());
    }

    #[test]
    fn an_expired_deadline_still_checks_once() {
        let d = Deadline::after(Duration::ZERO);
        assert!(d.expired());
        assert_eq!(d.wait_for(Duration::from_secs(1), || Some(1)), Some(1));
        assert!(!d.sleep(Duration::from_secs(5)));
    }

    #[test]
    fn reserving_and_capping_stay_inside() {
        let d = Deadline::after(Duration::from_secs(10));
        let first = d.reserving(Duration::from_secs(4));
        assert!(first.remaining() <= Duration::from_secs(6));
        assert!(first.remaining() > Duration::from_secs(5));
        let tiny = d.reserving(Duration::from_secs(60));
        assert!(tiny.expired());
        let capped = d.capped(Duration::from_secs(1));
        assert!(capped.remaining() <= Duration::from_secs(1));
        let capped = d.capped(Duration::from_secs(100));
        assert!(capped.remaining() <= Duration::from_secs(10));
    }

    #[test]
    fn on_thread_answers_or_gives_up_at_the_deadline() {
        let d = Deadline::after(Duration::from_millis(200));
        assert_eq!(d.on_thread(Duration::ZERO, || 7), Some(7));
        let t = Instant::now();
        let r = d.on_thread(Duration::ZERO, || {
            std::thread::sleep(Duration::from_secs(5));
            1
        });
        assert_eq!(r, None);
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        // a spent deadline still waits for the floor
        let spent = Deadline::after(Duration::ZERO);
        assert_eq!(spent.on_thread(Duration::from_millis(500), || 3), Some(3));
    }
}
