//! The file store's write path: the one recipe that replaces a record atomically, over the few
//! file operations it needs ([`Files`]). `file.rs` runs it on the real directory ([`RealDir`]);
//! the power-cut model (`power.rs`, tests only) runs the same recipe and loses what was not
//! synced, so every write boundary of a save is tested (`tests` below).
//!
//! The recipe (docs/embedded.md, "Power-safe file writes"): a temporary file beside the record,
//! 0600 from its first byte and never through a link, written whole and fsynced; renamed over
//! the record; the directory fsynced. Each name then holds a complete record at every moment,
//! so a power cut leaves the old record or the new one, and the new one once `replace` returned.
//!
//! This file knows nothing of record formats, locks or who owns the directory (`file.rs` checks
//! those before it writes); it must not log the bytes it writes.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::PathBuf;

use log::debug;

/// The operations of the recipe, on files of one directory named by their file names. Each one
/// that changes something is a write boundary.
pub trait Files {
    type File;
    /// Creates `name` for writing: mode 0600 from the first byte, failing if anything (a link
    /// included) is already there.
    fn create(&mut self, name: &OsStr) -> io::Result<Self::File>;
    fn write_at(&mut self, file: &mut Self::File, at: u64, bytes: &[u8]) -> io::Result<()>;
    fn set_len(&mut self, file: &mut Self::File, len: u64) -> io::Result<()>;
    /// Makes the file's data durable (fsync).
    fn sync(&mut self, file: &mut Self::File) -> io::Result<()>;
    /// Replaces `to` with `from`; durable only after [`Files::sync_dir`].
    fn rename(&mut self, from: &OsStr, to: &OsStr) -> io::Result<()>;
    /// Removes `name`: `Ok(false)` when it was not there.
    fn remove(&mut self, name: &OsStr) -> io::Result<bool>;
    /// Makes the directory's names durable (fsync of the directory).
    fn sync_dir(&mut self) -> io::Result<()>;
}

/// What went wrong in [`replace`].
#[derive(Debug)]
pub enum Failed {
    /// Before the rename took effect: the old record is untouched, the temporary file removed.
    Write(io::Error),
    /// The new record is in place, but the directory could not be fsynced: the rename may not
    /// survive a power cut (UBIFS, ext4 without auto_da_alloc).
    SyncDir(io::Error),
}

/// A fresh temporary file named `temp`. We hold the store's lock, so a file left there is a
/// crashed writer's: it is removed first.
pub fn create_temp<F: Files>(files: &mut F, temp: &OsStr) -> io::Result<F::File> {
    if files.remove(temp)? {
        debug!("removed a stale temporary file {}", temp.to_string_lossy());
    }
    files.create(temp)
}

/// Reserves `len` zero bytes in a fresh `temp`, fsynced, for a save that then needs no new
/// blocks (`prepare_save`: a full disk is found before a refresh is sent, not after).
pub fn reserve<F: Files>(files: &mut F, temp: &OsStr, len: usize) -> io::Result<F::File> {
    let mut file = create_temp(files, temp)?;
    let filled = files
        .write_at(&mut file, 0, &vec![0u8; len])
        .and_then(|()| files.sync(&mut file));
    match filled {
        Ok(()) => Ok(file),
        Err(e) => {
            let _ = files.remove(temp);
            Err(e)
        }
    }
}

/// Replaces the record at `target` with `bytes`: written into `temp` (a fresh file, or the one
/// [`reserve`] made, overwritten in place and cut to length), fsynced, renamed over `target`,
/// and the directory fsynced.
pub fn replace<F: Files>(
    files: &mut F,
    temp: &OsStr,
    target: &OsStr,
    bytes: &[u8],
    reserved: Option<F::File>,
) -> Result<(), Failed> {
    let written = match reserved {
        Some(mut file) => files
            .write_at(&mut file, 0, bytes)
            .and_then(|()| files.set_len(&mut file, bytes.len() as u64))
            .and_then(|()| files.sync(&mut file)),
        None => create_temp(files, temp).and_then(|mut file| {
            files
                .write_at(&mut file, 0, bytes)
                .and_then(|()| files.sync(&mut file))
        }),
    }
    .and_then(|()| files.rename(temp, target));
    if let Err(e) = written {
        let _ = files.remove(temp);
        return Err(Failed::Write(e));
    }
    files.sync_dir().map_err(Failed::SyncDir)
}

/// A directory on the filesystem.
pub struct RealDir(pub PathBuf);

impl Files for RealDir {
    type File = File;

