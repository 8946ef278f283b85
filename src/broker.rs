//! The token broker, `sfpair serve --socket PATH`: it holds the refresh token (through the
//! [`Agent`]) and answers other local processes' requests for an access token and the instance
//! URL over a Unix socket, so the rest of the firmware never reads the store.
//!
//! Who may ask: the socket file is created 0600 (0660 with `--socket-group`, whose gid is then
//! also admitted), and every connection's kernel-reported credentials pass [`peer::Policy`]
//! before a byte of its request is read.
//!
//! Bounded, so that a slow or malicious client cannot block the others or grow memory:
//! - [`WORKERS`] threads serve connections; the accept loop only checks credentials and queues
//!   (at most [`QUEUE`] waiting; beyond that a client gets `busy` at once).
//! - One request line per connection, at most [`protocol::MAX_LINE`] bytes, complete within
//!   [`REQUEST_TIMEOUT`] (a deadline over all reads, so trickling bytes does not extend it).
//! - Refreshes are serialized behind one mutex and the cached session is reused while it is
//!   valid, so fifty clients at once cause at most one refresh. A failed refresh is remembered
//!   for [`FAILURE_HOLD`] so an outage does not turn every request into three attempts (an
//!   empty store is not: a pairing by another process is picked up at the next request).
//!
//! At start a stale socket file (one nobody listens on) is removed; a live one or a file that
//! is not a socket is left alone and reported. SIGTERM or SIGINT stops accepting, lets the
//! workers finish their request (a refresh that rotated the token finishes storing it), and
//! removes the socket file.

pub mod client;
pub mod hooks;
pub mod peer;
pub mod protocol;
mod signals;

use std::fs;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use zeroize::Zeroizing;

use crate::agent::Agent;
use crate::error::{Error, ErrorKind};
use peer::{Peer, Policy};
use protocol::Ask;

/// Threads that serve connections.
pub const WORKERS: usize = 4;
/// Admitted connections waiting for a worker; more get `busy`.
pub const QUEUE: usize = 64;
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

/// The agent and the broker's memory of its last failure, shared by the workers and, under
/// `sfpair run`, the supervisor (`service.rs`) that keeps the pairing alive.
pub struct Shared {
    agent: Agent,
    failure: Option<(Instant, Error)>,
}

