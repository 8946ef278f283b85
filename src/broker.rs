//! The token broker, `sfpair serve --socket PATH`: it holds the refresh token (through the
//! [`Agent`]) and answers other local processes' requests for an access token and the instance
//! URL over a Unix socket, so the rest of the firmware never reads the store.
//!
//! Who may ask: the socket file is created 0600 (0660 with `--socket-group`, whose gid is then
//! also admitted), and every connection's kernel-reported credentials pass [`peer::Policy`]
//! before a byte of its request is read.
//!
//! Bounded, so that a slow or malicious client cannot block the others or grow memory (idle
//! and trickling clients used to hold the workers):
//! - One thread reads every connection: admitted connections are non-blocking and watched
//!   with poll(2) until their request line is complete; only then is it handed to one of the
//!   [`WORKERS`] threads. A client that sends nothing costs a descriptor and a small buffer,
//!   not a worker, so good clients are answered while it waits.
//! - One request line per connection, at most [`protocol::MAX_LINE`] bytes, complete within
//!   [`REQUEST_TIMEOUT`] of its accept (a deadline over all reads, so trickling bytes does not
//!   extend it), else a `bad_request` answer and close.
//! - At most [`MAX_PENDING_PER_UID`] connections of one user and [`MAX_PENDING`] in all may be
//!   still sending; past that the oldest of them is told `busy` and closed (unless its request
//!   has arrived meanwhile), so a flood of idle connections evicts itself rather than refusing
//!   the next good client. A new connection is read at once: most clients have written their
//!   request before the broker accepts them. At most [`QUEUE`]
//!   complete requests wait for a worker; beyond that a client gets `busy` at once.
//! - Two lanes: `send` requests (records for the outbox: an fsync each, and a wait for the
//!   outbox's lock) have their own queue of [`QUEUE`] and [`SEND_WORKERS`] worker, so a flood
//!   of them never holds the [`WORKERS`] that answer tokens, health and the rest (a token
//!   waited about 4 s behind a flood of sends; `scripts/bench-broker`, BENCHMARKS.md).
//! - Refreshes are serialized behind one mutex and the cached session is reused while it is
//!   valid, so fifty clients at once cause at most one refresh. A failed refresh is remembered
//!   for [`FAILURE_HOLD`] so an outage does not turn every request into three attempts (an
//!   empty store is not: a pairing by another process is picked up at the next request).
//! - Time comes from a [`Clock`] ([`serve_with_clock`]), so the rules are tested without
//!   sleeping.
//!
//! SIGTERM or SIGINT stops accepting, lets the workers finish their request (a refresh that
//! rotated the token finishes storing it), and removes the socket file.
//!
//! This file sets the rules and starts the threads; the parts are in `broker/`: `socket.rs`
//! (where the socket may be, and how it appears with its mode and group), `reader.rs` (the
//! accept-and-read thread), `worker.rs` (parsing and answering), `protocol.rs` (the lines),
//! `peer.rs` (who may ask), `throttle.rs` (rate-limited warnings), `group.rs`
//! (`--socket-group`), `signals.rs`, `hooks.rs` (what `run` adds), `client.rs` (the other
//! side).

pub mod client;
mod group;
pub mod hooks;
pub mod peer;
pub mod protocol;
mod reader;
pub(crate) mod signals;
mod socket;
mod throttle;
mod worker;

pub use group::group_id;

use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use log::info;

use crate::agent::Agent;
use crate::error::Error;
use crate::mailbox::bounded;
use crate::time::{Clock, Instant, SystemClock};
use peer::{Peer, Policy};
use reader::{Lanes, Reader};
use socket::Socket;
use throttle::Throttle;

/// Threads that answer every request but `send`.
pub const WORKERS: usize = 4;
/// Threads that answer `send` requests: one, since pushes to the outbox take its lock one at a
/// time anyway.
pub const SEND_WORKERS: usize = 1;
/// Complete requests waiting for a worker; more get `busy`.
pub const QUEUE: usize = 64;
/// Connections still sending their request line, in all (each holds a descriptor).
pub const MAX_PENDING: usize = 256;
/// Connections of one user still sending their request line.
pub const MAX_PENDING_PER_UID: usize = 64;
/// Connections at once still sending a `send` line longer than an ordinary one: bounds the
/// memory slow senders can hold (this many × `protocol::MAX_SEND_LINE`).
pub const MAX_LONG_PENDING: usize = 4;
/// A client has this long to send its request line.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// After a failed refresh, requests get the same error for this long without a new attempt.
pub const FAILURE_HOLD: Duration = Duration::from_secs(5);

/// How to serve: [`ServeOptions::new`] with the socket's path, then the fields that widen who
/// may ask.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServeOptions {
    /// Where the socket is created (its directory must be safe: `trust.rs`).
    pub socket: PathBuf,
    /// The socket file's group (mode 0660); its gid is admitted too. `None`: mode 0600.
    pub group: Option<u32>,
    /// Users admitted besides root and the broker's own user (`--allow-uid`).
    pub allow_uids: Vec<u32>,
    /// Effective groups admitted (`--allow-gid`).
    pub allow_gids: Vec<u32>,
}

impl ServeOptions {
    /// Serve on `socket`, to root and this user only.
    pub fn new(socket: impl Into<PathBuf>) -> ServeOptions {
        ServeOptions {
            socket: socket.into(),
            group: None,
            allow_uids: Vec::new(),
            allow_gids: Vec::new(),
        }
    }
}

