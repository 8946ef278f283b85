//! The power-cut model of the file store's directory, for the tests: a [`Files`] that
//! remembers what was synced.
//!
//! Each file (an inode) keeps its synced bytes and the writes and truncations since its last
//! fsync; the directory keeps its synced names and the creations, renames and removals since
//! its last fsync. [`Disk::cut`] keeps, for each file and for the directory independently, any
//! prefix of those pending operations, the last kept write possibly torn to a prefix of its
//! bytes: what a real filesystem may leave after a power cut (ext4 ordered, UBIFS and friends
//! promise no more). Once the budget of write operations is spent, every further one fails, as
//! if the power were gone. The outbox has the same model over its own seam (`outbox/model.rs`).

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io;

use super::replace::Files;

#[derive(Clone, Debug)]
enum Op {
    Write { at: u64, bytes: Vec<u8> },
    SetLen(u64),
}

fn apply(content: &mut Vec<u8>, op: &Op) {
    match op {
        Op::Write { at, bytes } => {
            let at = *at as usize;
            if content.len() < at + bytes.len() {
                content.resize(at + bytes.len(), 0);
            }
            content[at..at + bytes.len()].copy_from_slice(bytes);
        }
        Op::SetLen(len) => content.resize(*len as usize, 0),
    }
}

#[derive(Clone, Debug, Default)]
struct Inode {
    synced: Vec<u8>,
    pending: Vec<Op>,
}

impl Inode {
    fn current(&self) -> Vec<u8> {
        let mut c = self.synced.clone();
        for op in &self.pending {
            apply(&mut c, op);
        }
        c
    }
}

#[derive(Clone, Debug)]
enum DirOp {
    Link(OsString, usize),
    Unlink(OsString),
    Rename(OsString, OsString),
}

fn apply_dir(names: &mut BTreeMap<OsString, usize>, op: &DirOp) {
    match op {
        DirOp::Link(n, i) => {
            names.insert(n.clone(), *i);
        }
        DirOp::Unlink(n) => {
            names.remove(n);
        }
        DirOp::Rename(from, to) => {
            if let Some(i) = names.remove(from) {
                names.insert(to.clone(), i);
            }
        }
    }
}

/// How a cut treats what was not synced.
#[derive(Clone, Copy, Debug)]
pub enum Loss {
    /// Everything not synced is lost.
    All,
    /// Everything written survives (as after a `kill -9`).
    None,
    /// Everything survives but the last write of each file is torn in half.
    TornLast,
    /// Random prefixes, from this seed.
    Random(u64),
}

/// A small deterministic generator (xorshift), so every failing case can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// One modelled directory.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    inodes: Vec<Inode>,
    synced_names: BTreeMap<OsString, usize>,
    pending_names: Vec<DirOp>,
    /// Write operations done so far.
    ops: usize,
    /// After this many write operations, everything fails.
    budget: Option<usize>,
}

fn missing() -> io::Error {
    io::Error::from(io::ErrorKind::NotFound)
}

impl Disk {
    /// A directory whose power goes after `budget` write operations (`None`: never).
    pub fn with_budget(budget: Option<usize>) -> Disk {
        Disk {
            budget,
            ..Disk::default()
        }
    }

    /// Write operations done so far.
    pub fn ops(&self) -> usize {
        self.ops
    }

    /// Whether the power went (an operation was refused for want of it).
    pub fn out_of_power(&self) -> bool {
        self.budget.is_some_and(|b| self.ops >= b)
    }

    fn names(&self) -> BTreeMap<OsString, usize> {
        let mut n = self.synced_names.clone();
        for op in &self.pending_names {
            apply_dir(&mut n, op);
        }
        n
    }

    fn inode(&self, name: &OsStr) -> Option<usize> {
        self.names().get(name).copied()
    }

    /// Counts one write operation; fails once the power is gone.
    fn spend(&mut self) -> io::Result<()> {
        if self.out_of_power() {
            return Err(io::Error::other("power cut"));
        }
        self.ops += 1;
        Ok(())
    }

    /// A file's current content, `None` when the name does not exist.
    pub fn content(&self, name: &str) -> Option<Vec<u8>> {
        self.inode(OsStr::new(name))
            .map(|i| self.inodes[i].current())
    }

