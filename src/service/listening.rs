//! `run --listen` and `run --desired`: the org talking to the device, on threads of the run.
//!
//! - The listener thread keeps one Streaming API client for the whole run: the `--listen`
//!   channels (commands into the inbox, run once by its worker) and, with `--desired`, the
//!   record's change events as a doorbell for the follower. One client, so a device holds one
//!   of the org's streaming slots whatever it listens to.
//! - The follower thread reads the record and applies it (`desired/follow.rs`): at start,
//!   after each (re)subscription of the listener, on a change event naming the record, every
//!   `--desired-every`.
//! - Sessions come from the broker's shared agent ([`SharedCaller`]); a pairing found dead is
//!   the supervisor's news; a new pairing stored nudges both threads to try again at once.
//! - The run's [`Stop`] ends both: the held connect is interrupted and the client
//!   disconnected (listen.rs), a program running for a command or a change is stopped and runs
//!   again at the next start.
//!
//! Nothing here parses or decides what an event means (`listen`, `desired`).

use crate::mailbox::Sender;
use std::sync::{Arc, Mutex};

use log::info;
use serde_json::Value;

use super::shared_caller::{Died, SharedCaller};
use super::{MakeAgent, OutboxRun};
#[cfg(feature = "desired")]
use crate::desired::{self, follow::Follower};
use crate::error::Error;
use crate::listen::{self, Doorbell, Hookup, Listener};
use crate::stop::{Bell, Stop};
use crate::time::SystemClock;

/// The running listener and follower, for health and the supervisor.
pub struct Handle {
    listener: Arc<Listener>,
    #[cfg(feature = "desired")]
    follower: Option<Arc<Follower>>,
    nudge: Arc<Bell>,
}

impl Handle {
    /// A pairing was stored: what waits for a session tries again now.
    pub fn paired(&self) {
        self.nudge.ring();
        #[cfg(feature = "desired")]
        if let Some(f) = &self.follower {
            f.ring();
        }
    }

    /// Adds the `listen` and `desired` parts to a health answer.
    pub fn add_health(&self, value: &mut Value) {
        if !self.listener.options.channels.is_empty() {
            value["listen"] = self.listener.health();
        }
        #[cfg(feature = "desired")]
        if let Some(f) = &self.follower {
            value["desired"] = f.health();
        }
    }
}

/// What the threads need from the run.
pub struct Start<'a> {
    pub listen: listen::Options,
    #[cfg(feature = "desired")]
    pub desired: Option<desired::Options>,
    pub outbox: Option<&'a OutboxRun>,
    pub shared: &'a Arc<Mutex<crate::broker::Shared>>,
    pub make_agent: &'a MakeAgent,
    /// Builds the hook that tells the supervisor a pairing died.
    pub died: &'a dyn Fn() -> Died,
    pub stop: &'a Stop,
    /// Held by each thread until it ends.
    pub running: &'a Sender<()>,
}

/// Opens the inbox (and the results' outbox) and starts the threads. An inbox or an outbox
/// that cannot be opened stops the run at start: `--listen` and `--results` were asked for.
pub fn start(s: Start<'_>) -> Result<Handle, Error> {
    let results = match (&s.listen.results, s.outbox) {
        (Some(_), Some(run)) => Some(Mutex::new(run.place.open()?)),
        (Some(_), None) => {
            return Err(Error::config(
                "--results needs an outbox: pass --outbox DIR or set SFPAIR_OUTBOX",
            ));
        }
        (None, _) => None,
    };
    let listener = Arc::new(Listener::open(s.listen.clone())?);
    #[cfg(feature = "desired")]
    let follower = start_follower(&s)?;
    let nudge = Arc::new(Bell::new(s.stop));

    let mut caller = SharedCaller::new(Arc::clone(s.shared), (s.make_agent)()?, Some((s.died)()));
    let stop = s.stop.clone();
    let running = s.running.clone();
    let (thread_listener, thread_nudge) = (Arc::clone(&listener), Arc::clone(&nudge));
    #[cfg(feature = "desired")]
    let thread_follower = follower.clone();
    spawn("sfpair-listen", move || {
        let _running = running;
        let out = Mutex::new(std::io::stdout());
        let clock = SystemClock::new();
        #[cfg(feature = "desired")]
        let (ring, subscribed) = (
            |e: &listen::bayeux::Delivered| {
                if let Some(f) = &thread_follower {
                    f.on_change(e);
                }
            },
            || {
                if let Some(f) = &thread_follower {
                    f.ring();
                }
            },
        );
        #[cfg(feature = "desired")]
        let doorbell = thread_follower.as_ref().map(|f| Doorbell {
            channel: f.options().target.change_channel(),
            ring: &ring,
            subscribed: &subscribed,
        });
        #[cfg(not(feature = "desired"))]
        let doorbell: Option<Doorbell<'_>> = None;
        let ran = thread_listener.run(Hookup {
            sessions: &mut caller,
            results: results.as_ref(),
            after_results: &|| {},
            out: &out,
            clock: &clock,
            seed: crate::agent::random_seed(),
            doorbell: doorbell.as_ref(),
            nudge: Some(&thread_nudge),
            stop: &stop,
        });
        if let Err(e) = ran {
            log::warn!("the listener stopped: {e}");
        }
    })?;
    if !listener.options.channels.is_empty() {
        info!("listening on {}", listener.options.channels.join(", "));
    }
    Ok(Handle {
        listener,
        #[cfg(feature = "desired")]
        follower,
        nudge,
    })
}

/// The follower's thread, with `--desired`.
#[cfg(feature = "desired")]
fn start_follower(s: &Start<'_>) -> Result<Option<Arc<Follower>>, Error> {
    let Some(options) = s.desired.clone() else {
        return Ok(None);
    };
    info!(
        "following {} into {}",
        options.target.describe(),
        options.file.display()
    );
    let follower = Arc::new(Follower::new(options, s.stop));
    let mut caller = SharedCaller::new(Arc::clone(s.shared), (s.make_agent)()?, None);
    let (thread_follower, stop, running) =
        (Arc::clone(&follower), s.stop.clone(), s.running.clone());
    spawn("sfpair-desired", move || {
        let _running = running;
        thread_follower.run(&mut caller, &SystemClock::new(), &stop);
    })?;
    Ok(Some(follower))
}

fn spawn(name: &str, work: impl FnOnce() + Send + 'static) -> Result<(), Error> {
    std::thread::Builder::new()
        .name(name.into())
        .stack_size(crate::http::THREAD_STACK)
        .spawn(work)
        .map(drop)
        .map_err(|e| Error::config(format!("cannot start the {name} thread: {e}")))
}
