//! The `sfpair` command: parse -> settings -> run -> exit code.
//!
//! CLI only: the commands are library code (`commands/`), the settings are `config`'s. Errors
//! are printed once, as `error: …`, and mapped to the documented exit codes (`sfpair --help`,
//! the README). Output that cannot be written is exit 10, never a panic; a reader that went
//! away (`sfpair status | head -1`) ends it quietly, as Unix tools do.

use std::io::Write;
use std::process::ExitCode;

use sfpair::cli::{self, Args, Command};
use sfpair::commands::{self, BROKEN_PIPE};
use sfpair::config;
use sfpair::error::{Error, ErrorKind};

fn main() -> ExitCode {
    // Before anything holds a secret: no core file with a token, no ptrace by other processes.
    let hardened = sfpair::process::harden_process();
    sfpair::logging::init();
    if !hardened {
        log::debug!("could not make this process non-dumpable");
    }
    let result = cli::parse(std::env::args_os()).and_then(|args| run(&args));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if !(e.kind() == ErrorKind::Output && e.message() == BROKEN_PIPE) {
                // Nobody to tell when standard error cannot be written either; the exit code
                // still says it.
                let _ = writeln!(std::io::stderr(), "error: {e}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}

/// Standard output as the commands see it: the real one, or, when the process was started with
/// fd 1 closed (`sfpair token >&-`), a writer that fails, so `token` cannot exit 0 having
/// printed nothing.
enum Stdout {
    /// Not locked for the whole run: `run`'s supervisor thread shows codes on it too.
    Open(std::io::Stdout),
    Closed,
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stdout::Open(out) => out.write(buf),
            Stdout::Closed => Err(std::io::Error::from_raw_os_error(libc::EBADF)),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stdout::Open(out) => out.flush(),
            Stdout::Closed => Ok(()),
        }
    }
}

/// Whether the process was started with fd 1 closed (`sfpair token >&-`). Rust's runtime
/// points a closed fd 0-2 at /dev/null before `main` (so no file opened later becomes
/// "standard output"), which leaves one trace: /dev/null opened read-write. A shell's
/// `>/dev/null` opens it write-only, so that stays a normal, working standard output.
fn stdout_was_closed() -> bool {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: fcntl(F_GETFL) only queries the descriptor's flags.
    let flags = unsafe { libc::fcntl(1, libc::F_GETFL) };
    if flags == -1 || flags & libc::O_ACCMODE != libc::O_RDWR {
        return false;
    }
    let (Ok(fd1), Ok(null)) = (
        std::fs::metadata("/proc/self/fd/1"),
        std::fs::metadata("/dev/null"),
    ) else {
        return false;
    };
    fd1.rdev() == null.rdev() && fd1.ino() == null.ino()
}

fn run(args: &Args) -> Result<u8, Error> {
    let command = args.command.unwrap_or(Command::Help);
    let mut out = if stdout_was_closed() {
        Stdout::Closed
    } else {
        Stdout::Open(std::io::stdout())
    };
    if args.help || command == Command::Help {
        let help = match command {
            Command::Pair => cli::HELP_PAIR,
            Command::Token => cli::HELP_TOKEN,
            Command::Status => cli::HELP_STATUS,
            Command::Forget => cli::HELP_FORGET,
            Command::Call => cli::HELP_CALL,
            Command::Serve => cli::HELP_SERVE,
            Command::Run => cli::HELP_RUN,
            Command::Doctor => cli::HELP_DOCTOR,
            Command::AssetToken => cli::HELP_ASSET_TOKEN,
            Command::Send => cli::HELP_SEND,
            Command::Outbox => cli::HELP_OUTBOX,
            Command::Seal | Command::Unseal => cli::HELP_SEAL,
            Command::Help | Command::Version => cli::HELP,
        };
        return commands::say(&mut out, help.trim_end()).map(|()| 0);
    }
    if command == Command::Version {
        return commands::say(&mut out, concat!("sfpair ", env!("CARGO_PKG_VERSION"))).map(|()| 0);
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let is_root = unsafe { libc::geteuid() } == 0;
    let plan = config::plan(args, &|k| std::env::var(k).ok(), is_root)?;
    plan.run(&mut out)
}
