//! The token broker, `sfpair serve --socket PATH`: it holds the refresh token (through the
//! [`Agent`]) and answers other local processes' requests for an access token and the instance
//! URL over a Unix socket, so the rest of the firmware never reads the store.
//!
//! Who may ask: the socket file is created 0600 (0660 with `--socket-group`, whose gid is then
//! also admitted), and every connection's kernel-reported credentials pass [`peer::Policy`]
//! before a byte of its request is read.
//!
//! Bounded, so that a slow or malicious client cannot block the others or grow memory (issue
//! 16: idle and trickling clients used to hold the workers):
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
//! - Refreshes are serialized behind one mutex and the cached session is reused while it is
//!   valid, so fifty clients at once cause at most one refresh. A failed refresh is remembered
//!   for [`FAILURE_HOLD`] so an outage does not turn every request into three attempts (an
//!   empty store is not: a pairing by another process is picked up at the next request).
//! - Time comes from a [`Clock`] ([`serve_with_clock`]), so the rules are tested without
//!   sleeping.
//!
//! The socket itself (where it may be, and how it appears with its mode and group) is
//! [`socket`]'s. SIGTERM or SIGINT stops accepting, lets the
//! workers finish their request (a refresh that rotated the token finishes storing it), and
//! removes the socket file.

pub mod client;
pub mod hooks;
pub mod peer;
pub mod protocol;
mod signals;
mod socket;

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};

use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use log::{debug, info, warn};
use zeroize::Zeroizing;

use crate::agent::Agent;
use crate::error::{Error, ErrorKind};
use crate::time::{Clock, Instant, SystemClock};
use peer::{Peer, Policy};
use protocol::Ask;
use socket::Socket;

/// Threads that serve connections.
pub const WORKERS: usize = 4;
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

/// How to serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeOptions {
    pub socket: PathBuf,
    /// The socket file's group (mode 0660); its gid is admitted too. `None`: mode 0600.
    pub group: Option<u32>,
    /// Users admitted besides root and the broker's own user (`--allow-uid`).
    pub allow_uids: Vec<u32>,
    /// Effective groups admitted (`--allow-gid`).
    pub allow_gids: Vec<u32>,
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
    pub fn new(agent: Agent, clock: SharedClock) -> Arc<Mutex<Shared>> {
        Arc::new(Mutex::new(Shared {
            agent,
            failure: None,
            clock,
        }))
    }

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
    let (queue, waiting) = sync_channel::<Request>(QUEUE);
    let waiting = Arc::new(Mutex::new(waiting));
    let mut workers = Vec::with_capacity(WORKERS);
    for n in 0..WORKERS {
        let (waiting, shared, hooks) = (
            Arc::clone(&waiting),
            Arc::clone(&shared),
            Arc::clone(&hooks),
        );
        let spawned = thread::Builder::new()
            .name(format!("sfpair-broker-{n}"))
            .stack_size(crate::http::THREAD_STACK)
            .spawn(move || work(&waiting, &shared, &*hooks))
            .map_err(|e| Error::config(format!("cannot start a worker thread: {e}")))?;
        workers.push(spawned);
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
        queue: &queue,
        clock: clock.as_ref(),
        hooks: &*hooks,
        pending: Vec::new(),
        refusals: Throttle::new(),
    }
    .run();
    info!("stopping: finishing the requests in progress");
    drop(queue);
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

/// A connection that is still sending its request line.
struct Pending {
    stream: UnixStream,
    peer: Peer,
    line: Vec<u8>,
    /// [`REQUEST_TIMEOUT`] after its accept.
    deadline: Instant,
}

/// What a connection's bytes amount to so far.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    Incomplete,
    Complete,
    TooLong,
}

/// Adds bytes read from a connection to its line (the newline and anything after it dropped).
fn feed(line: &mut Vec<u8>, bytes: &[u8]) -> Line {
    let end = bytes.iter().position(|&b| b == b'\n');
    line.extend_from_slice(&bytes[..end.unwrap_or(bytes.len())]);
    if line.len() > protocol::line_limit(line) {
        Line::TooLong
    } else if end.is_some() {
        Line::Complete
    } else {
        Line::Incomplete
    }
}

