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
    sfpair::logging::init();
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

fn run(args: &Args) -> Result<u8, Error> {
    let command = args.command.unwrap_or(Command::Help);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.help || command == Command::Help {
        let help = match command {
            Command::Pair => cli::HELP_PAIR,
            Command::Token => cli::HELP_TOKEN,
            Command::Status => cli::HELP_STATUS,
            Command::Forget => cli::HELP_FORGET,
            Command::Call => cli::HELP_CALL,
            Command::Serve => cli::HELP_SERVE,
            Command::Doctor => cli::HELP_DOCTOR,
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