/// Turns SIGTERM and SIGINT into `stop` (for commands other than the broker that run until
/// asked to stop, such as `sfpair listen`): the handlers are installed, and a thread waits on
/// their pipe, sleeping until a signal comes.
pub fn stop_on_signals(stop: &crate::stop::Stop) -> Result<(), Error> {
    let wake = signals::install()
        .map_err(|e| Error::config(format!("cannot install signal handlers: {e}")))?;
    let stop = stop.clone();
    thread::Builder::new()
        .name("sfpair-signals".into())
        .spawn(move || {
            while !signals::requested() {
                let mut fd = libc::pollfd {
                    fd: wake,
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one initialized pollfd, and we pass its count.
                unsafe { libc::poll(&mut fd, 1, -1) };
                let mut sink = [0u8; 64];
                // SAFETY: read(2) into a local buffer of its length, on the non-blocking pipe.
                while unsafe { libc::read(wake, sink.as_mut_ptr().cast(), sink.len()) } > 0 {}
            }
            stop.stop();
        })
        .map_err(|e| Error::config(format!("cannot start the signal thread: {e}")))?;
    Ok(())
}

/// A clock the reader thread and the workers share.
pub type SharedClock = Arc<dyn Clock + Sync>;

/// The agent and the broker's memory of its last failure, shared by the workers and, under
/// `sfpair run`, the supervisor (`service/`) that keeps the pairing alive.
pub struct Shared {
    agent: Agent,
    failure: Option<(Instant, Error)>,
    clock: SharedClock,
}

impl Shared {
    /// The shared state around `agent`, for the broker's threads.
    pub fn new(agent: Agent, clock: SharedClock) -> Arc<Mutex<Shared>> {
        Arc::new(Mutex::new(Shared {
            agent,
            failure: None,
            clock,
        }))
    }

    /// The agent that serves every request (the lock is held by the caller).
    pub fn agent(&mut self) -> &mut Agent {
        &mut self.agent
    }

    /// Forgets a held failure (a new pairing was stored: the next request tries at once).
    pub fn clear_failure(&mut self) {
        self.failure = None;
    }
}

/// A complete request, read by the reader thread, for a worker.
struct Request {
    stream: UnixStream,
    peer: Peer,
    line: Vec<u8>,
}

/// Locks, whatever a panicking holder left: the agent's state stays consistent between calls.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Serves until SIGTERM or SIGINT. Errors only while setting up (socket, signals, threads).
pub fn serve(agent: Agent, options: &ServeOptions) -> Result<(), Error> {
    serve_with_clock(agent, options, Arc::new(SystemClock::new()))
}

/// [`serve`] with the clock for deadlines and holds (tests pass a fake one).
pub fn serve_with_clock(
    agent: Agent,
    options: &ServeOptions,
    clock: SharedClock,
) -> Result<(), Error> {
    let shared = Shared::new(agent, Arc::clone(&clock));
    serve_with(shared, options, Arc::new(hooks::Plain), clock)
}

/// Serves `shared` until SIGTERM or SIGINT, asking `hooks` for what a plain token broker does
/// not know (health, pairing on request, news of a dead pairing).
pub fn serve_with(
    shared: Arc<Mutex<Shared>>,
    options: &ServeOptions,
    hooks: Arc<dyn hooks::Hooks>,
    clock: SharedClock,
) -> Result<(), Error> {
    let wake = signals::install()
        .map_err(|e| Error::config(format!("cannot install signal handlers: {e}")))?;
    let socket = Socket::bind(options)?;
    let mut gids = options.allow_gids.clone();
    gids.extend(options.group);
    let policy = Policy {
        // SAFETY: geteuid has no preconditions and cannot fail.
        server_uid: unsafe { libc::geteuid() },
        uids: options.allow_uids.clone(),
        gids,
    };
    let (queue, waiting) = bounded::<Request>(QUEUE);
    let (send_queue, sends_waiting) = bounded::<Request>(QUEUE);
    let mut workers = Vec::with_capacity(WORKERS + SEND_WORKERS);
    for (lane, waiting, count) in [
        ("broker", waiting, WORKERS),
        ("send", sends_waiting, SEND_WORKERS),
    ] {
        let waiting = Arc::new(Mutex::new(waiting));
        for n in 0..count {
            let (waiting, shared, hooks) = (
                Arc::clone(&waiting),
                Arc::clone(&shared),
                Arc::clone(&hooks),
            );
            let spawned = thread::Builder::new()
                .name(format!("sfpair-{lane}-{n}"))
                .stack_size(crate::http::THREAD_STACK)
                .spawn(move || worker::work(&waiting, &shared, &*hooks))
                .map_err(|e| Error::config(format!("cannot start a worker thread: {e}")))?;
            workers.push(spawned);
        }
    }
    info!(
        "serving access tokens on {} (mode {:o}) to root, uid {}{}{}",
        options.socket.display(),
        socket.mode,
        policy.server_uid,
        listed(" and uids", &policy.uids),
        listed(" and gids", &policy.gids),
    );
    hooks.serving();
    Reader {
        listener: &socket.listener,
        wake,
        policy: &policy,
        lanes: Lanes {
            requests: &queue,
            sends: &send_queue,
        },
        clock: clock.as_ref(),
        hooks: &*hooks,
        pending: Vec::new(),
        refusals: Throttle::new(),
    }
    .run();
    hooks.stopping();
    info!("stopping: finishing the requests in progress");
    drop((queue, send_queue));
    for worker in workers {
        let _ = worker.join();
    }
    drop(socket);
    info!("stopped; removed {}", options.socket.display());
    Ok(())
}

fn listed(label: &str, ids: &[u32]) -> String {
    if ids.is_empty() {
        return String::new();
    }
    let ids: Vec<String> = ids.iter().map(u32::to_string).collect();
    format!("{label} {}", ids.join(","))
}
