//! `--seal tpm2`: the data key sealed to the board's TPM 2.0 through tpm2-tools (shelled out:
//! a TSS binding links C libraries the armhf cross build does not have, and costs more bytes;
//! BENCHMARKS.md, "Sealing").
//!
//! Sealing makes the owner hierarchy's primary key (ECC P-256, a fixed template, so the same
//! TPM makes the same key again from its seed), creates a sealed data object under it with the
//! key read from standard input, and stores the object's public and private parts (the private
//! part is encrypted by the primary key: only this TPM, with this seed, loads it). Opening
//! makes the primary again, loads the object and unseals it to standard output. A TPM that is
//! cleared gets a new seed: the object no longer loads, and the record says so (`Unopened`).
//!
//! The key only goes through pipes (`child.rs`). The context files the tools exchange live in
//! a private directory (0700, removed afterwards); they hold TPM-wrapped blobs, never the key.
//! Transient objects and sessions are flushed before the first step and after each: without a
//! resource manager (a software TPM reached directly) the TPM has room for three of each, and a
//! process killed in the middle of a step leaves its own behind. (The kernel's `/dev/tpmrm0` flushes a
//! closed connection's objects itself; the flush is then a no-op.)

use std::ffi::OsStr;
use std::fs::{self, DirBuilder};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::child::{self, Ran};
use super::{DataKey, KEY_LEN, Sealer};
use crate::error::Error;

const PACKAGE: &str = "tpm2-tools";
/// The primary key's template; changing it would make every sealed record unopenable.
const PRIMARY: [&str; 6] = ["-C", "o", "-g", "sha256", "-G", "ecc256:aes128cfb"];
const PRIMARY_ATTRIBUTES: &str =
    "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|decrypt";

/// Seals the data key to the board's TPM under a primary key it makes again each time (tpm2-tools).
pub struct Tpm2 {
    /// The TCTI tpm2-tools are given (`-T`).
    tcti: String,
}

impl Tpm2 {
    /// `tpm`: a TCTI (`swtpm:host=127.0.0.1,port=2321`, `device:/dev/tpmrm0`), or a device path.
    pub fn new(tpm: &str) -> Tpm2 {
        let tcti = if tpm.starts_with('/') {
            format!("device:{tpm}")
        } else {
            tpm.to_string()
        };
        Tpm2 { tcti }
    }

    fn tool(&self, program: &str, args: &[&OsStr], input: &[u8]) -> Result<Ran, Error> {
        let mut all: Vec<&OsStr> = vec![OsStr::new("-T"), OsStr::new(&self.tcti)];
        all.extend_from_slice(args);
        let mut ran = child::run(program, &all, input, PACKAGE)?;
        if !ran.success && ran.stderr.contains("out of memory for") {
            // Another process's leftovers filled the TPM's few slots meanwhile: once more.
            self.flush();
            ran = child::run(program, &all, input, PACKAGE)?;
        }
        if ran.success {
            return Ok(ran);
        }
        let said = ran.said();
        let why = if ran.stderr.contains("Could not load tcti") {
            format!(
                "there is no TPM at {} ({said}): check --tpm (SFPAIR_TPM), and that the TPM \
                 device or the resource manager is there",
                self.tcti
            )
        } else if ran.stderr.contains("integrity check failed") {
            "this TPM did not seal it: the store was copied from another board, or this TPM \
             was cleared since it was sealed. Put the store back on its board (or the TPM's \
             state back), or pair again"
                .to_string()
        } else {
            format!("{program} failed: {said}")
        };
        Err(Error::config(why))
    }

    /// Drops the transient objects and sessions the last step (or a killed process) left in
    /// the TPM. Best effort: a handle can go away between listing and flushing (its owner
    /// flushed it), and a step that still finds no room says so itself.
    fn flush(&self) {
        let args = ["-T", &self.tcti, "-t", "-l", "-s"].map(OsStr::new);
        let _ = child::run("tpm2_flushcontext", &args, b"", PACKAGE);
    }

