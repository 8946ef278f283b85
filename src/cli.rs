//! Command-line parsing: arguments in, raw values out, checked against the command table
//! (`cli/table.rs`): each command accepts only its own options, and says which one does not
//! apply; a mistyped option gets the nearest real one and a pointer to that command's help.
//! Values stay text here: `config/` types them, with the environment and the board profile
//! beside them, so a value is parsed in one place whichever layer gave it.
//!
//! No I/O. A client secret or a PKCS#11 PIN is never accepted as an argument value: arguments
//! are visible to every user in `ps` and `/proc/PID/cmdline`.
//!
//! The rest of `cli/`: `table.rs` (the commands and options), `help.rs` (`--help` from the
//! table), `man.rs` and `completions.rs` (the man pages and shell completions, from the table,
//! for packages: never linked into the binary, which does not call them).

pub mod completions;
pub mod help;
pub mod man;
pub mod table;

use std::ffi::OsString;

use lexopt::prelude::*;

use table::{COMMANDS, OPTIONS, spec};
pub use table::{CommandName, Opt};

use crate::error::Error;

/// The command line as given: the command, each option's values in order, the positional
/// arguments. `--help` after a command asks for that command's help.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Args {
    pub command: Option<CommandName>,
    pub help: bool,
    values: Vec<(Opt, String)>,
    positionals: Vec<String>,
    /// The arguments after an option that takes the rest of the line (`--exec PROGRAM ARG…`).
    rest: Vec<String>,
}

impl Args {
    /// The option's value; the last one when given more than once.
    pub fn value(&self, opt: Opt) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(o, _)| *o == opt)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeatable option, in order.
    pub fn values(&self, opt: Opt) -> impl Iterator<Item = &str> {
        self.values
            .iter()
            .filter(move |(o, _)| *o == opt)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the option (a switch, or one with a value) was given.
    pub fn has(&self, opt: Opt) -> bool {
        self.values.iter().any(|(o, _)| *o == opt)
    }

    /// The `n`th positional argument after the command (`call METHOD PATH`).
    pub fn positional(&self, n: usize) -> Option<&str> {
        self.positionals.get(n).map(String::as_str)
    }

    /// Every positional argument (`listen CHANNEL…`).
    pub fn positionals(&self) -> &[String] {
        &self.positionals
    }

    /// The arguments that followed an option taking the rest of the line (`--exec`'s).
    pub fn rest(&self) -> &[String] {
        &self.rest
    }

    /// An `Args` with these values, for tests and embedders that build a command line.
    pub fn with(command: CommandName, values: &[(Opt, &str)], positionals: &[&str]) -> Args {
        Args {
            command: Some(command),
            help: false,
            values: values.iter().map(|(o, v)| (*o, v.to_string())).collect(),
            positionals: positionals.iter().map(|p| p.to_string()).collect(),
            rest: Vec::new(),
        }
    }
}

/// A usage error, pointing at the help of `command` when it is known.
fn usage(msg: impl std::fmt::Display, command: Option<CommandName>) -> Error {
    let help = match command.and_then(table::command) {
        Some(c) if c.name != CommandName::Help => format!("sfpair {} --help", c.word),
        _ => "sfpair --help".to_string(),
    };
    Error::config(format!("{msg} (see `{help}`)"))
}

fn text(value: OsString, what: &str, command: Option<CommandName>) -> Result<String, Error> {
    value
        .into_string()
        .map_err(|_| usage(format!("{what} is not valid UTF-8"), command))
}