    fn create(&mut self, name: &OsStr) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(self.0.join(name))
    }

    fn write_at(&mut self, file: &mut File, at: u64, bytes: &[u8]) -> io::Result<()> {
        file.write_all_at(bytes, at)
    }

    fn set_len(&mut self, file: &mut File, len: u64) -> io::Result<()> {
        file.set_len(len)
    }

    fn sync(&mut self, file: &mut File) -> io::Result<()> {
        file.sync_all()
    }

    fn rename(&mut self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        fs::rename(self.0.join(from), self.0.join(to))
    }

    fn remove(&mut self, name: &OsStr) -> io::Result<bool> {
        match fs::remove_file(self.0.join(name)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn sync_dir(&mut self) -> io::Result<()> {
        File::open(&self.0)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::dialect::Dialect;
    use crate::secret::Secret;
    use crate::store::file::loaded;
    use crate::store::power::{Disk, Loss};
    use crate::store::{Loaded, Record, record};

    const TEMP: &str = ".token.tmp";
    const TOKEN: &str = "token";
    /// What `prepare_save` reserves (`file.rs`): more than any record.
    const RESERVE: usize = record::MAX_PAYLOAD + record::HEADER_LEN + record::CRC_LEN;

    /// Records of different lengths, so that a torn or a shorter overwrite shows.
    fn sample(rt: &str) -> Record {
        Record {
            refresh_token: Secret::new(rt),
            client_id: "K".into(),
            dialect: Dialect::Salesforce,
            login_url: "https://login.salesforce.com".into(),
            token_url: "https://login.salesforce.com/services/oauth2/token".into(),
            revoke_url: None,
            instance_url: "https://x.my.salesforce.com".into(),
            identity_url: String::new(),
            scope: "api refresh_token".into(),
            issued_at_ms: 1,
            paired_at: 2,
            grant: Default::default(),
        }
    }

    /// How far a script got before the power went.
    #[derive(Debug, Default)]
    struct Progress {
        /// The record of the last save that returned: a cut from then on must show it.
        promised: Option<Record>,
        /// The save the power cut short, if any: a cut may show it or the promised one.
        in_flight: Option<Record>,
        done: bool,
    }

    fn save(disk: &mut Disk, record: &Record, reserved: Option<usize>) -> bool {
        let bytes = record::to_bytes(record, 0).unwrap();
        let to = |s: &str| OsStr::new(s).to_owned();
        replace(disk, &to(TEMP), &to(TOKEN), &bytes, reserved).is_ok()
    }

    /// The saves of a store's life, as `FileStore::save` and `prepare_save` make them: a first
    /// record, a fresh temporary file over it, two saves into a temporary file reserved first
    /// (a shorter record, then a longer one), and a fresh one again.
    fn script(disk: &mut Disk) -> Progress {
        let mut p = Progress::default();
        let steps: [(&str, bool); 5] = [
            ("first-refresh-token", false),
            ("a-much-longer-second-refresh-token-that-rotated", false),
            ("short-3rd", true),
            ("the-fourth-refresh-token-after-a-reserve", true),
            ("fifth", false),
        ];
        for (rt, reserve_first) in steps {
            let record = sample(rt);
            let reserved = match reserve_first {
                true => match reserve(disk, OsStr::new(TEMP), RESERVE) {
                    Ok(file) => Some(file),
                    Err(_) => return p,
                },
                false => None,
            };
            if !save(disk, &record, reserved) {
                p.in_flight = Some(record);
                return p;
            }
            p.promised = Some(record);
        }
        p.done = true;
        p
    }

    fn load(disk: &Disk) -> Loaded {
        match disk.content(TOKEN) {
            Some(bytes) => loaded(&bytes, &mut crate::store::sealed::Plain),
            None => Loaded::Empty,
        }
    }

    #[test]
    fn a_power_cut_at_every_write_boundary_leaves_the_old_record_or_the_new_one() {
        let mut full = Disk::default();
        assert!(script(&mut full).done, "the script runs to the end");
        let total = full.ops();
        assert!(total > 25, "the script does {total} write operations");
        let mut cases = 0;
        for budget in 0..=total {
            let mut disk = Disk::with_budget(Some(budget));
            let p = script(&mut disk);
            assert_eq!(p.done, budget == total, "budget {budget}");
            let losses = [
                Loss::All,
                Loss::None,
                Loss::TornLast,
                Loss::Random(budget as u64 * 31 + 1),
                Loss::Random(budget as u64 * 31 + 2),
                Loss::Random(budget as u64 * 31 + 3),
            ];
            for (n, loss) in losses.into_iter().enumerate() {
                let mut after = disk.cut(loss);
                let what = format!("cut after {budget} of {total} writes, loss {n}");
                let old = p.promised.clone().map_or(Loaded::Empty, Loaded::Paired);
                let new = p.in_flight.clone().map(Loaded::Paired);
                let got = load(&after);
                assert!(
                    got == old || Some(&got) == new.as_ref(),
                    "{what}: neither the old record nor the new one: {got:?}"
                );
                // What the cut left (a stale temporary file, a torn one) never blocks the
                // next save, and that save is durable once it returned.
                let next = sample("after-the-cut");
                assert!(save(&mut after, &next, None), "{what}: the next save");
                assert_eq!(load(&after), Loaded::Paired(next.clone()), "{what}");
                let next_cut = after.cut(Loss::All);
                assert_eq!(load(&next_cut), Loaded::Paired(next), "{what}: durable");
                cases += 1;
            }
        }
        assert!(cases > 150, "{cases} cases");
    }
}
