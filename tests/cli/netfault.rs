//! Faults below HTTP, on 127.0.0.1 only: a TCP proxy in front of the simulator that can reset,
//! cut short or swallow what the server sends, and a listener whose accept queue is full, so a
//! connect attempt times out. TLS passes through the proxy untouched (the certificate is valid
//! for 127.0.0.1 whichever port carries it).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// What the proxy does with the next chunk the server sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Pass,
    /// Reset the client's connection (RST) instead of forwarding.
    Reset,
    /// Forward half of the chunk, then close (the reply is cut short).
    Cut,
    /// Swallow it: the client waits for an answer that never comes.
    Swallow,
}

struct Plan {
    mode: Mode,
    /// Back to `Pass` after one use.
    once: bool,
}

pub struct Proxy {
    port: u16,
    plan: Arc<Mutex<Plan>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    /// A proxy to `127.0.0.1:upstream`, passing everything through until told otherwise.
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let plan = Arc::new(Mutex::new(Plan {
            mode: Mode::Pass,
            once: false,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (plan.clone(), stop.clone());
        thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (p, s) = (p.clone(), s.clone());
                        thread::spawn(move || relay(client, upstream, p, s));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Proxy { port, plan, stop }
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    pub fn set(&self, mode: Mode, once: bool) {
        *self.plan.lock().unwrap() = Plan { mode, once };
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn take(plan: &Mutex<Plan>) -> Mode {
    let mut plan = plan.lock().unwrap();
    let mode = plan.mode;
    if plan.once && mode != Mode::Pass {
        plan.mode = Mode::Pass;
    }
    mode
}

/// Sets SO_LINGER to zero so that the last close sends RST instead of FIN. The other relay
/// thread holds a clone of the socket; it sees `dead` and drops it within its read timeout.
fn reset(stream: TcpStream, dead: &AtomicBool) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket fd and a correctly sized linger struct.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    dead.store(true, Ordering::SeqCst);
    drop(stream);
}

fn idle(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

fn relay(client: TcpStream, upstream: u16, plan: Arc<Mutex<Plan>>, stop: Arc<AtomicBool>) {
    client.set_nonblocking(false).unwrap();
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    let limit = Instant::now() + Duration::from_secs(120);
    for s in [&client, &server] {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
    }
    // Set when the connection is over, so the other direction lets go of its socket clone.
    let dead = Arc::new(AtomicBool::new(false));
    let running = {
        let (stop, dead) = (stop.clone(), dead.clone());
        move || {
            !stop.load(Ordering::SeqCst) && !dead.load(Ordering::SeqCst) && Instant::now() < limit
        }
    };
    // Client to server: a plain copy.
    let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let upward = running.clone();
    thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while upward() {
            match c_in.read(&mut buf) {
                Ok(0) => {
                    let _ = s_out.shutdown(Shutdown::Write);
                    return;
                }
                Ok(n) if s_out.write_all(&buf[..n]).is_err() => return,
                Ok(_) => {}
                Err(e) if idle(&e) => {}
                Err(_) => return,
            }
        }
    });
    // Server to client: where the faults happen.
    let (mut s_in, mut c_out) = (server, client);
    let mut buf = [0u8; 16 * 1024];
    while running() {
        match s_in.read(&mut buf) {
            Ok(0) => {
                let _ = c_out.shutdown(Shutdown::Write);
                break;
            }
            Ok(n) => match take(&plan) {
                Mode::Pass if c_out.write_all(&buf[..n]).is_err() => break,
                Mode::Pass | Mode::Swallow => {}
                Mode::Reset => return reset(c_out, &dead),
                Mode::Cut => {
                    let _ = c_out.write_all(&buf[..n / 2]);
                    let _ = c_out.shutdown(Shutdown::Both);
                    break;
                }
            },
            Err(e) if idle(&e) => {}
            // The server reset the connection: pass the reset on to the client.
            Err(_) => return reset(c_out, &dead),
        }
    }
    dead.store(true, Ordering::SeqCst);
}

/// A port whose accept queue is full: connecting to it hangs until the client's connect
/// timeout, like a host behind a firewall that drops packets.
pub struct Unanswered {
    _listener: OwnedFd,
    _filler: TcpStream,
    pub port: u16,
}

impl Unanswered {
    pub fn new() -> Unanswered {
        // std cannot listen with a backlog of 0, so make the socket by hand.
        // SAFETY: plain socket calls on a fresh fd, with correctly sized arguments.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
            assert!(fd >= 0);
            let listener = OwnedFd::from_raw_fd(fd);
            let mut addr: libc::sockaddr_in = std::mem::zeroed();
            addr.sin_family = libc::AF_INET as libc::sa_family_t;
            addr.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
            let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            assert_eq!(
                libc::bind(fd, (&addr as *const libc::sockaddr_in).cast(), len),
                0
            );
            assert_eq!(libc::listen(fd, 0), 0);
            let mut bound: libc::sockaddr_in = std::mem::zeroed();
            let mut blen = len;
            libc::getsockname(fd, (&mut bound as *mut libc::sockaddr_in).cast(), &mut blen);
            let port = u16::from_be(bound.sin_port);
            // One connection fills the queue; later SYNs are dropped.
            let filler = TcpStream::connect(("127.0.0.1", port)).unwrap();
            Unanswered {
                _listener: listener,
                _filler: filler,
                port,
            }
        }
    }
}

/// A loopback port with nothing listening (connection refused).
pub fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
