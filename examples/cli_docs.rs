//! Writes the man pages and the shell completions from sfpair's command table into a
//! directory, for packages: `cargo run --example cli_docs -- OUTDIR` writes `OUTDIR/sfpair.1`,
//! one `OUTDIR/sfpair-COMMAND.1` per command, `OUTDIR/sfpair.bash` and `OUTDIR/_sfpair` (zsh).
//!
//! Host-side only: the `sfpair` binary never contains this code.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let Some(out) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: cargo run --example cli_docs -- OUTDIR");
        std::process::exit(2);
    };
    std::fs::create_dir_all(&out)?;
    for (name, page) in sfpair::cli::man::pages() {
        std::fs::write(out.join(name), page)?;
    }
    std::fs::write(out.join("sfpair.bash"), sfpair::cli::completions::bash())?;
    std::fs::write(out.join("_sfpair"), sfpair::cli::completions::zsh())?;
    eprintln!("wrote the man pages and completions in {}", out.display());
    Ok(())
}