/// Which pending connection to evict for a newcomer of `uid`, if any: the oldest of that user
/// at its limit, else the oldest of all at the overall limit. `pending` is in accept order.
fn evict(pending: &[Pending], uid: u32) -> Option<usize> {
    let mine: Vec<usize> = (0..pending.len())
        .filter(|&i| pending[i].peer.uid == uid)
        .collect();
    if mine.len() >= MAX_PENDING_PER_UID {
        return mine.first().copied();
    }
    (pending.len() >= MAX_PENDING).then_some(0)
}

/// How long poll(2) may sleep: until the earliest deadline, or for ever (-1).
fn poll_timeout(pending: &[Pending], now: Instant) -> libc::c_int {
    match pending.iter().map(|p| p.deadline).min() {
        None => -1,
        Some(deadline) => {
            let left = deadline.saturating_since(now).as_millis();
            // Round up: waking a millisecond early would only poll again.
            (left + 1).min(i32::MAX as u128) as libc::c_int
        }
    }
}

/// The accept-and-read thread: admits connections, reads request lines without blocking, and
/// hands complete ones to the workers.
struct Reader<'a> {
    listener: &'a UnixListener,
    wake: RawFd,
    policy: &'a Policy,
    queue: &'a SyncSender<Request>,
    clock: &'a (dyn Clock + Sync),
    hooks: &'a dyn hooks::Hooks,
    pending: Vec<Pending>,
    refusals: Throttle,
}

