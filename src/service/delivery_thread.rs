//! `sfpair run`'s delivery thread: delivers the outbox soon after records arrive, in batches,
//! and keeps trying for as long as the service runs.
//!
//! - It wakes when the outbox's directory changes (inotify: a `sfpair send` of another process,
//!   or the broker's `send`), when poked (a pairing completed), when a retry is due, and, as a
//!   safety net where inotify is missing, every [`IDLE_CHECK`]. After a wake it waits
//!   [`LINGER`] so a burst of sends goes out as one batch.
//! - Sessions come from the broker's shared agent (one refresh for everyone; a 401 refreshes
//!   once, as for a broker client); requests go over the thread's own pooled connection, so a
//!   slow org never holds the lock the broker's clients wait on.
//! - The figures health shows (queue depth, dead letters, paused or not) are kept in the
//!   supervisor's status before delivering and after every round (so a slow request does not
//!   leave health saying nothing is queued); health never reads the outbox itself.
//! - Another process may hold the deliver lock (an `outbox flush`, or the previous `run` still
//!   stopping): then this one queues only, and takes the lock over as soon as it is free (the
//!   other's close of `deliver.lock` wakes the directory watch; [`LOCK_RETRY`] bounds the wait).
//! - The run's [`Stop`] ends every wait (a byte down the same pipe as the pokes) and the rounds
//!   between two batches (docs/run.md, "Stopping").
//!
//! Nothing here decides what a reply means (`delivery`, `delivery::batch`) or when to
//! retry (`delivery::pace`).

use crate::mailbox::Sender;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use log::{info, warn};
use serde_json::json;

use super::shared_caller::SharedCaller;
use crate::agent::Agent;
use crate::broker::{Shared, lock};
use crate::delivery::pace::{Pace, Policy};
use crate::delivery::{self, Deliverer, Round};
use crate::error::Error;
use crate::health::RunStatus;
use crate::outbox::{DeliverLock, Outbox};
use crate::stop::Stop;
use crate::time::{Clock, SystemClock};

/// After a wake, wait this long for more records before sending.
pub const LINGER: Duration = Duration::from_millis(200);
/// Look at the outbox at least this often even without a wake (no inotify, or a missed one).
pub const IDLE_CHECK: Duration = Duration::from_secs(300);
/// While another process holds the deliver lock, try it again at least this often.
pub const LOCK_RETRY: Duration = Duration::from_secs(1);

/// Wakes the delivery thread (`poke`), through a pipe it polls; the run's [`Stop`] ends it
/// through the same pipe.
pub struct Handle {
    poker: Poker,
}

impl Handle {
    /// Something that wakes the thread, for whoever learns of new work (a pairing).
    pub fn poker(&self) -> Poker {
        self.poker.clone()
    }
}

/// Wakes the delivery thread.
#[derive(Clone)]
pub struct Poker(Arc<OwnedFd>);

impl Poker {
    pub fn poke(&self) {
        self.send(b'p');
    }

    fn send(&self, byte: u8) {
        // SAFETY: writing one byte from a valid buffer to a descriptor we own.
        let _ = unsafe { libc::write(self.0.as_raw_fd(), (&byte as *const u8).cast(), 1) };
    }
}

/// Told when delivery finds the pairing dead (a refresh refused): the supervisor's news.
pub use super::shared_caller::Died;

/// Starts the thread over `outbox`; it ends when `stop` is set, dropping `running` then.
#[allow(clippy::too_many_arguments)]
pub fn start(
    outbox: Outbox,
    options: delivery::Options,
    shared: Arc<Mutex<Shared>>,
    sender: Agent,
    status: Arc<Mutex<RunStatus>>,
    died: Died,
    stop: Stop,
    running: Sender<()>,
) -> Result<Handle, Error> {
    let (read, write) = pipe()?;
    let watch = watch(&outbox);
    let poker = Poker(Arc::new(write));
    let waker = poker.clone();
    stop.on_stop(move || waker.send(b's'));
    let mut worker = Worker {
        outbox,
        deliverer: Deliverer::new(options),
        caller: SharedCaller::new(shared, sender, None),
        status,
        clock: SystemClock::new(),
        pace: Pace::new(Policy::RUN, crate::agent::random_seed()),
        paused: None,
        died,
        stop,
    };
    std::thread::Builder::new()
        .name("sfpair-delivery".into())
        .stack_size(crate::http::THREAD_STACK)
        .spawn(move || {
            let _running = running;
            worker.serve(read, watch)
        })
        .map_err(|e| Error::config(format!("cannot start the delivery thread: {e}")))?;
    Ok(Handle { poker })
}

struct Worker {
    outbox: Outbox,
    deliverer: Deliverer,
    caller: SharedCaller,
    status: Arc<Mutex<RunStatus>>,
    clock: SystemClock,
    pace: Pace,
    /// Why delivery waits, while it does.
    paused: Option<String>,
    died: Died,
    /// The run's stop: ends the waits (through the pipe) and the linger.
    stop: Stop,
}

impl Worker {
    fn serve(&mut self, stop: OwnedFd, watch: Option<OwnedFd>) {
        let Some(_lock) = self.deliver_lock(&stop, watch.as_ref()) else {
            return;
        };
        let mut wait = Some(Duration::ZERO);
        loop {
            match wake(&stop, watch.as_ref(), wait.unwrap_or(IDLE_CHECK)) {
                Woke::Stop => return,
                Woke::Changed => {
                    if self.stop.sleep(LINGER) {
                        return;
                    }
                }
                Woke::Timeout => {}
            }
            self.publish();
            wait = self.deliver();
            self.publish();
        }
    }