    /// The directory after a power cut now: a new one, with the power back.
    pub fn cut(&self, loss: Loss) -> Disk {
        let mut rng = Rng(match loss {
            Loss::Random(seed) => seed | 1,
            _ => 1,
        });
        let keep = |pending: usize, rng: &mut Rng| match loss {
            Loss::All => 0,
            Loss::None | Loss::TornLast => pending,
            Loss::Random(_) => rng.below(pending + 1),
        };
        let mut out = Disk::default();
        for inode in &self.inodes {
            let k = keep(inode.pending.len(), &mut rng);
            let mut content = inode.synced.clone();
            for (i, op) in inode.pending[..k].iter().enumerate() {
                match op {
                    Op::Write { at, bytes } if i + 1 == k && !matches!(loss, Loss::None) => {
                        let n = match loss {
                            Loss::TornLast => bytes.len() / 2,
                            _ => rng.below(bytes.len() + 1),
                        };
                        let torn = Op::Write {
                            at: *at,
                            bytes: bytes[..n].to_vec(),
                        };
                        apply(&mut content, &torn);
                    }
                    op => apply(&mut content, op),
                }
            }
            out.inodes.push(Inode {
                synced: content,
                pending: Vec::new(),
            });
        }
        let k = keep(self.pending_names.len(), &mut rng);
        out.synced_names = self.synced_names.clone();
        for op in &self.pending_names[..k] {
            apply_dir(&mut out.synced_names, op);
        }
        out
    }
}

impl Files for Disk {
    /// The inode.
    type File = usize;

    fn create(&mut self, name: &OsStr) -> io::Result<usize> {
        if self.inode(name).is_some() {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        self.spend()?;
        self.inodes.push(Inode::default());
        let i = self.inodes.len() - 1;
        self.pending_names.push(DirOp::Link(name.to_owned(), i));
        Ok(i)
    }

    fn write_at(&mut self, file: &mut usize, at: u64, bytes: &[u8]) -> io::Result<()> {
        self.spend()?;
        self.inodes[*file].pending.push(Op::Write {
            at,
            bytes: bytes.to_vec(),
        });
        Ok(())
    }

    fn set_len(&mut self, file: &mut usize, len: u64) -> io::Result<()> {
        self.spend()?;
        self.inodes[*file].pending.push(Op::SetLen(len));
        Ok(())
    }

    fn sync(&mut self, file: &mut usize) -> io::Result<()> {
        self.spend()?;
        let inode = &mut self.inodes[*file];
        *inode = Inode {
            synced: inode.current(),
            pending: Vec::new(),
        };
        Ok(())
    }

    fn rename(&mut self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        self.spend()?;
        self.inode(from).ok_or_else(missing)?;
        self.pending_names
            .push(DirOp::Rename(from.to_owned(), to.to_owned()));
        Ok(())
    }

    fn remove(&mut self, name: &OsStr) -> io::Result<bool> {
        if self.inode(name).is_none() {
            return Ok(false);
        }
        self.spend()?;
        self.pending_names.push(DirOp::Unlink(name.to_owned()));
        Ok(true)
    }

    fn sync_dir(&mut self) -> io::Result<()> {
        self.spend()?;
        self.synced_names = self.names();
        self.pending_names.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_loses_unsynced_bytes_and_unsynced_renames() {
        let mut d = Disk::default();
        let mut a = d.create(OsStr::new("a")).unwrap();
        d.write_at(&mut a, 0, b"synced").unwrap();
        d.sync(&mut a).unwrap();
        d.sync_dir().unwrap();
        d.write_at(&mut a, 6, b"+more").unwrap();
        let mut b = d.create(OsStr::new("b")).unwrap();
        d.write_at(&mut b, 0, b"new").unwrap();
        d.sync(&mut b).unwrap();
        d.rename(OsStr::new("b"), OsStr::new("c")).unwrap();
        let lost = d.cut(Loss::All);
        assert_eq!(lost.content("a").unwrap(), b"synced");
        assert!(lost.content("b").is_none() && lost.content("c").is_none());
        let kept = d.cut(Loss::None);
        assert_eq!(kept.content("a").unwrap(), b"synced+more");
        assert_eq!(kept.content("c").unwrap(), b"new");
        let torn = d.cut(Loss::TornLast);
        assert_eq!(torn.content("a").unwrap(), b"synced+m");
        // Overwritten in place, then cut shorter: both pending until the fsync.
        d.write_at(&mut a, 0, b"XY").unwrap();
        d.set_len(&mut a, 2).unwrap();
        assert_eq!(d.content("a").unwrap(), b"XY");
        assert_eq!(d.cut(Loss::All).content("a").unwrap(), b"synced");
        assert!(d.create(OsStr::new("a")).is_err(), "O_EXCL");
        let mut gone = Disk::with_budget(Some(0));
        assert!(gone.create(OsStr::new("x")).is_err(), "no power, no write");
        assert!(gone.out_of_power());
    }
}
