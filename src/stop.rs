//! A stop request that every wait can see: set it once ([`Stop::stop`]) and every sleep that
//! watches it ([`Stop::sleep`]) returns at once, every loop that checks it ends at its next step.
//! `sfpair run` sets one on SIGTERM; an embedder passes one to [`Agent::set_stop`] to cancel a
//! pairing.
//!
//! A condition variable, not polling: a waiting thread sleeps until the deadline or the stop,
//! with no wake-ups between. A wait that cannot sleep on it (a poll(2) over descriptors) asks
//! for a hook ([`Stop::on_stop`]) that wakes it, such as a byte down its pipe. Not for signal
//! handlers (it takes a mutex): a handler wakes a thread that calls [`Stop::stop`].
//!
//! [`Agent::set_stop`]: crate::agent::Agent::set_stop

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::error::{Error, ErrorKind};

/// A shared stop request; clones share it.
#[derive(Clone, Default)]
pub struct Stop {
    inner: Arc<(Mutex<State>, Condvar)>,
}

/// Whether a stop was asked for, and who else must hear of it.
#[derive(Default)]
struct State {
    stopped: bool,
    hooks: Vec<Box<dyn FnOnce() + Send>>,
}

impl Stop {
    /// A stop request not yet made.
    pub fn new() -> Stop {
        Stop::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks everything watching this to stop: wakes every sleeper and runs every hook, once.
    pub fn stop(&self) {
        let hooks = {
            let mut state = self.state();
            if state.stopped {
                return;
            }
            state.stopped = true;
            std::mem::take(&mut state.hooks)
        };
        self.inner.1.notify_all();
        // Outside the lock: a hook may look at this stop again.
        for hook in hooks {
            hook();
        }
    }

    /// Runs `hook` once when a stop is asked for, or at once if it was: for a wait that cannot
    /// sleep on this one (a poll(2) over descriptors), which the hook wakes. It must be quick.
    pub fn on_stop(&self, hook: impl FnOnce() + Send + 'static) {
        let mut state = self.state();
        if state.stopped {
            drop(state);
            hook();
        } else {
            state.hooks.push(Box::new(hook));
        }
    }

    /// Whether a stop was asked for.
    pub fn is_stopped(&self) -> bool {
        self.state().stopped
    }

    /// Sleeps for `d`, or until a stop is asked for; `true` when stopped.
    pub fn sleep(&self, d: Duration) -> bool {
        let (state, wake) = &*self.inner;
        let guard = state.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) = wake
            .wait_timeout_while(guard, d, |s| !s.stopped)
            .unwrap_or_else(|p| p.into_inner());
        guard.stopped
    }

    /// `Err(Stopped)` once a stop was asked for: for loops between their steps.
    pub fn check(&self, doing: &str) -> Result<(), Error> {
        if self.is_stopped() {
            return Err(stopped(doing));
        }
        Ok(())
    }
}

/// A doorbell for one waiting thread that also obeys a [`Stop`]: [`Bell::ring`] wakes it,
/// [`Stop::stop`] too, and a ring while nobody waits is kept until the next wait. It shares the
/// stop's condition variable, so a waiter sleeps until one of the two, with no polling.
pub struct Bell {
    stop: Stop,
    rung: std::sync::atomic::AtomicBool,
}

impl Bell {
    /// A bell that also wakes on `stop`.
    pub fn new(stop: &Stop) -> Bell {
        Bell {
            stop: stop.clone(),
            rung: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Wakes the waiter (now, or at its next wait).
    pub fn ring(&self) {
        let (lock, wake) = &*self.stop.inner;
        let _held = lock.lock().unwrap_or_else(|p| p.into_inner());
        self.rung.store(true, std::sync::atomic::Ordering::SeqCst);
        wake.notify_all();
    }

    /// Waits for a ring, the stop, or `limit`; `true` when stopped. Takes the ring.
    pub fn wait_at_most(&self, limit: Duration) -> bool {
        let (stopped, wake) = &*self.stop.inner;
        let guard = stopped.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) = wake
            .wait_timeout_while(guard, limit, |s| {
                !s.stopped && !self.rung.load(std::sync::atomic::Ordering::SeqCst)
            })
            .unwrap_or_else(|p| p.into_inner());
        self.rung.store(false, std::sync::atomic::Ordering::SeqCst);
        guard.stopped
    }

    /// Waits for a ring or the stop; `true` when stopped. Takes the ring.
    pub fn wait(&self) -> bool {
        let (stopped, wake) = &*self.stop.inner;
        let guard = stopped.lock().unwrap_or_else(|p| p.into_inner());
        let guard = wake
            .wait_while(guard, |s| {
                !s.stopped && !self.rung.load(std::sync::atomic::Ordering::SeqCst)
            })
            .unwrap_or_else(|p| p.into_inner());
        self.rung.store(false, std::sync::atomic::Ordering::SeqCst);
        guard.stopped
    }
}

/// The error a stopped wait or loop ends with.
pub fn stopped(doing: &str) -> Error {
    Error::new(ErrorKind::Stopped, format!("stopped while {doing}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_sleep_ends_at_its_deadline_or_at_once_when_stopped() {
        let stop = Stop::new();
        assert!(!stop.sleep(Duration::from_millis(1)));
        assert!(stop.check("waiting").is_ok());
        let other = stop.clone();
        let sleeper = std::thread::spawn(move || other.sleep(Duration::from_secs(600)));
        stop.stop();
        assert!(
            sleeper.join().unwrap(),
            "woken by the stop, not the deadline"
        );
        let started = Instant::now();
        assert!(
            stop.sleep(Duration::from_secs(600)),
            "already stopped: no sleep at all"
        );
        assert!(started.elapsed() < Duration::from_secs(600));
        let e = stop.check("pairing").unwrap_err();
        assert_eq!((e.kind(), e.exit_code()), (ErrorKind::Stopped, 0));
        assert_eq!(e.message(), "stopped while pairing");
    }

    #[test]
    fn a_bell_wakes_its_waiter_and_keeps_a_ring_made_before_the_wait() {
        let stop = Stop::new();
        let bell = std::sync::Arc::new(Bell::new(&stop));
        bell.ring();
        assert!(!bell.wait(), "the early ring is kept, and it is not a stop");
        let waiter = {
            let bell = std::sync::Arc::clone(&bell);
            std::thread::spawn(move || bell.wait())
        };
        bell.ring();
        assert!(!waiter.join().unwrap());
        let waiter = {
            let bell = std::sync::Arc::clone(&bell);
            std::thread::spawn(move || bell.wait())
        };
        stop.stop();
        assert!(waiter.join().unwrap(), "the stop wakes it too");
    }

    #[test]
    fn hooks_run_once_at_the_stop_or_at_once_when_it_came_before() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let stop = Stop::new();
        let heard = Arc::new(AtomicU32::new(0));
        let h = Arc::clone(&heard);
        stop.on_stop(move || {
            h.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(heard.load(Ordering::SeqCst), 0, "not before the stop");
        stop.clone().stop();
        stop.stop();
        assert_eq!(
            heard.load(Ordering::SeqCst),
            1,
            "once, however often stopped"
        );
        let h = Arc::clone(&heard);
        stop.on_stop(move || {
            h.fetch_add(10, Ordering::SeqCst);
        });
        assert_eq!(heard.load(Ordering::SeqCst), 11, "a late hook runs at once");
    }
}
