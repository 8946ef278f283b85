//! Connections: the accept loop (at most 64 live connections, each on its own thread),
//! TLS, HTTP/1.1 keep-alive, and carrying out each [`Reply`], including the faults that
//! misbehave at the transport level, and the offline switch (`Sim::set_offline`), which
//! resets every connection before it can carry a request.
//!
//! It decides nothing about OAuth; `router.rs` does. It logs each request through the
//! request log before answering, so a test that has its answer also finds its entry.

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use crate::http::{Body, Conn, Response, TEXT};
use crate::log::LogEntry;
use crate::reply::Reply;
use crate::router;
use crate::state::Shared;

/// More live connections than this are closed at once: a runaway client must not
/// exhaust the test machine's threads.
const MAX_CONNECTIONS: usize = 64;
/// How long a keep-alive connection may sit idle (and how long a read or write may stall).
const IDLE_TIMEOUT: Duration = Duration::from_secs(20);

type TlsStream = StreamOwned<ServerConnection, TcpStream>;

/// The accept loop's handle: stop it with [`Acceptor::stop`].
pub struct Acceptor {
    addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Acceptor {
    /// Serves `listener` on a background thread.
    pub fn spawn(
        listener: TcpListener,
        tls: Arc<ServerConfig>,
        shared: Arc<Shared>,
    ) -> io::Result<Acceptor> {
        let addr = listener.local_addr()?;
        let stopping = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stopping);
        let thread = thread::Builder::new()
            .name("sfpair-sim-accept".into())
            .spawn(move || accept_loop(listener, tls, shared, flag))?;
        Ok(Acceptor {
            addr,
            stopping,
            thread: Some(thread),
        })
    }

    /// Stops accepting and joins the accept thread. Connections already open finish
    /// their current exchange on their own threads.
    pub fn stop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stopping.store(true, Ordering::SeqCst);
        // accept() has no timeout; a connection of our own wakes it up to see the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        let _ = thread.join();
    }
}

fn accept_loop(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    shared: Arc<Shared>,
    stopping: Arc<AtomicBool>,
) {
    let live = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            break;
        }
        let Ok(tcp) = stream else {
            // Out of file descriptors or similar: breathe instead of spinning.
            thread::sleep(Duration::from_millis(50));
            continue;
        };
        if shared.delivery.offline() {
            // `Sim::set_offline`: the client's connect succeeds (the kernel accepted it),
            // then its TLS handshake meets a reset, as behind a dead uplink's NAT.
            reset(&tcp);
            continue;
        }
        if live.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            let _ = tcp.shutdown(Shutdown::Both);
            continue;
        }
        live.fetch_add(1, Ordering::SeqCst);
        let id = shared.connections.fetch_add(1, Ordering::SeqCst) + 1;
        let guard = LiveGuard(Arc::clone(&live));
        let (tls, shared) = (Arc::clone(&tls), Arc::clone(&shared));
        let spawned = thread::Builder::new()
            .name(format!("sfpair-sim-conn-{id}"))
            .spawn(move || {
                let _guard = guard;
                serve(id, tcp, tls, &shared);
            });
        // A failed spawn drops the closure, and with it the guard and the socket.
        drop(spawned);
    }
}

/// Counts a connection as live until its thread ends, however it ends.
struct LiveGuard(Arc<AtomicUsize>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One connection: requests in a loop until the client closes, asks to close, idles
/// out, or a fault ends it.
fn serve(id: u64, tcp: TcpStream, tls: Arc<ServerConfig>, shared: &Shared) {
    let configured = tcp
        .set_read_timeout(Some(IDLE_TIMEOUT))
        .and_then(|()| tcp.set_write_timeout(Some(IDLE_TIMEOUT)))
        .and_then(|()| tcp.set_nodelay(true));
    let (Ok(()), Ok(session)) = (configured, ServerConnection::new(tls)) else {
        return;
    };
    let mut conn = Conn::new(StreamOwned::new(session, tcp));
    loop {
        let request = match conn.read_request() {
            Ok(Some(request)) => request,
            Ok(None) => break,
            Err(e) => {
                if let Some(status) = e.status() {
                    let _ =
                        Response::new(status, TEXT, format!("{e}\n")).write_to(conn.stream(), true);
                }
                break;
            }
        };
        if shared.delivery.offline() {
            // A keep-alive connection opened before going offline dies at its next
            // request, unanswered and unlogged.
            reset(&conn.stream().sock);
            return;
        }
        let answer = router::route(shared, &request);
        shared.log.push(LogEntry {
            conn: id,
            method: request.method.clone(),
            path: request.path.clone(),
            grant: answer.grant,
            status: answer.reply.status(),
            error: answer.error,
            host: called_host(&request),
        });
        let close = request.wants_close();
        let stream = conn.stream();
        match answer.reply {
            Reply::Send(response) => {
                if response.write_to(stream, close).is_err() || close {
                    break;
                }
            }
            Reply::Close => break,
            Reply::Stall(duration) => {
                thread::sleep(duration);
                break;
            }
            Reply::Late(duration, response) => {
                thread::sleep(duration);
                if response.write_to(stream, close).is_err() || close {
                    break;
                }
            }
            Reply::Truncate(response) => {
                let _ = truncate(stream, &response);
                break;
            }
            Reply::Trickle(response, every) => {
                let _ = trickle(stream, &response, every);
                break;
            }
            Reply::Reset(response) => {
                let head = response.head(true);
                let _ = stream
                    .write_all(&head[..head.len() / 2])
                    .and_then(|()| stream.flush());
                reset(&stream.sock);
                return; // dropping the socket now sends the RST
            }
        }
    }
    let stream = conn.stream();
    stream.conn.send_close_notify();
    let _ = stream.flush();
    let _ = stream.sock.shutdown(Shutdown::Both);
}

/// The `Host` header's name part, bounded, for the log.
fn called_host(request: &crate::http::Request) -> String {
    let host = request.header("host").unwrap_or("");
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    name.chars().take(255).collect()
}

/// Announces the whole body but sends only its first half.
fn truncate(stream: &mut TlsStream, response: &Response) -> io::Result<()> {
    let Body::Bytes(body) = &response.body else {
        return Ok(());
    };
    stream.write_all(&response.head_with_length(body.len() as u64, true))?;
    stream.write_all(&body[..body.len() / 2])?;
    stream.flush()
}

/// Sends the head (announcing a gigabyte) and the body, then a space every `every`, until the
/// client goes away or `TRICKLE_FOR` passes: a reply that never ends, each read answered.
fn trickle(stream: &mut TlsStream, response: &Response, every: Duration) -> io::Result<()> {
    let Body::Bytes(body) = &response.body else {
        return Ok(());
    };
    stream.write_all(&response.head_with_length(1 << 30, true))?;
    stream.write_all(body)?;
    stream.flush()?;
    let end = std::time::Instant::now() + crate::faults::TRICKLE_FOR;
    while std::time::Instant::now() < end {
        thread::sleep(every);
        stream.write_all(b" ")?;
        stream.flush()?;
    }
    Ok(())
}

/// Makes the coming close a reset (RST) instead of an orderly FIN.
#[cfg(unix)]
fn reset(sock: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the descriptor belongs to `sock`, which is alive for this call, and the
    // option value is a `linger` struct of exactly the size passed.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// Elsewhere an orderly close is the best we can do.
#[cfg(not(unix))]
fn reset(_sock: &TcpStream) {}
