//! The power-cut model of a directory, for the tests: a [`Disk`] that remembers what was synced.
//!
//! Each file (an inode) keeps its synced bytes and the operations since its last fsync (writes
//! and truncations); the directory keeps its synced names and the renames, creations and
//! removals since its last fsync. [`Power::cut`] keeps, for each file and for the directory
//! independently, any prefix of those pending operations, the last kept write possibly torn to
//! a prefix of its bytes: what a real filesystem may leave after a power cut (ext4 ordered, UBIFS
//! and friends promise no more). After the budget of write operations is spent, every further
//! operation fails, as if the power were gone.
//!
//! The model can also be full ([`Power::set_full`]): then an append fails with `StorageFull`
//! unless it fits in what [`Disk::reserve`] set aside for that file beforehand, as blocks
//! allocated ahead (`fallocate`) are used on a real one; a truncation gives the room back.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};

use super::disk::Disk;

#[derive(Clone)]
enum Op {
    Write { at: u64, bytes: Vec<u8> },
    Truncate(u64),
}

#[derive(Clone, Default)]
struct Inode {
    synced: Vec<u8>,
    pending: Vec<Op>,
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
        Op::Truncate(len) => content.truncate(*len as usize),
    }
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

#[derive(Clone)]
enum DirOp {
    Link(String, usize),
    Unlink(String),
    Rename(String, String),
}