    /// The deliver lock, at once or as soon as the process that holds it lets go (an `outbox
    /// flush`, or the previous `run` still stopping): its close of `deliver.lock` wakes the
    /// directory watch, and [`LOCK_RETRY`] bounds the wait where there is none. `None` when
    /// stopped, or when the lock cannot be taken at all (then only the stop is waited for).
    fn deliver_lock(&mut self, stop: &OwnedFd, watch: Option<&OwnedFd>) -> Option<DeliverLock> {
        let mut waiting = false;
        loop {
            match self.outbox.try_deliver_lock() {
                Ok(Some(lock)) => {
                    if waiting {
                        info!("outbox: the other deliverer let go; delivering from here now");
                        self.paused = None;
                    }
                    return Some(lock);
                }
                Ok(None) if !waiting => {
                    warn!(
                        "outbox {}: another sfpair delivers from it (an `outbox flush`, or the \
                         previous run still stopping); this one queues, and delivers as soon \
                         as the other lets go",
                        self.outbox.dir().display()
                    );
                    waiting = true;
                    self.paused = Some("another process is delivering from this outbox".into());
                    self.publish();
                }
                Ok(None) => {}
                Err(e) => {
                    warn!("outbox: {e}; delivery is off");
                    while !matches!(wake(stop, None, Duration::from_secs(3600)), Woke::Stop) {}
                    return None;
                }
            }
            if matches!(wake(stop, watch, LOCK_RETRY), Woke::Stop) {
                return None;
            }
        }
    }

    /// Rounds until the outbox is empty or must wait; the wait, or `None` when empty.
    fn deliver(&mut self) -> Option<Duration> {
        // Bounded: each round settles at least one record or returns a wait; a stop ends it
        // between rounds.
        loop {
            if self.stop.is_stopped() {
                return None;
            }
            let now = self.clock.unix_time().as_secs();
            let round = self
                .deliverer
                .round(&mut self.outbox, &mut self.caller, now);
            match round {
                Ok(Round::Idle) => {
                    self.pace.progress();
                    self.paused = None;
                    return None;
                }
                Ok(Round::Progress { .. }) => {
                    self.pace.progress();
                    self.paused = None;
                    self.publish();
                }
                Ok(Round::Failed(why)) => {
                    let wait = self.pace.failed();
                    return Some(self.pause(wait, &why));
                }
                Ok(Round::Limited {
                    retry_after, why, ..
                }) => {
                    let wait = self.pace.limited(retry_after);
                    return Some(self.pause(wait, &why));
                }
                Err(e) => {
                    if crate::refusal::is_death(&e) {
                        (self.died)(&e);
                    }
                    let wait = self.pace.failed();
                    return Some(self.pause(wait, e.message()));
                }
            }
        }
    }

    fn pause(&mut self, wait: Duration, why: &str) -> Duration {
        warn!(
            "outbox: {why}; delivering again in {} s",
            wait.as_secs().max(1)
        );
        self.paused = Some(why.to_string());
        wait
    }

    /// The health figures, into the supervisor's status.
    fn publish(&mut self) {
        let now = self.clock.unix_time().as_secs();
        let figures = match self.outbox.status() {
            Ok(s) => {
                let mut v = s.figures(now);
                v["paused"] = json!(self.paused);
                v
            }
            Err(e) => json!({ "error": e.message() }),
        };
        lock(&self.status).outbox = Some(figures);
    }
}

enum Woke {
    Stop,
    Changed,
    Timeout,
}

/// Waits for the pipe, the directory watch or the timeout; drains what woke it.
fn wake(stop: &OwnedFd, watch: Option<&OwnedFd>, timeout: Duration) -> Woke {
    let mut fds = vec![libc::pollfd {
        fd: stop.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }];
    if let Some(w) = watch {
        fds.push(libc::pollfd {
            fd: w.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
    }
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs for the whole call.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if n <= 0 {
        return Woke::Timeout;
    }
    let mut woke = Woke::Timeout;
    if fds[0].revents != 0 {
        let mut byte = [0u8; 64];
        // SAFETY: reading into a valid buffer of that length from a descriptor we own.
        let got = unsafe { libc::read(stop.as_raw_fd(), byte.as_mut_ptr().cast(), byte.len()) };
        if got <= 0 || byte[..got as usize].contains(&b's') {
            return Woke::Stop;
        }
        woke = Woke::Changed;
    }
    if let (Some(w), Some(pfd)) = (watch, fds.get(1))
        && pfd.revents != 0
    {
        drain(w);
        woke = Woke::Changed;
    }
    woke
}

fn drain(fd: &OwnedFd) {
    let mut buf = [0u8; 4096];
    // Bounded: the descriptor is non-blocking, and each read takes what is queued.
    for _ in 0..64 {
        // SAFETY: reading into a valid buffer of that length from a descriptor we own.
        let got = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if got <= 0 {
            break;
        }
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), Error> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Error::config(format!(
            "cannot make the delivery thread's pipe: {}",
            io::Error::last_os_error()
        )));
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open and ours alone.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// An inotify watch on the outbox's directory, or `None` (then [`IDLE_CHECK`] and pokes).
fn watch(outbox: &Outbox) -> Option<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let dir = std::ffi::CString::new(outbox.dir().as_os_str().as_bytes()).ok()?;
    // SAFETY: no pointers; the result is checked.
    let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    // SAFETY: inotify_init1 returned a new descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mask = libc::IN_CLOSE_WRITE | libc::IN_MODIFY | libc::IN_MOVED_TO;
    // SAFETY: `dir` is a valid NUL-terminated path for the whole call.
    let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), dir.as_ptr(), mask) };
    if wd < 0 {
        info!(
            "outbox: cannot watch {} ({}); checking it every {} s",
            outbox.dir().display(),
            io::Error::last_os_error(),
            IDLE_CHECK.as_secs()
        );
        return None;
    }
    Some(fd)
}
