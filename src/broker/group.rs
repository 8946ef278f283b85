//! `--socket-group`: a group given by name or number, as a gid (getgrnam_r).
//!
//! Lookup only; the socket itself is `socket.rs`'s.

use crate::error::Error;

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

    #[test]
    fn groups_by_number_or_name() {
        assert_eq!(group_id("4242").unwrap(), 4242);
        assert_eq!(group_id("root").unwrap(), 0);
        assert!(group_id("no-such-group-sfpair").is_err());
    }
}