fn apply_dir(names: &mut BTreeMap<String, usize>, op: &DirOp) {
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

#[derive(Clone, Default)]
struct Fs {
    inodes: Vec<Inode>,
    synced_names: BTreeMap<String, usize>,
    pending_names: Vec<DirOp>,
    /// Write operations done so far.
    ops: usize,
    /// After this many write operations, everything fails.
    budget: Option<usize>,
    /// No free space: only reserved bytes may be appended.
    full: bool,
    /// Bytes set aside per file name by `reserve`.
    reserved: BTreeMap<String, u64>,
}

impl Fs {
    fn names(&self) -> BTreeMap<String, usize> {
        let mut n = self.synced_names.clone();
        for op in &self.pending_names {
            apply_dir(&mut n, op);
        }
        n
    }
    fn inode(&self, name: &str) -> Option<usize> {
        self.names().get(name).copied()
    }
    /// Counts one write operation; fails once the power is gone.
    fn spend(&mut self) -> io::Result<()> {
        if self.budget.is_some_and(|b| self.ops >= b) {
            return Err(io::Error::other("power cut"));
        }
        self.ops += 1;
        Ok(())
    }
}

/// A small deterministic generator (xorshift), so every failing case can be replayed.
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// The shared state of one modelled directory; handles ([`ModelDisk`]) share it.
#[derive(Clone, Default)]
pub struct Power(Arc<Mutex<Fs>>);

/// How a cut treats what was not synced.
#[derive(Clone, Copy)]
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

impl Power {
    pub fn disk(&self) -> ModelDisk {
        ModelDisk(self.clone())
    }
    /// Write operations done so far.
    pub fn ops(&self) -> usize {
        self.0.lock().unwrap().ops
    }
    pub fn set_budget(&self, budget: Option<usize>) {
        self.0.lock().unwrap().budget = budget;
    }
    /// Fills the disk (or frees it).
    pub fn set_full(&self, full: bool) {
        self.0.lock().unwrap().full = full;
    }
    /// The directory after a power cut now: a new, independent one.
    pub fn cut(&self, loss: Loss) -> Power {
        let fs = self.0.lock().unwrap().clone();
        let mut rng = Rng(match loss {
            Loss::Random(seed) => seed | 1,
            _ => 1,
        });
        let keep = |pending: usize, rng: &mut Rng| match loss {
            Loss::All => 0,
            Loss::None | Loss::TornLast => pending,
            Loss::Random(_) => rng.below(pending + 1),
        };
        let mut out = Fs::default();
        for inode in &fs.inodes {
            let k = keep(inode.pending.len(), &mut rng);
            let mut content = inode.synced.clone();
            for (i, op) in inode.pending[..k].iter().enumerate() {
                let last = i + 1 == k;
                match op {
                    Op::Write { at, bytes } if last && !matches!(loss, Loss::None) => {
                        let n = match loss {
                            Loss::TornLast => bytes.len() / 2,
                            _ => rng.below(bytes.len() + 1),
                        };
                        apply(
                            &mut content,
                            &Op::Write {
                                at: *at,
                                bytes: bytes[..n].to_vec(),
                            },
                        );
                    }
                    op => apply(&mut content, op),
                }
            }
            out.inodes.push(Inode {
                synced: content,
                pending: Vec::new(),
            });
        }
        let k = keep(fs.pending_names.len(), &mut rng);
        out.synced_names = fs.synced_names.clone();
        for op in &fs.pending_names[..k] {
            apply_dir(&mut out.synced_names, op);
        }
        Power(Arc::new(Mutex::new(out)))
    }
    /// A file's current content (for the tests to damage or inspect).
    pub fn content(&self, name: &str) -> Option<Vec<u8>> {
        let fs = self.0.lock().unwrap();
        fs.inode(name).map(|i| fs.inodes[i].current())
    }
}

/// A handle on a modelled directory.
pub struct ModelDisk(Power);

fn missing() -> io::Error {
    io::Error::from(io::ErrorKind::NotFound)
}

impl Disk for ModelDisk {
    fn len(&mut self, name: &str) -> io::Result<Option<u64>> {
        let fs = self.0.0.lock().unwrap();
        Ok(fs.inode(name).map(|i| fs.inodes[i].current().len() as u64))
    }
    fn read_at(&mut self, name: &str, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let fs = self.0.0.lock().unwrap();
        let i = fs.inode(name).ok_or_else(missing)?;
        let c = fs.inodes[i].current();
        let from = (offset as usize).min(c.len());
        let n = buf.len().min(c.len() - from);
        buf[..n].copy_from_slice(&c[from..from + n]);
        Ok(n)
    }
    fn append(&mut self, name: &str, bytes: &[u8]) -> io::Result<bool> {
        let mut fs = self.0.0.lock().unwrap();
        if fs.full {
            let room = fs.reserved.get(name).copied().unwrap_or(0);
            if (bytes.len() as u64) > room {
                return Err(io::Error::from(io::ErrorKind::StorageFull));
            }
            fs.reserved.insert(name.into(), room - bytes.len() as u64);
        }
        fs.spend()?;
        let (i, created) = match fs.inode(name) {
            Some(i) => (i, false),
            None => {
                fs.inodes.push(Inode::default());
                let i = fs.inodes.len() - 1;
                fs.pending_names.push(DirOp::Link(name.into(), i));
                (i, true)
            }
        };
        let at = fs.inodes[i].current().len() as u64;
        fs.inodes[i].pending.push(Op::Write {
            at,
            bytes: bytes.to_vec(),
        });
        Ok(created)
    }
    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()> {
        let mut fs = self.0.0.lock().unwrap();
        fs.reserved.remove(name);
        fs.spend()?;
        let i = fs.inode(name).ok_or_else(missing)?;
        fs.inodes[i].pending.push(Op::Truncate(len));
        Ok(())
    }
    fn fsync(&mut self, name: &str) -> io::Result<()> {
        let mut fs = self.0.0.lock().unwrap();
        fs.spend()?;
        let i = fs.inode(name).ok_or_else(missing)?;
        let c = fs.inodes[i].current();
        fs.inodes[i] = Inode {
            synced: c,
            pending: Vec::new(),
        };
        Ok(())
    }
    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        let mut fs = self.0.0.lock().unwrap();
        fs.spend()?;
        fs.inode(from).ok_or_else(missing)?;
        fs.pending_names.push(DirOp::Rename(from.into(), to.into()));
        Ok(())
    }
    fn remove(&mut self, name: &str) -> io::Result<()> {
        let mut fs = self.0.0.lock().unwrap();
        if fs.inode(name).is_none() {
            return Ok(());
        }
        fs.spend()?;
        fs.pending_names.push(DirOp::Unlink(name.into()));
        Ok(())
    }
    fn fsync_dir(&mut self) -> io::Result<()> {
        let mut fs = self.0.0.lock().unwrap();
        fs.spend()?;
        fs.synced_names = fs.names();
        fs.pending_names.clear();
        Ok(())
    }
    fn lock(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn unlock(&mut self) {}
    fn open_lock(&self, _name: &str) -> io::Result<std::fs::File> {
        // The model has no files to lock; its tests never deliver.
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
    fn reserve(&mut self, name: &str, bytes: u64) -> io::Result<bool> {
        let mut fs = self.0.0.lock().unwrap();
        if fs.full {
            return Err(io::Error::from(io::ErrorKind::StorageFull));
        }
        fs.spend()?;
        let created = fs.inode(name).is_none();
        if created {
            fs.inodes.push(Inode::default());
            let i = fs.inodes.len() - 1;
            fs.pending_names.push(DirOp::Link(name.into(), i));
        }
        fs.reserved.insert(name.into(), bytes);
        Ok(created)
    }
}
