//! Where a setting's value comes from, in one order for every setting: the flag, the `SFPAIR_*`
//! environment variable, the board profile, the stored pairing (`stored.rs`: the login URL,
//! the client id, the flow and its settings), the default. Which flag and which variable belong
//! to a setting is the command table's (`cli/table.rs`), so callers name the setting ([`Opt`])
//! and nothing else. This file owns that order and the rules that go with it:
//!
//! - an empty value given explicitly (`--store ""`, `SFPAIR_STORE=`) is a usage error, never a
//!   silent fall back to the default;
//! - a value is typed here (seconds, durations, numbers) with a message that names where the
//!   bad value came from (`--timeout` or `SFPAIR_TIMEOUT`);
//! - a setting the command does not take is not read at all, so a variable meant for another
//!   command (`SFPAIR_FLOW` in a unit's environment file, read by `token`) is not an error.
//!
//! No defaults live here (each setting's default is where the setting is resolved), and no
//! I/O: the environment comes in as a lookup function.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::Board;
use super::stored::Stored;
use crate::cli::table::spec;
use crate::cli::{Args, Opt};
use crate::error::Error;

pub(super) struct Sources<'a> {
    args: &'a Args,
    env: &'a dyn Fn(&str) -> Option<String>,
    board: Option<&'a Board>,
    stored: Option<&'a Stored>,
}

/// An explicitly given value must say something.
fn given(value: Option<String>, name: &str) -> Result<Option<String>, Error> {
    match value {
        Some(v) if v.trim().is_empty() => Err(Error::config(format!(
            "{name} is empty: give a value, or leave it out for the default"
        ))),
        other => Ok(other),
    }
}

impl<'a> Sources<'a> {
    pub fn new(
        args: &'a Args,
        env: &'a dyn Fn(&str) -> Option<String>,
        board: Option<&'a Board>,
    ) -> Self {
        Sources {
            args,
            env,
            board,
            stored: None,
        }
    }

    /// These sources with the stored pairing's layer below the board profile.
    pub fn with_stored(self, stored: Option<&'a Stored>) -> Self {
        Sources { stored, ..self }
    }

    /// Whether the command takes `opt` (a command-less resolve, in tests, takes everything).
    pub fn applies(&self, opt: Opt) -> bool {
        self.args.command.is_none_or(|c| spec(opt).applies_to(c))
    }

    /// A raw variable outside sfpair's own (`HOME`, `XDG_STATE_HOME`): as the environment has it.
    pub fn raw(&self, var: &str) -> Option<String> {
        (self.env)(var)
    }

    /// The variable `var` from the environment, else the board profile.
    pub fn var(&self, var: &str) -> Result<Option<String>, Error> {
        match given((self.env)(var), var)? {
            Some(v) => Ok(Some(v)),
            None => Ok(self.board.and_then(|b| b.env_value(var))),
        }
    }

    /// The setting's text and where it came from (`--flag`, the variable, or "the stored
    /// pairing"): the flag, else its variable, else the board profile, else the stored pairing.
    /// `None` when not given, or not the command's.
    pub fn given(&self, opt: Opt) -> Result<Option<(String, String)>, Error> {
        if let Some(given) = self.explicit(opt)? {
            return Ok(Some(given));
        }
        Ok(self
            .stored
            .filter(|_| self.applies(opt))
            .and_then(|s| s.value(opt))
            .map(|v| (v.to_string(), "the stored pairing".to_string())))
    }

    /// [`given`](Sources::given) above the stored pairing: the flag, the variable or the board.
    pub fn explicit(&self, opt: Opt) -> Result<Option<(String, String)>, Error> {
        if !self.applies(opt) {
            return Ok(None);
        }
        let o = spec(opt);
        let flag = format!("--{}", o.long);
        if let Some(v) = given(self.args.value(opt).map(str::to_string), &flag)? {
            return Ok(Some((v, flag)));
        }
        match o.env {
            Some(var) => Ok(self.var(var)?.map(|v| (v, var.to_string()))),
            None => Ok(None),
        }
    }

    /// The setting as text.
    pub fn text(&self, opt: Opt) -> Result<Option<String>, Error> {
        Ok(self.given(opt)?.map(|(v, _)| v))
    }

    /// The setting as a path.
    pub fn path(&self, opt: Opt) -> Result<Option<PathBuf>, Error> {
        Ok(self.text(opt)?.map(PathBuf::from))
    }

    /// A switch (`--force`): given or not.
    pub fn switch(&self, opt: Opt) -> bool {
        self.applies(opt) && self.args.has(opt)
    }