impl Reader<'_> {
    fn run(&mut self) {
        while !signals::requested() {
            let now = self.clock.now();
            self.expire(now);
            let mut fds = Vec::with_capacity(2 + self.pending.len());
            for fd in [self.listener.as_raw_fd(), self.wake] {
                fds.push(libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
            for p in &self.pending {
                fds.push(libc::pollfd {
                    fd: p.stream.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
            let timeout = poll_timeout(&self.pending, now);
            // SAFETY: `fds` is a vector of initialized pollfd, and we pass its length.
            let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
            if rc < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    warn!("poll failed: {e}");
                    thread::sleep(Duration::from_millis(50));
                }
                continue;
            }
            if signals::requested() {
                break;
            }
            if fds[1].revents != 0 {
                // Drain the wake pipe: a signal that is not a stop (SIGUSR1) must not spin poll.
                let mut sink = [0u8; 64];
                // SAFETY: read(2) into a local buffer of its length, on our non-blocking pipe.
                while unsafe { libc::read(self.wake, sink.as_mut_ptr().cast(), sink.len()) } > 0 {}
            }
            if signals::take_pair_request() {
                match self.hooks.pair_requested() {
                    Ok(message) => info!("SIGUSR1: {message}"),
                    Err(why) => warn!("SIGUSR1 asked for a pairing: {why}"),
                }
            }
            // The readable connections first (their indices are those of this poll), then the
            // new ones.
            let ready: Vec<bool> = fds[2..].iter().map(|f| f.revents != 0).collect();
            self.read_ready(&ready);
            if fds[0].revents != 0 {
                self.accept_all();
            }
        }
    }

    /// Accepts everything pending; a refused client costs one accept.
    fn accept_all(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => self.admit(stream),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Out of descriptors or similar: breathe instead of spinning.
                    warn!("accept failed: {e}");
                    thread::sleep(Duration::from_millis(50));
                    break;
                }
            }
        }
    }

    /// Checks the peer's credentials and starts reading its request, or answers and closes.
    fn admit(&mut self, stream: UnixStream) {
        let peer = match peer::peer_of(&stream) {
            Ok(peer) => peer,
            Err(e) => {
                warn!("cannot read a client's credentials ({e}); closing it");
                return;
            }
        };
        if !self.policy.admits(&peer) {
            if self.refusals.allow(self.clock.now()) {
                warn!(
                    "refused a client: uid {} gid {} (pid {}) may not ask for tokens (see \
                     --allow-uid, --allow-gid, --socket-group){}",
                    peer.uid,
                    peer.gid,
                    peer.pid,
                    self.refusals.suppressed_note()
                );
            }
            refuse(
                stream,
                "forbidden",
                "this user may not ask this broker for tokens",
            );
            return;
        }
        if let Err(e) = stream.set_nonblocking(true) {
            debug!("cannot make a connection non-blocking ({e}); closing it");
            return;
        }
        if let Some(oldest) = evict(&self.pending, peer.uid) {
            // Its request may have arrived since the last poll: then it is served, not evicted.
            let old = self.pending.remove(oldest);
            self.progress(old, true);
        }
        // Most clients write their request before the broker gets to accept them: read now.
        let new = Pending {
            stream,
            peer,
            line: Vec::with_capacity(64),
            deadline: self.clock.now() + REQUEST_TIMEOUT,
        };
        self.progress(new, false);
    }

    /// Reads what `p` has sent: dispatches it when its line is complete, answers it when it is
    /// too long, keeps it pending otherwise, or, with `evicted`, tells it `busy` and closes it.
    fn progress(&mut self, mut p: Pending, evicted: bool) {
        match read_available(&mut p) {
            Ok(Line::Incomplete) if evicted => refuse(
                p.stream,
                "busy",
                "too many requests are waiting; try again shortly",
            ),
            Ok(Line::Incomplete)
                if p.line.len() > protocol::MAX_LINE
                    && self
                        .pending
                        .iter()
                        .filter(|q| q.line.len() > protocol::MAX_LINE)
                        .count()
                        >= MAX_LONG_PENDING =>
            {
                refuse(
                    p.stream,
                    "busy",
                    "too many long send requests are arriving at once; try again shortly",
                )
            }
            Ok(Line::Incomplete) => self.pending.push(p),
            Ok(Line::Complete) => self.dispatch(p),
            Ok(Line::TooLong) => refuse(
                p.stream,
                "bad_request",
                &format!(
                    "the request line is longer than {} bytes",
                    protocol::MAX_LINE
                ),
            ),
            Err(None) => {} // closed before sending anything
            Err(Some(e)) => debug!("reading a request from pid {} failed: {e}", p.peer.pid),
        }
    }

    /// Reads what the connections marked ready have sent, without blocking.
    fn read_ready(&mut self, ready: &[bool]) {
        let pending = std::mem::take(&mut self.pending);
        for (i, p) in pending.into_iter().enumerate() {
            if ready.get(i).copied().unwrap_or(false) {
                self.progress(p, false);
            } else {
                self.pending.push(p);
            }
        }
    }

    /// Answers connections whose deadline has passed, and closes them.
    fn expire(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.pending.len() {
            if now < self.pending[i].deadline {
                i += 1;
                continue;
            }
            let late = self.pending.remove(i);
            refuse(
                late.stream,
                "bad_request",
                &format!(
                    "no complete request line within {} s",
                    REQUEST_TIMEOUT.as_secs()
                ),
            );
        }
    }

    fn dispatch(&mut self, p: Pending) {
        let Pending {
            stream, peer, line, ..
        } = p;
        match self.queue.try_send(Request { stream, peer, line }) {
            Ok(()) => {}
            Err(TrySendError::Full(request)) => {
                debug!("queue full; told uid {} (pid {}) busy", peer.uid, peer.pid);
                refuse(
                    request.stream,
                    "busy",
                    "too many requests are waiting; try again shortly",
                );
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

/// Reads until the socket has nothing more for now. `Err(None)`: closed with nothing sent.
/// End of input also ends the line (`printf '{"get":"access_token"}' | nc -U` sends no
/// newline).
fn read_available(p: &mut Pending) -> Result<Line, Option<io::Error>> {
    let mut buf = [0u8; 256];
    loop {
        match p.stream.read(&mut buf) {
            Ok(0) if p.line.is_empty() => return Err(None),
            Ok(0) => return Ok(Line::Complete),
            Ok(n) => match feed(&mut p.line, &buf[..n]) {
                Line::Incomplete => {}
                done => return Ok(done),
            },
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Line::Incomplete),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Some(e)),
        }
    }
}

/// Writes a short error line without ever blocking the reader thread, then closes.
fn refuse(stream: UnixStream, kind: &str, message: &str) {
    let _ = stream.set_nonblocking(true);
    let _ = (&stream).write_all(protocol::error_answer(kind, None, message).as_bytes());
    let _ = stream.shutdown(Shutdown::Both);
}

/// A worker: answers queued requests until the queue closes.
fn work(waiting: &Mutex<Receiver<Request>>, shared: &Mutex<Shared>, hooks: &dyn hooks::Hooks) {
    loop {
        let next = lock(waiting).recv();
        let Ok(request) = next else {
            return;
        };
        if signals::requested() {
            continue; // stopping: drop what is still queued
        }
        serve_one(request, shared, hooks);
    }
}

fn serve_one(request: Request, shared: &Mutex<Shared>, hooks: &dyn hooks::Hooks) {
    let Request {
        mut stream,
        peer,
        line,
    } = request;
    // The answer is small (it fits the socket buffer); the timeout only bounds a client that
    // shrank its buffer and does not read.
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_write_timeout(Some(REQUEST_TIMEOUT));
    let answer = match protocol::parse(&line) {
        // Records go to the outbox without the agent: a send never waits for a refresh.
        Ok(Ask::Send(send)) => send_answer(&send, &peer, hooks),
        Ok(ask) => answer(ask, &peer, shared, hooks),
        Err(why) => Zeroizing::new(protocol::error_answer("bad_request", None, &why)),
    };
    if let Err(e) = stream.write_all(answer.as_bytes()) {
        debug!("answering pid {} failed: {e}", peer.pid);
    }
    let _ = stream.shutdown(Shutdown::Both);
}

fn send_answer(
    send: &protocol::SendAsk,
    peer: &Peer,
    hooks: &dyn hooks::Hooks,
) -> Zeroizing<String> {
    match hooks.send(send) {
        Ok(value) => {
            info!(
                "uid {} (pid {}) queued {} record(s)",
                peer.uid,
                peer.pid,
                value["queued"].as_u64().unwrap_or(0)
            );
            Zeroizing::new(format!("{}\n", crate::sanitize::json_line(&value)))
        }
        Err(e) => {
            warn!(
                "a send from uid {} (pid {}) was refused: {e}",
                peer.uid, peer.pid
            );
            Zeroizing::new(protocol::error_answer(
                e.kind().name(),
                Some(e.exit_code()),
                e.message(),
            ))
        }
    }
}

fn answer(
    ask: Ask,
    peer: &Peer,
    shared: &Mutex<Shared>,
    hooks: &dyn hooks::Hooks,
) -> Zeroizing<String> {
    let mut guard = lock(shared);
    let shared = &mut *guard;
    let failed = |e: &Error| {
        Zeroizing::new(protocol::error_answer(
            e.kind().name(),
            Some(e.exit_code()),
            e.message(),
        ))
    };
    match ask {
        Ask::AccessToken { refused } => {
            if let Some(generation) = refused {
                debug!(
                    "uid {} (pid {}) says session {generation} was refused",
                    peer.uid, peer.pid
                );
                shared.agent.session_refused(generation);
            }
            let now = shared.clock.now();
            if let Some((at, e)) = &shared.failure
                && now.saturating_since(*at) < FAILURE_HOLD
            {
                return failed(e);
            }
            match shared.agent.access_token() {
                Ok(session) => {
                    shared.failure = None;
                    debug!(
                        "gave session {} to uid {} (pid {})",
                        session.generation, peer.uid, peer.pid
                    );
                    let expires_in = shared.agent.expires_in(&session);
                    protocol::token_answer(&session, expires_in)
                }
                Err(e) => {
                    warn!(
                        "no access token for uid {} (pid {}): {e}",
                        peer.uid, peer.pid
                    );
                    let answer = failed(&e);
                    if crate::refusal::is_death(&e) {
                        hooks.pairing_died(&e);
                    }
                    // Hold failures that cost a request to the server; a store that is empty
                    // or unreadable is cheap to look at again (a pairing may land any moment).
                    if !matches!(e.kind(), ErrorKind::NotPaired | ErrorKind::Storage) {
                        shared.failure = Some((shared.clock.now(), e));
                    }
                    answer
                }
            }
        }
        Ask::InstanceUrl => match shared.agent.instance_url() {
            Ok(url) => Zeroizing::new(protocol::instance_answer(&url)),
            Err(e) => failed(&e),
        },
        Ask::Health => Zeroizing::new(format!(
            "{}\n",
            crate::sanitize::json_line(&hooks.health(&mut shared.agent))
        )),
        // Answered by `send_answer` before the agent is locked.
        Ask::Send(_) => Zeroizing::new(protocol::error_answer("bad_request", None, "send")),
        Ask::Pair => {
            info!("uid {} (pid {}) asks for a new pairing", peer.uid, peer.pid);
            match hooks.pair_requested() {
                Ok(message) => Zeroizing::new(format!(
                    "{}\n",
                    crate::sanitize::json_line(
                        &serde_json::json!({ "pairing": "started", "message": message })
                    )
                )),
                Err(why) => Zeroizing::new(protocol::error_answer("refused", None, &why)),
            }
        }
    }
}

/// Logs at most one refusal warning per minute, counting the rest.
struct Throttle {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    fn new() -> Self {
        Throttle {
            last: None,
            suppressed: 0,
        }
    }

    fn allow(&mut self, now: Instant) -> bool {
        if self
            .last
            .is_some_and(|t| now.saturating_since(t) < Duration::from_secs(60))
        {
            self.suppressed += 1;
            return false;
        }
        self.last = Some(now);
        true
    }

    fn suppressed_note(&mut self) -> String {
        let n = std::mem::take(&mut self.suppressed);
        match n {
            0 => String::new(),
            n => format!("; {n} more refused since the last warning"),
        }
    }
}

/// A group given by name or number (`--socket-group`), as a gid.
pub fn group_id(name: &str) -> Result<u32, Error> {
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(gid);
    }
    let unknown = || Error::config(format!("--socket-group '{name}' is not a known group"));
    let c_name = std::ffi::CString::new(name).map_err(|_| unknown())?;
    let mut group: libc::group = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::group = std::ptr::null_mut();
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: every pointer is valid for the call: the name is NUL-terminated, `group` and
    // `found` are ours, and `buf` has the length passed.
    let rc = unsafe {
        libc::getgrnam_r(
            c_name.as_ptr(),
            &mut group,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() {
        return Err(unknown());
    }
    Ok(group.gr_gid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sfpair-broker-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn groups_by_number_or_name() {
        assert_eq!(group_id("4242").unwrap(), 4242);
        assert_eq!(group_id("root").unwrap(), 0);
        assert!(group_id("no-such-group-sfpair").is_err());
    }

    #[test]
    fn a_request_line_is_bounded_in_size() {
        let mut line = Vec::new();
        assert_eq!(feed(&mut line, br#"{"get":"acc"#), Line::Incomplete);
        assert_eq!(feed(&mut line, b"ess_token\"}\nrest"), Line::Complete);
        assert_eq!(line, br#"{"get":"access_token"}"#);
        let mut line = Vec::new();
        assert_eq!(
            feed(&mut line, &[b'x'; protocol::MAX_LINE + 1]),
            Line::TooLong
        );
    }

    fn peer(uid: u32) -> Peer {
        Peer {
            pid: 1,
            uid,
            gid: uid,
        }
    }

    /// A reader on a real socket with a fake clock; the test drives it step by step.
    struct Rig {
        dir: PathBuf,
        listener: UnixListener,
        clock: crate::testing::FakeClock,
        queue: SyncSender<Request>,
        waiting: Receiver<Request>,
        policy: Policy,
    }

    impl Rig {
        fn new(name: &str) -> Rig {
            let dir = scratch(name);
            let listener = UnixListener::bind(dir.join("s.sock")).unwrap();
            listener.set_nonblocking(true).unwrap();
            let (queue, waiting) = sync_channel(QUEUE);
            Rig {
                listener,
                clock: crate::testing::FakeClock::new(Duration::ZERO),
                queue,
                waiting,
                policy: Policy {
                    // SAFETY: geteuid has no preconditions.
                    server_uid: unsafe { libc::geteuid() },
                    ..Policy::default()
                },
                dir,
            }
        }

        fn reader(&self) -> Reader<'_> {
            Reader {
                listener: &self.listener,
                wake: -1,
                policy: &self.policy,
                queue: &self.queue,
                clock: &self.clock,
                hooks: &hooks::Plain,
                pending: Vec::new(),
                refusals: Throttle::new(),
            }
        }

        fn connect(&self) -> UnixStream {
            UnixStream::connect(self.dir.join("s.sock")).unwrap()
        }
    }

    /// What the broker answered on `client`, to the end.
    fn answered(mut client: UnixStream) -> String {
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut text = String::new();
        let _ = client.read_to_string(&mut text);
        text
    }

    #[test]
    fn idle_connections_hold_no_worker_and_a_good_request_goes_straight_through() {
        let rig = Rig::new("idle");
        let mut reader = rig.reader();
        let idle: Vec<UnixStream> = (0..MAX_PENDING_PER_UID - 1)
            .map(|_| rig.connect())
            .collect();
        reader.accept_all();
        assert_eq!(reader.pending.len(), MAX_PENDING_PER_UID - 1);
        let mut good = rig.connect();
        reader.accept_all();
        good.write_all(b"{\"get\":\"access_token\"}\n").unwrap();
        reader.read_ready(&vec![true; reader.pending.len()]);
        let request = rig.waiting.try_recv().expect("dispatched at once");
        assert_eq!(request.line, br#"{"get":"access_token"}"#);
        assert_eq!(reader.pending.len(), idle.len(), "the idle ones still wait");
        assert!(
            rig.waiting.try_recv().is_err(),
            "and none of them is queued"
        );
        fs::remove_dir_all(&rig.dir).unwrap();
    }

    #[test]
    fn a_burst_of_clients_that_already_wrote_is_served_not_evicted() {
        let rig = Rig::new("burst");
        let mut reader = rig.reader();
        let clients: Vec<UnixStream> = (0..MAX_PENDING_PER_UID + 8)
            .map(|_| {
                let mut c = rig.connect();
                c.write_all(b"{\"get\":\"access_token\"}\n").unwrap();
                c
            })
            .collect();
        reader.accept_all();
        assert!(reader.pending.is_empty());
        let queued = std::iter::from_fn(|| rig.waiting.try_recv().ok()).count();
        assert_eq!(queued, QUEUE.min(clients.len()));
        fs::remove_dir_all(&rig.dir).unwrap();
    }

    #[test]
    fn the_deadline_counts_from_the_accept_and_trickling_does_not_extend_it() {
        let rig = Rig::new("deadline");
        let mut reader = rig.reader();
        let mut trickler = rig.connect();
        reader.accept_all();
        for _ in 0..19 {
            trickler.write_all(b" ").unwrap();
            reader.read_ready(&[true]);
            rig.clock.advance(Duration::from_millis(100));
            reader.expire(rig.clock.now());
        }
        assert_eq!(reader.pending.len(), 1, "1.9 s: still within the deadline");
        assert_eq!(poll_timeout(&reader.pending, rig.clock.now()), 101);
        rig.clock.advance(Duration::from_millis(100));
        reader.expire(rig.clock.now());
        assert!(reader.pending.is_empty());
        let text = answered(trickler);
        assert!(
            text.contains("bad_request") && text.contains("within 2 s"),
            "{text}"
        );
        assert!(rig.waiting.try_recv().is_err());
        fs::remove_dir_all(&rig.dir).unwrap();
    }

    #[test]
    fn a_flood_from_one_user_evicts_its_own_oldest_connection() {
        let rig = Rig::new("flood");
        let mut reader = rig.reader();
        let first = rig.connect();
        reader.accept_all();
        let _rest: Vec<UnixStream> = (0..MAX_PENDING_PER_UID).map(|_| rig.connect()).collect();
        reader.accept_all();
        assert_eq!(reader.pending.len(), MAX_PENDING_PER_UID);
        assert!(answered(first).contains("busy"));
        // The rule itself: per user first, then overall.
        let mut pending = Vec::new();
        for uid in [7, 8, 7] {
            let (a, _b) = UnixStream::pair().unwrap();
            pending.push(Pending {
                stream: a,
                peer: peer(uid),
                line: Vec::new(),
                deadline: Instant::ZERO,
            });
        }
        assert_eq!(evict(&pending, 9), None);
        fs::remove_dir_all(&rig.dir).unwrap();
    }

    #[test]
    fn a_failure_is_held_on_the_shared_clock() {
        // FAILURE_HOLD and the throttle read the broker's clock, not the system's.
        let clock = crate::testing::FakeClock::new(Duration::ZERO);
        let mut throttle = Throttle::new();
        assert!(throttle.allow(clock.now()));
        clock.advance(Duration::from_secs(59));
        assert!(!throttle.allow(clock.now()));
        clock.advance(Duration::from_secs(1));
        assert!(throttle.allow(clock.now()));
        assert_eq!(
            throttle.suppressed_note(),
            "; 1 more refused since the last warning"
        );
    }
}
