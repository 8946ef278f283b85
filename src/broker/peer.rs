//! Who is on the other end of a broker connection, and whether they may ask for a token.
//!
//! The kernel tells us (`SO_PEERCRED`: the peer's pid, effective uid and effective gid when it
//! connected); nothing the client sends is trusted for this, and a refused client's request is
//! never read. The rule, [`Policy::admits`], is pure and unit-tested: root, the broker's own
//! user, and the listed uids and gids may ask. Only the peer's effective gid is known:
//! supplementary groups are not, so a process that is in the socket's group only as a
//! supplementary group needs its uid listed (`--allow-uid`).

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

/// The credentials the kernel recorded for a connected peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    /// The client's process id.
    pub pid: i32,
    /// Its effective user id.
    pub uid: u32,
    /// Its effective group id.
    pub gid: u32,
}

/// Who may ask for a token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// The broker's own effective uid.
    pub server_uid: u32,
    /// `--allow-uid`.
    pub uids: Vec<u32>,
    /// `--allow-gid`, and the `--socket-group`.
    pub gids: Vec<u32>,
}

impl Policy {
    /// Root, the broker's own user, a listed uid, or a listed (effective) gid.
    pub fn admits(&self, peer: &Peer) -> bool {
        peer.uid == 0
            || peer.uid == self.server_uid
            || self.uids.contains(&peer.uid)
            || self.gids.contains(&peer.gid)
    }
}

/// The peer's credentials from the kernel (`SO_PEERCRED`, Linux).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn peer_of(stream: &UnixStream) -> io::Result<Peer> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: the descriptor belongs to `stream`, alive for this call; `cred` is a ucred of
    // exactly `len` bytes, which the kernel fills in.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Peer {
        pid: cred.pid,
        uid: cred.uid,
        gid: cred.gid,
    })
}

/// Elsewhere the credentials are unknown, so nobody is admitted.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn peer_of(_stream: &UnixStream) -> io::Result<Peer> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "peer credentials (SO_PEERCRED) are only implemented for Linux",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uid: u32, gid: u32) -> Peer {
        Peer { pid: 42, uid, gid }
    }

    #[test]
    fn root_self_and_the_listed_ids_are_admitted_and_nobody_else() {
        let policy = Policy {
            server_uid: 998,
            uids: vec![1001],
            gids: vec![120],
        };
        assert!(policy.admits(&peer(0, 0)), "root");
        assert!(policy.admits(&peer(998, 998)), "the broker's own user");
        assert!(policy.admits(&peer(1001, 1001)), "a listed uid");
        assert!(policy.admits(&peer(1500, 120)), "a listed gid");
        assert!(!policy.admits(&peer(1500, 1500)), "anyone else");
        assert!(!policy.admits(&peer(65534, 65534)), "nobody");
        let strict = Policy {
            server_uid: 998,
            ..Policy::default()
        };
        assert!(!strict.admits(&peer(1001, 120)));
    }

    #[test]
    fn the_kernel_reports_our_own_credentials_on_a_socket_pair() {
        let (a, _b) = UnixStream::pair().unwrap();
        let me = peer_of(&a).unwrap();
        // SAFETY: getuid/getgid have no preconditions and cannot fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        assert_eq!((me.uid, me.gid), (uid, gid));
        assert_eq!(me.pid, std::process::id() as i32);
    }
}
