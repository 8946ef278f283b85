//! `sfpair listen CHANNEL…`: the listener in the foreground, until SIGTERM or SIGINT. Events are
//! printed as JSON lines on standard output, or run with `--exec`; with `--results`, each
//! outcome is queued in the outbox and delivered at once (what cannot go now stays queued for
//! `sfpair run` or `sfpair outbox flush`).
//!
//! The listener itself is `listen/`; this file only wires it to the agent, the outbox, standard
//! output and the signals.

use std::io::Write;
use std::sync::Mutex;

use log::{info, warn};

use super::Backends;
use super::outbox::Place;
use crate::agent::{Agent, random_seed};
use crate::delivery;
use crate::error::Error;
use crate::listen::{Hookup, Listener};
use crate::stop::Stop;
use crate::time::{Clock, SystemClock};

/// `listen`'s options.
#[derive(Clone, Debug)]
pub struct Options {
    pub listen: crate::listen::Options,
    /// The outbox the results go to (`--results`).
    pub outbox: Option<Place>,
    pub delivery: delivery::Options,
}

/// Standard output, shared by the worker's event lines.
struct Out<'a>(&'a mut (dyn Write + Send));

impl Write for Out<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Listens until SIGTERM or SIGINT; exit 0.
pub fn run(
    mut agent: Agent,
    backends: &Backends,
    options: &Options,
    out: &mut (dyn Write + Send),
) -> Result<u8, Error> {
    let stop = Stop::new();
    crate::broker::stop_on_signals(&stop)?;
    agent.set_stop(stop.clone());
    agent.stored()?;
    agent.wait_for_clock(backends.wait_for_clock)?;
    let listener = Listener::open(options.listen.clone())?;
    let outbox = match (&options.listen.results, &options.outbox) {
        (Some(_), Some(place)) => Some(Mutex::new(place.open()?)),
        (Some(_), None) => {
            return Err(Error::config(
                "--results needs an outbox: pass --outbox DIR or set SFPAIR_OUTBOX",
            ));
        }
        (None, _) => None,
    };
    // Results go out as soon as they are queued, on an agent of their own.
    let courier = Mutex::new(match &outbox {
        Some(_) => Some(backends.agent()?),
        None => None,
    });
    let deliver = || {
        let (Some(outbox), Some(agent)) = (&outbox, &mut *lock(&courier)) else {
            return;
        };
        let clock = SystemClock::new();
        let flushed = delivery::flush(
            &mut lock(outbox),
            agent,
            options.delivery.clone(),
            &mut || clock.unix_time().as_secs(),
            &mut |d| {
                stop.sleep(d);
            },
            random_seed(),
        );
        if let Err(e) = flushed {
            warn!("listen: the results stay queued: {e}");
        }
    };
    info!(
        "listening on {} (inbox {})",
        options.listen.channels.join(", "),
        options.listen.inbox.display()
    );
    let out = Mutex::new(Out(out));
    let clock = SystemClock::new();
    listener.run(Hookup {
        sessions: &mut agent,
        results: outbox.as_ref(),
        after_results: &deliver,
        out: &out,
        clock: &clock,
        seed: random_seed(),
        doorbell: None,
        nudge: None,
        stop: &stop,
    })?;
    Ok(0)
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
