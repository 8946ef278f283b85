//! The `sfpair` command: parse -> settings -> run -> exit code.
//!
//! CLI only: the commands are library code (`commands/`), the settings are `config`'s. Errors
//! are printed once, as `error: …`, and mapped to the documented exit codes (`sfpair --help`,
//! the README). Output that cannot be written is exit 10, never a panic; a reader that went
//! away (`sfpair status | head -1`) ends it quietly, as Unix tools do.

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use sfpair::cli::{self, Args, CommandName};
use sfpair::commands::{self, BROKEN_PIPE};
use sfpair::config;
use sfpair::error::{Error, ErrorKind};

/// glibc's malloc gives every thread that allocates its own arena: 64 MiB of address space
/// each and its own partly used pages. sfpair's threads (`run`'s supervisor, delivery and
/// broker workers, ureq's resolver) are few and mostly asleep, so one arena serves them all:
/// an idle `run` after 100 refreshes holds 472 KiB of private memory instead of 536, and
/// 8.8 MB of address space instead of 467 MB (x86_64; BENCHMARKS.md, "Memory and bytes").
/// musl has no arenas.
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt(3) changes a malloc setting; called before any thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

fn main() -> ExitCode {
    // Before anything holds a secret: no core file with a token, no ptrace by other processes.
    let hardened = sfpair::process::harden_process();
    one_malloc_arena();
    // A write past `ulimit -f` fails with EFBIG (exit 8, said plainly), not SIGXFSZ mid-write.
    sfpair::process::ignore_file_size_signal();
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

/// Whether fd 1 was closed when the process started (`sfpair token >&-`), noted by
/// [`note_closed_stdout`] before Rust's runtime points a closed fd 0-2 at /dev/null. After that,
/// a closed standard output cannot be told from a legitimate /dev/null opened read-write
/// (`1<>/dev/null`, Python's `subprocess.DEVNULL`), which must work as any standard output.
static STDOUT_CLOSED_AT_START: AtomicBool = AtomicBool::new(false);

/// Run by the C runtime before `main` and before Rust's own start-up (an `.init_array` entry, as
/// glibc and musl both run): only an fcntl(2) on fd 1 and an atomic store.
extern "C" fn note_closed_stdout() {
    // SAFETY: fcntl(F_GETFD) only queries the descriptor; it touches no memory of ours.
    if unsafe { libc::fcntl(1, libc::F_GETFD) } == -1 {
        STDOUT_CLOSED_AT_START.store(true, Ordering::Relaxed);
    }
}

#[used]
// SAFETY: the section holds pointers to functions the C runtime calls once, without
// arguments that matter, before `main`; `note_closed_stdout` is such a function.
#[unsafe(link_section = ".init_array")]
static NOTE_CLOSED_STDOUT: extern "C" fn() = note_closed_stdout;

fn stdout_was_closed() -> bool {
    STDOUT_CLOSED_AT_START.load(Ordering::Relaxed)
}

fn run(args: &Args) -> Result<u8, Error> {
    let command = args.command.unwrap_or(CommandName::Help);
    let mut out = if stdout_was_closed() {
        Stdout::Closed
    } else {
        Stdout::Open(std::io::stdout())
    };
    if args.help || command == CommandName::Help {
        let help = cli::help::text(Some(command));
        return commands::say(&mut out, help.trim_end()).map(|()| 0);
    }
    if command == CommandName::Version {
        return commands::say(&mut out, concat!("sfpair ", env!("CARGO_PKG_VERSION"))).map(|()| 0);
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let is_root = unsafe { libc::geteuid() } == 0;
    let env = |k: &str| std::env::var(k).ok();
    let plan = config::plan(args, &env, is_root, &commands::stored_pairing)?;
    plan.run(&mut out)
}