    /// Makes the primary key into `dir/primary.ctx` (and flushes it: the context stays usable).
    fn primary(&self, dir: &Scratch) -> Result<PathBuf, Error> {
        self.flush();
        let ctx = dir.file("primary.ctx");
        let mut args: Vec<&OsStr> = PRIMARY.iter().map(OsStr::new).collect();
        args.extend([
            OsStr::new("-a"),
            OsStr::new(PRIMARY_ATTRIBUTES),
            OsStr::new("-c"),
            ctx.as_os_str(),
        ]);
        self.tool("tpm2_createprimary", &args, b"")?;
        self.flush();
        Ok(ctx)
    }
}

/// A private directory for the tools' files, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch, Error> {
        let base = std::env::temp_dir();
        let mut last = None;
        for _ in 0..8 {
            let mut tag = [0u8; 8];
            use ring::rand::SecureRandom;
            ring::rand::SystemRandom::new()
                .fill(&mut tag)
                .map_err(|_| Error::config("the system's random source failed"))?;
            let dir = base.join(format!("sfpair-tpm2-{:016x}", u64::from_le_bytes(tag)));
            // 0700 from the start; an existing name (planted or not) is never used.
            match DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok(Scratch(dir)),
                Err(e) => last = Some(e),
            }
        }
        Err(Error::config(format!(
            "cannot make a private directory in {} for tpm2-tools: {}",
            base.display(),
            last.map(|e| e.to_string()).unwrap_or_default()
        )))
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    fs::read(path).map_err(|e| Error::config(format!("cannot read {}: {e}", path.display())))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    fs::write(path, bytes)
        .map_err(|e| Error::config(format!("cannot write {}: {e}", path.display())))
}

impl Sealer for Tpm2 {
    fn seal(&self, key: &[u8; KEY_LEN]) -> Result<Vec<u8>, Error> {
        let dir = Scratch::new()?;
        let primary = self.primary(&dir)?;
        let (public, private) = (dir.file("key.pub"), dir.file("key.priv"));
        let args = [
            OsStr::new("-C"),
            primary.as_os_str(),
            OsStr::new("-i"),
            OsStr::new("-"),
            OsStr::new("-u"),
            public.as_os_str(),
            OsStr::new("-r"),
            private.as_os_str(),
        ];
        self.tool("tpm2_create", &args, key)?;
        self.flush();
        let (public, private) = (read(&public)?, read(&private)?);
        // The public part's length, then both parts.
        let mut sealed = Vec::with_capacity(2 + public.len() + private.len());
        sealed.extend_from_slice(&(public.len() as u16).to_le_bytes());
        sealed.extend_from_slice(&public);
        sealed.extend_from_slice(&private);
        Ok(sealed)
    }

    fn unseal(&self, sealed: &[u8]) -> Result<DataKey, Error> {
        let malformed = || Error::config("the sealed key is not a tpm2 object (damaged?)");
        let (len, rest) = sealed.split_at_checked(2).ok_or_else(malformed)?;
        let len = u16::from_le_bytes([len[0], len[1]]) as usize;
        let (public, private) = rest.split_at_checked(len).ok_or_else(malformed)?;
        let dir = Scratch::new()?;
        let primary = self.primary(&dir)?;
        let (pub_file, priv_file, object) = (
            dir.file("key.pub"),
            dir.file("key.priv"),
            dir.file("key.ctx"),
        );
        write(&pub_file, public)?;
        write(&priv_file, private)?;
        let args = [
            OsStr::new("-C"),
            primary.as_os_str(),
            OsStr::new("-u"),
            pub_file.as_os_str(),
            OsStr::new("-r"),
            priv_file.as_os_str(),
            OsStr::new("-c"),
            object.as_os_str(),
        ];
        self.tool("tpm2_load", &args, b"")?;
        self.flush();
        let ran = self.tool("tpm2_unseal", &[OsStr::new("-c"), object.as_os_str()], b"");
        self.flush();
        let ran = ran?;
        if ran.stdout.len() != KEY_LEN {
            return Err(Error::config(
                "the TPM unsealed something that is not a data key",
            ));
        }
        let mut key: DataKey = Zeroizing::new([0; KEY_LEN]);
        key.copy_from_slice(&ran.stdout);
        Ok(key)
    }
}