impl Shared {
    pub fn new(agent: Agent) -> Arc<Mutex<Shared>> {
        Arc::new(Mutex::new(Shared {
            agent,
            failure: None,
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

/// Locks, whatever a panicking holder left: the agent's state stays consistent between calls.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Serves until SIGTERM or SIGINT. Errors only while setting up (socket, signals, threads).
pub fn serve(agent: Agent, options: &ServeOptions) -> Result<(), Error> {
    serve_with(Shared::new(agent), options, Arc::new(hooks::Plain))
}

/// Serves `shared` until SIGTERM or SIGINT, asking `hooks` for what a plain token broker does
/// not know (health, pairing on request).
pub fn serve_with(
    shared: Arc<Mutex<Shared>>,
    options: &ServeOptions,
    hooks: Arc<dyn hooks::Hooks>,
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
    let (queue, waiting) = sync_channel::<(UnixStream, Peer)>(QUEUE);
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
    accept_loop(&socket.listener, wake, &policy, &queue, &*hooks);
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

/// Waits for connections or a signal; admits or refuses each connection without reading it.
fn accept_loop(
    listener: &UnixListener,
    wake: RawFd,
    policy: &Policy,
    queue: &SyncSender<(UnixStream, Peer)>,
    hooks: &dyn hooks::Hooks,
) {
    let mut refusals = Throttle::new();
    while !signals::requested() {
        let mut fds = [
            libc::pollfd {
                fd: listener.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: wake,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `fds` is an array of two initialized pollfd, and we pass its length.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
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
            // SAFETY: read(2) into a local buffer of the given length, on our non-blocking pipe.
            while unsafe { libc::read(wake, sink.as_mut_ptr().cast(), sink.len()) } > 0 {}
        }
        if signals::take_pair_request() {
            match hooks.pair_requested() {
                Ok(message) => info!("SIGUSR1: {message}"),
                Err(why) => warn!("SIGUSR1 asked for a pairing: {why}"),
            }
        }
        if fds[0].revents == 0 {
            continue;
        }
        // Accept everything pending, then poll again; a refused client costs one accept.
        loop {
            match listener.accept() {
                Ok((stream, _)) => admit(stream, policy, queue, &mut refusals),
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
}

/// Checks the peer's credentials and queues its connection, or answers and closes it.
fn admit(
    stream: UnixStream,
    policy: &Policy,
    queue: &SyncSender<(UnixStream, Peer)>,
    refusals: &mut Throttle,
) {
    let peer = match peer::peer_of(&stream) {
        Ok(peer) => peer,
        Err(e) => {
            warn!("cannot read a client's credentials ({e}); closing it");
            return;
        }
    };
    if !policy.admits(&peer) {
        if refusals.allow() {
            warn!(
                "refused a client: uid {} gid {} (pid {}) may not ask for tokens (see \
                 --allow-uid, --allow-gid, --socket-group){}",
                peer.uid,
                peer.gid,
                peer.pid,
                refusals.suppressed_note()
            );
        }
        refuse(
            stream,
            "forbidden",
            "this user may not ask this broker for tokens",
        );
        return;
    }
    match queue.try_send((stream, peer)) {
        Ok(()) => {}
        Err(TrySendError::Full((stream, _))) => {
            debug!("queue full; told uid {} (pid {}) busy", peer.uid, peer.pid);
            refuse(
                stream,
                "busy",
                "too many requests are waiting; try again shortly",
            );
        }
        Err(TrySendError::Disconnected(_)) => {}
    }
}

/// Writes a short error line without ever blocking the accept loop, then closes.
fn refuse(stream: UnixStream, kind: &str, message: &str) {
    let _ = stream.set_nonblocking(true);
    let _ = (&stream).write_all(protocol::error_answer(kind, None, message).as_bytes());
    let _ = stream.shutdown(Shutdown::Both);
}

/// A worker: serves queued connections until the queue closes.
fn work(
    waiting: &Mutex<Receiver<(UnixStream, Peer)>>,
    shared: &Mutex<Shared>,
    hooks: &dyn hooks::Hooks,
) {
    loop {
        let next = lock(waiting).recv();
        let Ok((stream, peer)) = next else {
            return;
        };
        if signals::requested() {
            continue; // stopping: drop what is still queued
        }
        serve_one(stream, &peer, shared, hooks);
    }
}

/// Why a request line could not be read.
enum ReadFailure {
    TooLong,
    Timeout,
    Closed,
    Io(io::Error),
}

fn serve_one(
    mut stream: UnixStream,
    peer: &Peer,
    shared: &Mutex<Shared>,
    hooks: &dyn hooks::Hooks,
) {
    let _ = stream.set_write_timeout(Some(REQUEST_TIMEOUT));
    let answer = match read_request(&mut stream) {
        Ok(line) => match protocol::parse(&line) {
            Ok(ask) => answer(ask, peer, shared, hooks),
            Err(why) => Zeroizing::new(protocol::error_answer("bad_request", None, &why)),
        },
        Err(ReadFailure::TooLong) => Zeroizing::new(protocol::error_answer(
            "bad_request",
            None,
            &format!(
                "the request line is longer than {} bytes",
                protocol::MAX_LINE
            ),
        )),
        Err(ReadFailure::Timeout) => Zeroizing::new(protocol::error_answer(
            "bad_request",
            None,
            &format!(
                "no complete request line within {} s",
                REQUEST_TIMEOUT.as_secs()
            ),
        )),
        Err(ReadFailure::Closed) => return,
        Err(ReadFailure::Io(e)) => {
            debug!("reading a request from pid {} failed: {e}", peer.pid);
            return;
        }
    };
    if let Err(e) = stream.write_all(answer.as_bytes()) {
        debug!("answering pid {} failed: {e}", peer.pid);
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// One line, at most MAX_LINE bytes, within REQUEST_TIMEOUT in total. End of input also ends
/// the line (`printf '{"get":"access_token"}' | nc -U` sends no newline).
fn read_request(stream: &mut UnixStream) -> Result<Vec<u8>, ReadFailure> {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let mut line = Vec::with_capacity(128);
    let mut buf = [0u8; 256];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReadFailure::Timeout);
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(ReadFailure::Io)?;
        match stream.read(&mut buf) {
            Ok(0) if line.is_empty() => return Err(ReadFailure::Closed),
            Ok(0) => return Ok(line),
            Ok(n) => {
                let end = buf[..n].iter().position(|&b| b == b'\n');
                line.extend_from_slice(&buf[..end.unwrap_or(n)]);
                if line.len() > protocol::MAX_LINE {
                    return Err(ReadFailure::TooLong);
                }
                if end.is_some() {
                    return Ok(line);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(ReadFailure::Timeout);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadFailure::Io(e)),
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
            if let Some((at, e)) = &shared.failure
                && at.elapsed() < FAILURE_HOLD
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
                        shared.failure = Some((Instant::now(), e));
                    }
                    answer
                }
            }
        }
        Ask::InstanceUrl => match shared.agent.instance_url() {
            Ok(url) => Zeroizing::new(protocol::instance_answer(&url)),
            Err(e) => failed(&e),
        },
        Ask::Health => Zeroizing::new(format!("{}\n", hooks.health(&mut shared.agent))),
        Ask::Pair => {
            info!("uid {} (pid {}) asks for a new pairing", peer.uid, peer.pid);
            match hooks.pair_requested() {
                Ok(message) => Zeroizing::new(format!(
                    "{}\n",
                    serde_json::json!({ "pairing": "started", "message": message })
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

    fn allow(&mut self) -> bool {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(60))
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

/// The listening socket; dropping it removes the file if it is still ours.
struct Socket {
    listener: UnixListener,
    path: PathBuf,
    mode: u32,
    /// (device, inode) of the file we created, so we never remove someone else's.
    identity: (u64, u64),
}

impl Socket {
    fn bind(options: &ServeOptions) -> Result<Socket, Error> {
        let path = &options.socket;
        claim(path)?;
        let mode = if options.group.is_some() {
            0o660
        } else {
            0o600
        };
        // The umask makes the file's mode right from its creation; we are still one thread.
        // SAFETY: umask has no preconditions and cannot fail.
        let old = unsafe { libc::umask(0o777 & !mode) };
        let bound = UnixListener::bind(path);
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        let listener = bound.map_err(|e| {
            Error::config(format!(
                "cannot create the socket {}: {e} (does its directory exist, and may this \
                 user write there?)",
                path.display()
            ))
        })?;
        let meta = fs::symlink_metadata(path)
            .map_err(|e| Error::config(format!("cannot stat {}: {e}", path.display())))?;
        let socket = Socket {
            listener,
            path: path.clone(),
            mode,
            identity: (meta.dev(), meta.ino()),
        };
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|e| {
            Error::config(format!("cannot set the mode of {}: {e}", path.display()))
        })?;
        if let Some(gid) = options.group {
            std::os::unix::fs::chown(path, None, Some(gid)).map_err(|e| {
                Error::config(format!(
                    "cannot give {} to group {gid}: {e} (the broker's user must be in that \
                     group, or root)",
                    path.display()
                ))
            })?;
        }
        socket
            .listener
            .set_nonblocking(true)
            .map_err(|e| Error::config(format!("cannot configure {}: {e}", path.display())))?;
        Ok(socket)
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        let ours =
            fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.identity);
        if ours {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Makes room for the socket: nothing there is fine; a socket nobody listens on is stale and
/// removed; a live socket or any other file is an error.
fn claim(path: &Path) -> Result<(), Error> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(Error::config(format!(
                "cannot check {}: {e}",
                path.display()
            )));
        }
    };
    if !meta.file_type().is_socket() {
        return Err(Error::config(format!(
            "{} exists and is not a socket; refusing to replace it: choose another --socket",
            path.display()
        )));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(Error::config(format!(
            "another process (a running `sfpair serve`?) listens on {}; stop it first",
            path.display()
        ))),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            info!("removing the stale socket {}", path.display());
            fs::remove_file(path).map_err(|e| {
                Error::config(format!(
                    "cannot remove the stale socket {}: {e}",
                    path.display()
                ))
            })
        }
        Err(e) => Err(Error::config(format!(
            "cannot check whether {} is in use: {e}",
            path.display()
        ))),
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

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sfpair-broker-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_stale_socket_is_removed_a_live_one_and_other_files_are_kept() {
        let dir = scratch("claim");
        let path = dir.join("s.sock");
        assert!(claim(&path).is_ok(), "nothing there");
        let live = UnixListener::bind(&path).unwrap();
        let e = claim(&path).unwrap_err();
        assert!(e.message().contains("listens on"), "{e}");
        drop(live); // the file stays, but nobody listens: stale
        assert!(path.exists());
        claim(&path).unwrap();
        assert!(!path.exists());
        fs::write(&path, "not a socket").unwrap();
        let e = claim(&path).unwrap_err();
        assert!(e.message().contains("not a socket"), "{e}");
        assert!(path.exists());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_socket_is_created_with_its_mode_and_removed_on_drop() {
        let dir = scratch("bind");
        let path = dir.join("s.sock");
        let socket = Socket::bind(&ServeOptions {
            socket: path.clone(),
            group: None,
            allow_uids: vec![],
            allow_gids: vec![],
        })
        .unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        drop(socket);
        assert!(!path.exists());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn groups_by_number_or_name() {
        assert_eq!(group_id("4242").unwrap(), 4242);
        assert_eq!(group_id("root").unwrap(), 0);
        assert!(group_id("no-such-group-sfpair").is_err());
    }

    #[test]
    fn a_request_line_is_bounded_in_size_and_time() {
        let (mut server, mut client) = UnixStream::pair().unwrap();
        client.write_all(br#"{"get":"access_token"}"#).unwrap();
        client.write_all(b"\n").unwrap();
        assert_eq!(
            read_request(&mut server).ok().unwrap(),
            br#"{"get":"access_token"}"#
        );
        let (mut server, mut client) = UnixStream::pair().unwrap();
        client.write_all(&[b'x'; protocol::MAX_LINE + 1]).unwrap();
        assert!(matches!(
            read_request(&mut server),
            Err(ReadFailure::TooLong)
        ));
        let (mut server, _client) = UnixStream::pair().unwrap();
        let start = Instant::now();
        assert!(matches!(
            read_request(&mut server),
            Err(ReadFailure::Timeout)
        ));
        let waited = start.elapsed();
        assert!(
            waited >= REQUEST_TIMEOUT && waited < REQUEST_TIMEOUT * 2,
            "{waited:?}"
        );
        // Trickling a byte at a time does not extend the deadline.
        let (mut server, mut client) = UnixStream::pair().unwrap();
        let trickle = thread::spawn(move || {
            for _ in 0..40 {
                if client.write_all(b" ").is_err() {
                    break;
                }
                thread::sleep(Duration::from_millis(100));
            }
        });
        let start = Instant::now();
        assert!(matches!(
            read_request(&mut server),
            Err(ReadFailure::Timeout)
        ));
        assert!(start.elapsed() < REQUEST_TIMEOUT * 2);
        drop(server);
        trickle.join().unwrap();
    }
}
