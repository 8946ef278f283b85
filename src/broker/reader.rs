//! The broker's accept-and-read thread: it admits connections whose kernel-reported
//! credentials pass the [`Policy`], reads their request lines without blocking (poll(2) over
//! every connection still sending), and hands complete lines to the workers' queue.
//!
//! Bounded (the rules are the broker's, in `broker.rs`): a client has [`REQUEST_TIMEOUT`] from
//! its accept to send its line, trickling does not extend it; each user holds at most
//! [`MAX_PENDING_PER_UID`] unfinished connections and everyone together [`MAX_PENDING`], past
//! which the oldest is told `busy`; at most [`MAX_LONG_PENDING`] lines longer than an ordinary
//! request may be arriving at once.
//!
//! Must not: block on a client, answer a request (that is `worker.rs`), or touch the agent.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::mpsc::TrySendError;
use std::thread;
use std::time::Duration;

use log::{debug, info, warn};

use super::peer::{self, Peer, Policy};
use super::throttle::Throttle;
use super::{
    MAX_LONG_PENDING, MAX_PENDING, MAX_PENDING_PER_UID, REQUEST_TIMEOUT, Request, hooks, protocol,
    signals,
};
use crate::mailbox::Sender;
use crate::time::{Clock, Instant};

/// A connection that is still sending its request line.
pub(super) struct Pending {
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
/// The limit counts the newline (`protocol::MAX_LINE`): a line may hold one byte less. A line
/// that has no newline yet is too long once it holds the limit, since its newline would pass
/// it; a line ended by closing the connection counts as if it had one.
fn feed(line: &mut Vec<u8>, bytes: &[u8]) -> Line {
    let end = bytes.iter().position(|&b| b == b'\n');
    line.extend_from_slice(&bytes[..end.unwrap_or(bytes.len())]);
    if line.len() + 1 > protocol::line_limit(line) {
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

/// The workers' two queues: `send` lines have a lane of their own, so a flood of them cannot
/// hold the workers that answer tokens and health.
pub(super) struct Lanes<'a> {
    pub(super) requests: &'a Sender<Request>,
    pub(super) sends: &'a Sender<Request>,
}

impl Lanes<'_> {
    /// The queue for `line`: by its first token, as its length limit is chosen.
    fn for_line(&self, line: &[u8]) -> &Sender<Request> {
        if protocol::is_send(line) {
            self.sends
        } else {
            self.requests
        }
    }
}

/// The accept-and-read thread: admits connections, reads request lines without blocking, and
/// hands complete ones to the workers.
pub(super) struct Reader<'a> {
    pub(super) listener: &'a UnixListener,
    pub(super) wake: RawFd,
    pub(super) policy: &'a Policy,
    pub(super) lanes: Lanes<'a>,
    pub(super) clock: &'a (dyn Clock + Sync),
    pub(super) hooks: &'a dyn hooks::Hooks,
    pub(super) pending: Vec<Pending>,
    pub(super) refusals: Throttle,
}

impl Reader<'_> {
    pub(super) fn run(&mut self) {
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
                    "the request line is longer than {} bytes, its newline included",
                    protocol::line_limit(&p.line)
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
        let lane = self.lanes.for_line(&line);
        match lane.try_send(Request { stream, peer, line }) {
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
pub(super) fn refuse(stream: UnixStream, kind: &str, message: &str) {
    let _ = stream.set_nonblocking(true);
    let _ = (&stream).write_all(protocol::error_answer(kind, None, message).as_bytes());
    let _ = stream.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailbox::{Receiver, bounded};
    use std::fs;
    use std::path::PathBuf;

    use super::super::QUEUE;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sfpair-broker-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
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

    /// Both limits count the newline, as documented (docs/broker.md): a line of exactly the
    /// limit passes, one byte more does not, whether it arrives at once or a byte at a time.
    #[test]
    fn each_line_limit_admits_exactly_its_documented_bytes() {
        let send = |len: usize| {
            let mut l = protocol::SEND_PREFIX.to_vec();
            l.resize(len - 1, b' ');
            l.push(b'\n');
            l
        };
        let other = |len: usize| {
            let mut l = vec![b' '; len - 1];
            l.push(b'\n');
            l
        };
        for (limit, make) in [
            (protocol::MAX_LINE, &other as &dyn Fn(usize) -> Vec<u8>),
            (protocol::MAX_SEND_LINE, &send),
        ] {
            for (len, want) in [(limit, Line::Complete), (limit + 1, Line::TooLong)] {
                let bytes = make(len);
                assert_eq!(feed(&mut Vec::new(), &bytes), want, "{len} of {limit}");
                let mut line = Vec::new();
                let mut got = Line::Incomplete;
                for chunk in bytes.chunks(7) {
                    got = feed(&mut line, chunk);
                    if got != Line::Incomplete {
                        break;
                    }
                }
                assert_eq!(got, want, "{len} of {limit}, in pieces");
            }
        }
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
        queue: Sender<Request>,
        waiting: Receiver<Request>,
        send_queue: Sender<Request>,
        sends_waiting: Receiver<Request>,
        policy: Policy,
    }

    impl Rig {
        fn new(name: &str) -> Rig {
            let dir = scratch(name);
            let listener = UnixListener::bind(dir.join("s.sock")).unwrap();
            listener.set_nonblocking(true).unwrap();
            let (queue, waiting) = bounded(QUEUE);
            let (send_queue, sends_waiting) = bounded(QUEUE);
            Rig {
                listener,
                clock: crate::testing::FakeClock::new(Duration::ZERO),
                queue,
                waiting,
                send_queue,
                sends_waiting,
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
                lanes: Lanes {
                    requests: &self.queue,
                    sends: &self.send_queue,
                },
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

    /// A send line goes to the send lane, everything else to the other; a full send lane
    /// leaves the other one free: a token is queued while sends wait.
    #[test]
    fn sends_have_their_own_lane_and_a_full_one_holds_no_token() {
        let rig = Rig::new("lanes");
        let mut reader = rig.reader();
        let send = b"{\"do\":\"send\",\"event\":\"A__e\",\"records\":[{}]}\n";
        let mut clients = Vec::new();
        for _ in 0..QUEUE + 1 {
            let mut c = rig.connect();
            c.write_all(send).unwrap();
            clients.push(c);
        }
        let mut token = rig.connect();
        token.write_all(b"{\"get\":\"access_token\"}\n").unwrap();
        reader.accept_all();
        let sends = std::iter::from_fn(|| rig.sends_waiting.try_recv().ok()).count();
        assert_eq!(sends, QUEUE, "the send lane is full");
        let request = rig.waiting.try_recv().expect("the token request is queued");
        assert_eq!(request.line, br#"{"get":"access_token"}"#);
        assert!(rig.waiting.try_recv().is_err(), "and no send with it");
        // The one send past the full lane was told busy, not queued with the tokens.
        let last = clients.pop().unwrap();
        assert!(answered(last).contains("busy"));
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
}
