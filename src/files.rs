//! Small files read whole, with a size limit: secret files, CA bundles, board profiles, key
//! files. A path pointed at `/dev/zero` or a log file must not hang the agent or fill its memory.
//!
//! Reading only; writing records is the stores' job (`store/`).

use std::io::Read;
use std::path::Path;

/// Reads a small text file, refusing anything longer than `limit` bytes.
pub fn read_small(path: &Path, limit: u64) -> std::io::Result<String> {
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > limit {
        return Err(std::io::Error::other(format!("longer than {limit} bytes")));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_files_over_the_limit() {
        assert!(read_small(Path::new("/dev/zero"), 16).is_err());
        let path = std::env::temp_dir().join(format!("sfpair-files-{}", std::process::id()));
        std::fs::write(&path, "0123456789").unwrap();
        assert_eq!(read_small(&path, 10).unwrap(), "0123456789");
        let e = read_small(&path, 9).unwrap_err();
        assert!(e.to_string().contains("longer than 9 bytes"), "{e}");
        std::fs::remove_file(&path).unwrap();
    }
}