/// Parses `sfpair [COMMAND] [OPTIONS]` (options may come before or after the command).
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Args, Error> {
    let mut parser = lexopt::Parser::from_iter(args);
    let mut a = Args::default();
    while let Some(arg) = parser.next().map_err(|e| usage(e, a.command))? {
        match arg {
            Short('h') | Long("help") => a.help = true,
            Short('V') | Long("version") => a.command = Some(CommandName::Version),
            Long("client-secret") => {
                return Err(usage(
                    "--client-secret is not accepted: arguments are visible to every user. Put \
                     the secret in a file (--client-secret-file) or in SFPAIR_CLIENT_SECRET",
                    a.command,
                ));
            }
            Long("pkcs11-pin") => {
                return Err(usage(
                    "--pkcs11-pin is not accepted: arguments are visible to every user. Put the \
                     PIN in a file (--pkcs11-pin-file) or in the service's pkcs11-pin credential",
                    a.command,
                ));
            }
            Long(name) => {
                let Some(o) = OPTIONS.iter().find(|o| o.long == name) else {
                    let name = format!("--{name}");
                    return Err(usage(unknown_option(&name, a.command), a.command));
                };
                let value = if o.value.is_empty() {
                    String::new()
                } else {
                    let flag = format!("--{}", o.long);
                    let raw = parser.value().map_err(|e| usage(e, a.command))?;
                    text(raw, &flag, a.command)?
                };
                a.values.push((o.opt, value));
                if o.rest {
                    let raw = parser.raw_args().map_err(|e| usage(e, a.command))?;
                    for arg in raw {
                        a.rest.push(text(arg, "an argument", a.command)?);
                    }
                }
            }
            Value(v) if a.command.is_none() => {
                let word = text(v, "the command", None)?;
                let Some(c) = COMMANDS.iter().find(|c| c.word == word) else {
                    return Err(usage(unknown_command(&word), None));
                };
                a.command = Some(c.name);
            }
            Value(v) => {
                let spec = a.command.and_then(table::command);
                let variadic = spec
                    .and_then(|c| c.positionals.last())
                    .is_some_and(|p| p.ends_with("..."));
                let room = match spec {
                    _ if variadic => usize::MAX,
                    Some(c) => c.positionals.len(),
                    None => 0,
                };
                let value = text(v, "an argument", a.command)?;
                if a.positionals.len() >= room {
                    return Err(usage(format!("unexpected argument '{value}'"), a.command));
                }
                a.positionals.push(value);
            }
            other => return Err(usage(other.unexpected(), a.command)),
        }
    }
    check_applies(&a)?;
    Ok(a)
}

/// Every option given must be one the command takes (`--socket does not apply to token`).
/// Without a command (help, version) anything parsed is let through: nothing runs.
fn check_applies(a: &Args) -> Result<(), Error> {
    let Some(command) = a
        .command
        .filter(|c| !matches!(c, CommandName::Help | CommandName::Version))
    else {
        return Ok(());
    };
    if a.help {
        return Ok(());
    }
    for (opt, _) in &a.values {
        let o = spec(*opt);
        if !o.applies_to(command) {
            let word = table::command(command).map_or("", |c| c.word);
            return Err(usage(
                format!("--{} does not apply to {word}", o.long),
                Some(command),
            ));
        }
    }
    Ok(())
}

/// "unknown option --sokcet; did you mean --socket?" (the nearest option the command takes,
/// else any option).
fn unknown_option(name: &str, command: Option<CommandName>) -> String {
    let bare = name.trim_start_matches('-');
    let candidates = OPTIONS
        .iter()
        .filter(|o| command.is_none_or(|c| o.applies_to(c)))
        .map(|o| o.long);
    match nearest(bare, candidates) {
        Some(best) => format!("unknown option {name}; did you mean --{best}?"),
        None => format!("unknown option {name}"),
    }
}

fn unknown_command(word: &str) -> String {
    match nearest(word, COMMANDS.iter().map(|c| c.word)) {
        Some(best) => format!("unknown command '{word}'; did you mean {best}?"),
        None => format!("unknown command '{word}'"),
    }
}

