//! Where a setting's value comes from, in order: the flag, the `SFPAIR_*` environment
//! variable, the board profile, the default. This file owns that order and the rules that go
//! with it: an empty value given explicitly (`--store ""`, `SFPAIR_STORE=`) is a usage error,
//! never a silent fall back to the default, and numbers in variables are checked here.
//!
//! No defaults live here (each setting's default is where the setting is resolved), and no
//! I/O: the environment comes in as a lookup function.

use std::time::Duration;

use super::Board;
use crate::error::Error;

pub(super) struct Sources<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    board: Option<&'a Board>,
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
    pub fn new(env: &'a dyn Fn(&str) -> Option<String>, board: Option<&'a Board>) -> Self {
        Sources { env, board }
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

    /// `flag` (named `flag_name`) if given, else [`var`](Sources::var).
    pub fn text(
        &self,
        flag: &Option<String>,
        flag_name: &str,
        var: &str,
    ) -> Result<Option<String>, Error> {
        match given(flag.clone(), flag_name)? {
            Some(v) => Ok(Some(v)),
            None => self.var(var),
        }
    }

    /// Whole seconds from the flag, else the variable, else `default`.
    pub fn seconds(
        &self,
        flag: Option<u64>,
        var: &str,
        flag_name: &str,
        default: Option<u64>,
    ) -> Result<Option<Duration>, Error> {
        let value = match flag {
            Some(v) => Some(v),
            None => match self.var(var)? {
                Some(text) => Some(text.trim().parse().map_err(|_| {
                    Error::config(format!(
                        "{var}='{text}' is not a whole number of seconds ({flag_name})"
                    ))
                })?),
                None => default,
            },
        };
        Ok(value.map(Duration::from_secs))
    }

    /// A duration (`crate::time::parse_duration`: `3600`, `90m`, `7d`) from the flag, else the
    /// variable, else `default`; zero means off and comes back as `None`.
    pub fn duration(
        &self,
        flag: &Option<String>,
        flag_name: &str,
        var: &str,
        default: Duration,
    ) -> Result<Option<Duration>, Error> {
        let (text, from) = match given(flag.clone(), flag_name)? {
            Some(v) => (Some(v), flag_name),
            None => (self.var(var)?, var),
        };
        let value = match text {
            Some(text) => crate::time::parse_duration(&text)
                .map_err(|e| Error::config(format!("{from} '{}' {e}", text.trim())))?,
            None => default,
        };
        Ok((!value.is_zero()).then_some(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicitly_empty_value_is_refused_not_defaulted() {
        let env = |k: &str| (k == "SFPAIR_STORE").then(String::new);
        let sources = Sources::new(&env, None);
        let e = sources.var("SFPAIR_STORE").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.message().contains("SFPAIR_STORE is empty"), "{e}");
        let e = sources
            .text(&Some(" ".into()), "--login-url", "SFPAIR_LOGIN_URL")
            .unwrap_err();
        assert!(e.message().contains("--login-url is empty"), "{e}");
        assert_eq!(sources.var("SFPAIR_SCOPE").unwrap(), None);
    }

    #[test]
    fn durations_come_from_the_flag_the_variable_or_the_default() {
        let week = Duration::from_secs(7 * 86_400);
        let env = |k: &str| (k == "SFPAIR_KEEPALIVE").then(|| "90m".to_string());
        let sources = Sources::new(&env, None);
        let get = |flag: Option<&str>| {
            sources.duration(
                &flag.map(String::from),
                "--keepalive",
                "SFPAIR_KEEPALIVE",
                week,
            )
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
        let sources = Sources::new(&nothing, None);
        assert_eq!(
            sources
                .duration(&None, "--keepalive", "SFPAIR_KEEPALIVE", week)
                .unwrap(),
            Some(week)
        );
        let bad = |k: &str| (k == "SFPAIR_KEEPALIVE").then(|| "soon".to_string());
        let sources = Sources::new(&bad, None);
        let e = sources
            .duration(&None, "--keepalive", "SFPAIR_KEEPALIVE", week)
            .unwrap_err();
        assert!(e.message().contains("SFPAIR_KEEPALIVE 'soon'"), "{e}");
    }
}
