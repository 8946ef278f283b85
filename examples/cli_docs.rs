//! Writes the man pages and the shell completions from sfpair's command table into a
//! directory, for packages: `cargo run --example cli_docs -- OUTDIR` writes `OUTDIR/man/*.1`,
//! `OUTDIR/completions/sfpair.bash` and `OUTDIR/completions/_sfpair` (zsh).
//!
//! Host-side only: the `sfpair` binary never contains this code.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let Some(out) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: cargo run --example cli_docs -- OUTDIR");
        std::process::exit(2);
    };
    let man = out.join("man");
    let completions = out.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    for (name, page) in sfpair::cli::man::pages() {
        std::fs::write(man.join(name), page)?;
    }
    std::fs::write(
        completions.join("sfpair.bash"),
        sfpair::cli::completions::bash(),
    )?;
    std::fs::write(completions.join("_sfpair"), sfpair::cli::completions::zsh())?;
    eprintln!("wrote {} and {}", man.display(), completions.display());
    Ok(())
}