/// The candidate closest to `typed` by edit distance, if it is close enough to be a typo (at
/// most a third of the word's letters wrong).
fn nearest<'a>(typed: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = typed.chars().count().div_ceil(3).max(1);
    candidates
        .map(|c| (edit_distance(typed, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Args, Error> {
        parse(["sfpair"].iter().chain(args).map(OsString::from))
    }

    #[test]
    fn options_go_before_or_after_the_command() {
        let a = p(&[
            "--client-id",
            "K",
            "pair",
            "--display",
            "text",
            "--display",
            "console",
            "--force",
        ])
        .unwrap();
        assert_eq!(a.command, Some(CommandName::Pair));
        assert_eq!(a.value(Opt::ClientId), Some("K"));
        assert_eq!(
            a.values(Opt::Display).collect::<Vec<_>>(),
            ["text", "console"]
        );
        assert!(a.has(Opt::Force));
        let a = p(&["token", "--json"]).unwrap();
        assert_eq!(a.command, Some(CommandName::Token));
        assert!(a.has(Opt::Json));
    }

    #[test]
    fn call_takes_a_method_a_path_and_repeatable_headers() {
        let a = p(&[
            "call",
            "POST",
            "sobjects/Account/",
            "--data",
            "{\"Name\":\"x\"}",
            "--header",
            "A: 1",
            "--header",
            "B: 2",
            "--api-version",
            "62.0",
        ])
        .unwrap();
        assert_eq!(a.command, Some(CommandName::Call));
        assert_eq!(a.positional(0), Some("POST"));
        assert_eq!(a.positional(1), Some("sobjects/Account/"));
        assert_eq!(a.values(Opt::Header).collect::<Vec<_>>(), ["A: 1", "B: 2"]);
        assert_eq!(p(&["call", "GET", "/a", "/b"]).unwrap_err().exit_code(), 2);
        let a = p(&[
            "serve",
            "--socket",
            "/run/s",
            "--allow-uid",
            "7",
            "--allow-uid",
            "8",
        ])
        .unwrap();
        assert_eq!(a.values(Opt::AllowUid).collect::<Vec<_>>(), ["7", "8"]);
    }

    #[test]
    fn a_secret_is_never_taken_from_the_command_line() {
        let err = p(&["pair", "--client-secret", "hunter2"]).unwrap_err();
        assert!(err.message().contains("--client-secret-file"));
        assert!(!err.message().contains("hunter2"));
        let err = p(&["pair", "--pkcs11-pin", "4321"]).unwrap_err();
        assert!(err.message().contains("is not accepted"), "{err}");
        assert!(err.message().contains("--pkcs11-pin-file"), "{err}");
        assert!(!err.message().contains("4321"), "{err}");
    }

    #[test]
    fn bad_input_is_a_usage_error() {
        assert_eq!(p(&["fly"]).unwrap_err().exit_code(), 2);
        assert_eq!(p(&["pair", "--bogus"]).unwrap_err().exit_code(), 2);
        assert_eq!(p(&["pair", "extra"]).unwrap_err().exit_code(), 2);
        assert_eq!(p(&["pair", "--login-url"]).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn each_command_takes_only_its_own_options_and_says_which_does_not_apply() {
        let e = p(&["token", "--socket", "/x"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert_eq!(
            e.message(),
            "--socket does not apply to token (see `sfpair token --help`)"
        );
        let e = p(&["status", "--force", "--serial", "Y"]).unwrap_err();
        assert!(
            e.message().starts_with("--force does not apply to status"),
            "{e}"
        );
        // Before the command, too: checked once the command is known.
        let e = p(&["--force", "status"]).unwrap_err();
        assert!(
            e.message().starts_with("--force does not apply to status"),
            "{e}"
        );
        // Help is always answered.
        assert!(p(&["token", "--socket", "/x", "--help"]).unwrap().help);
    }

    #[test]
    fn a_typo_gets_the_nearest_option_and_the_commands_help() {
        let e = p(&["run", "--sokcet", "/x"]).unwrap_err();
        assert_eq!(
            e.message(),
            "unknown option --sokcet; did you mean --socket? (see `sfpair run --help`)"
        );
        let e = p(&["pair", "--client-di", "K"]).unwrap_err();
        assert!(e.message().contains("did you mean --client-id?"), "{e}");
        let e = p(&["--nonsense-flag"]).unwrap_err();
        assert_eq!(
            e.message(),
            "unknown option --nonsense-flag (see `sfpair --help`)"
        );
        let e = p(&["stauts"]).unwrap_err();
        assert!(e.message().contains("did you mean status?"), "{e}");
    }

    #[test]
    fn exec_takes_the_rest_of_the_line_and_listen_any_number_of_channels() {
        let a = p(&[
            "listen",
            "Device_Command__e",
            "Other__e",
            "--match",
            "Device_Id__c=GW-1",
            "--exec",
            "/usr/bin/handler",
            "--flag",
            "two words",
        ])
        .unwrap();
        assert_eq!(a.positionals(), ["Device_Command__e", "Other__e"]);
        assert_eq!(a.value(Opt::Exec), Some("/usr/bin/handler"));
        assert_eq!(a.rest(), ["--flag", "two words"]);
        assert_eq!(a.value(Opt::Match), Some("Device_Id__c=GW-1"));
    }

    #[test]
    fn edit_distance_counts_insertions_deletions_and_substitutions() {
        assert_eq!(edit_distance("socket", "socket"), 0);
        assert_eq!(edit_distance("sokcet", "socket"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("json", "jsonl"), 1);
    }
}