    /// Every value of a repeatable flag.
    pub fn all(&self, opt: Opt) -> Vec<&'a str> {
        if !self.applies(opt) {
            return Vec::new();
        }
        self.args.values(opt).collect()
    }

    /// A list setting: every value of its repeatable flag, else its variable (or the board's
    /// value) split at white space.
    #[cfg(feature = "listen")]
    pub fn list(&self, opt: Opt) -> Result<Vec<String>, Error> {
        let flag = format!("--{}", spec(opt).long);
        let flags = self.all(opt);
        if !flags.is_empty() {
            return flags
                .into_iter()
                .map(|v| given(Some(v.to_string()), &flag).map(Option::unwrap_or_default))
                .collect();
        }
        Ok(self
            .given(opt)?
            .map(|(v, _)| v.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default())
    }

    /// The setting as a number of type `T`; `what` says what it must be ("a whole number").
    pub fn number<T: FromStr>(&self, opt: Opt, what: &str) -> Result<Option<T>, Error> {
        let Some((text, from)) = self.given(opt)? else {
            return Ok(None);
        };
        text.trim()
            .parse()
            .map(Some)
            .map_err(|_| Error::config(format!("{from} '{}' is not {what}", text.trim())))
    }

    /// Whole seconds, else `default`.
    pub fn seconds(&self, opt: Opt, default: Option<u64>) -> Result<Option<Duration>, Error> {
        let value = self
            .number::<u64>(opt, "a whole number of seconds")?
            .or(default);
        Ok(value.map(Duration::from_secs))
    }

    /// A duration (`crate::time::parse_duration`: `3600`, `90m`, `7d`), else `default`; zero
    /// means off and comes back as `None`.
    pub fn duration(&self, opt: Opt, default: Duration) -> Result<Option<Duration>, Error> {
        let value = match self.given(opt)? {
            Some((text, from)) => crate::time::parse_duration(&text)
                .map_err(|e| Error::config(format!("{from} '{}' {e}", text.trim())))?,
            None => default,
        };
        Ok((!value.is_zero()).then_some(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::CommandName;

    fn args(command: CommandName, values: &[(Opt, &str)]) -> Args {
        Args::with(command, values, &[])
    }

    #[test]
    fn an_explicitly_empty_value_is_refused_not_defaulted() {
        let env = |k: &str| (k == "SFPAIR_STORE").then(String::new);
        let a = args(CommandName::Token, &[(Opt::LoginUrl, " ")]);
        let sources = Sources::new(&a, &env, None);
        let e = sources.text(Opt::Store).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.message().contains("SFPAIR_STORE is empty"), "{e}");
        let e = sources.text(Opt::LoginUrl).unwrap_err();
        assert!(e.message().contains("--login-url is empty"), "{e}");
        assert_eq!(sources.text(Opt::ClientId).unwrap(), None);
    }

    #[test]
    fn durations_come_from_the_flag_the_variable_or_the_default() {
        let week = Duration::from_secs(7 * 86_400);
        let env = |k: &str| (k == "SFPAIR_KEEPALIVE").then(|| "90m".to_string());
        let get = |flag: Option<&str>| {
            let values: Vec<(Opt, &str)> = flag.map(|f| (Opt::Keepalive, f)).into_iter().collect();
            let a = args(CommandName::Run, &values);
            Sources::new(&a, &env, None).duration(Opt::Keepalive, week)
        };
        assert_eq!(get(None).unwrap(), Some(Duration::from_secs(5400)));
        assert_eq!(get(Some("2d")).unwrap(), Some(Duration::from_secs(172_800)));
        assert_eq!(get(Some("0")).unwrap(), None, "0 is off");
        let e = get(Some("7 days")).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.message()
                .starts_with("--keepalive '7 days' is not a duration"),
            "{e}"
        );
        let nothing = |_: &str| None;
        let a = args(CommandName::Run, &[]);
        let sources = Sources::new(&a, &nothing, None);
        assert_eq!(sources.duration(Opt::Keepalive, week).unwrap(), Some(week));
        let bad = |k: &str| (k == "SFPAIR_KEEPALIVE").then(|| "soon".to_string());
        let sources = Sources::new(&a, &bad, None);
        let e = sources.duration(Opt::Keepalive, week).unwrap_err();
        assert!(e.message().contains("SFPAIR_KEEPALIVE 'soon'"), "{e}");
    }

    #[test]
    fn a_setting_the_command_does_not_take_is_not_read() {
        let env = |k: &str| (k == "SFPAIR_FLOW").then(|| "bogus".to_string());
        let a = args(CommandName::Token, &[]);
        assert_eq!(Sources::new(&a, &env, None).text(Opt::Flow).unwrap(), None);
        let a = args(CommandName::Pair, &[]);
        assert_eq!(
            Sources::new(&a, &env, None)
                .text(Opt::Flow)
                .unwrap()
                .as_deref(),
            Some("bogus")
        );
    }

    #[test]
    fn numbers_name_where_the_bad_value_came_from() {
        let env = |k: &str| (k == "SFPAIR_TIMEOUT").then(|| "soon".to_string());
        let a = args(CommandName::Token, &[]);
        let e = Sources::new(&a, &env, None)
            .seconds(Opt::Timeout, Some(30))
            .unwrap_err();
        assert_eq!(
            e.message(),
            "SFPAIR_TIMEOUT 'soon' is not a whole number of seconds"
        );
        let a = args(CommandName::Pair, &[(Opt::MaxCodes, "many")]);
        let e = Sources::new(&a, &env, None)
            .number::<u32>(Opt::MaxCodes, "a whole number")
            .unwrap_err();
        assert_eq!(e.message(), "--max-codes 'many' is not a whole number");
    }
}
