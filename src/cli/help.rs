//! `sfpair --help` and `sfpair COMMAND --help`, written from the command table, so the help
//! lists exactly the options the parser accepts.
//!
//! Text only; the binary prints it.

use std::fmt::Write;

use super::table::{COMMANDS, CommandName, CommandSpec, OPTIONS, OptionSpec};
use crate::error::ErrorKind;

/// Help lines are wrapped at this width.
const WIDTH: usize = 96;
/// Option help starts in this column.
const HELP_COLUMN: usize = 27;

/// The help for `command`, or the overview for `None` (and for `help`, `version`).
pub fn text(command: Option<CommandName>) -> String {
    match command.and_then(super::table::command) {
        Some(spec) if spec.name != CommandName::Help => for_command(spec),
        _ => overview(),
    }
}

fn overview() -> String {
    let mut out = String::from(
        "sfpair: pair this device with Salesforce through the OAuth 2.0 device flow\n\n\
         Usage: sfpair <COMMAND> [OPTIONS]\n\nCommands:\n",
    );
    let width = COMMANDS.iter().map(|c| c.word.len()).max().unwrap_or(0) + 2;
    for c in COMMANDS {
        let _ = writeln!(out, "  {:width$} {}", c.word, c.summary);
    }
    out.push_str("\nCommon options (environment variable in brackets):\n");
    for o in OPTIONS.iter().filter(|o| o.is_common()) {
        option(&mut out, o);
    }
    out.push_str("  -h, --help               Help;  -V, --version  Version\n\n");
    wrap(&mut out, &exit_codes(), 0);
    wrap(
        &mut out,
        "Logs go to standard error; set RUST_LOG=info or debug for more (tokens are never \
         logged).",
        0,
    );
    out
}

fn for_command(c: &CommandSpec) -> String {
    let mut out = String::new();
    for (n, line) in c.usage.iter().enumerate() {
        let lead = if n == 0 { "Usage: " } else { "       " };
        let _ = writeln!(out, "{lead}sfpair {line}");
    }
    for paragraph in c.about.split('\n') {
        out.push('\n');
        wrap(&mut out, paragraph, 0);
    }
    let (own, common): (Vec<&OptionSpec>, Vec<&OptionSpec>) = OPTIONS
        .iter()
        .filter(|o| o.applies_to(c.name))
        .partition(|o| !o.is_common());
    if !own.is_empty() {
        out.push_str("\nOptions (environment variable in brackets):\n");
        for o in own {
            option(&mut out, o);
        }
    }
    if !common.is_empty() {
        out.push_str("\nCommon options:\n");
        for o in common {
            option(&mut out, o);
        }
    }
    out.push_str("  -h, --help               This help\n");
    out
}

/// `  --flag VALUE            help [ENV]`, the help wrapped under its column.
fn option(out: &mut String, o: &OptionSpec) {
    let flag = if o.value.is_empty() {
        format!("  --{}", o.long)
    } else {
        format!("  --{} {}", o.long, o.value)
    };
    let mut help = o.help.to_string();
    if let Some(var) = o.env {
        let first_line_end = help.find('\n').unwrap_or(help.len());
        help.insert_str(first_line_end, &format!(" [{var}]"));
    }
    if flag.len() + 1 > HELP_COLUMN {
        out.push_str(&flag);
        out.push('\n');
        for line in help.split('\n') {
            wrap_from(out, line, 0, HELP_COLUMN);
        }
    } else {
        let _ = write!(out, "{flag:HELP_COLUMN$}");
        for (n, line) in help.split('\n').enumerate() {
            let start = if n == 0 { HELP_COLUMN } else { 0 };
            wrap_from(out, line, start, HELP_COLUMN);
        }
    }
}

/// "Exit codes: 0 ok, 1 …": from the error kinds, so the list follows the code.
pub fn exit_codes() -> String {
    let mut text = String::from("Exit codes: 0 ok");
    let mut kinds = ErrorKind::ALL;
    kinds.sort_by_key(|k| k.exit_code());
    for k in kinds.into_iter().filter(|k| k.exit_code() != 0) {
        let _ = write!(text, ", {} {}", k.exit_code(), k.short());
    }
    text.push('.');
    text
}

/// Appends `text` wrapped at [`WIDTH`], every line indented by `indent`.
fn wrap(out: &mut String, text: &str, indent: usize) {
    if text.is_empty() {
        return;
    }
    out.push_str(&" ".repeat(indent));
    wrap_from(out, text, indent, indent);
}

/// Appends `text` wrapped at [`WIDTH`], the current line already at column `at`, the
/// following lines indented by `indent`.
fn wrap_from(out: &mut String, text: &str, at: usize, indent: usize) {
    let mut column = at;
    if at < indent {
        out.push_str(&" ".repeat(indent - at));
        column = indent;
    }
    let mut first = true;
    for word in text.split_whitespace() {
        if !first && column + 1 + word.len() > WIDTH {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            column = indent;
            first = true;
        }
        if !first {
            out.push(' ');
            column += 1;
        }
        out.push_str(word);
        column += word.len();
        first = false;
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_help_lists_exactly_its_options() {
        for c in COMMANDS.iter().filter(|c| c.name != CommandName::Help) {
            let help = text(Some(c.name));
            for o in OPTIONS {
                let shown = help.contains(&format!("  --{} ", o.long))
                    || help.contains(&format!("  --{}\n", o.long));
                assert_eq!(
                    shown,
                    o.applies_to(c.name),
                    "--{} in {} --help",
                    o.long,
                    c.word
                );
            }
            assert!(
                help.starts_with(&format!("Usage: sfpair {}", c.word)),
                "{help}"
            );
        }
    }

    #[test]
    fn the_overview_lists_every_command_the_exit_codes_and_fits_the_width() {
        let help = text(None);
        for c in COMMANDS {
            assert!(help.contains(&format!("\n  {} ", c.word)), "{}", c.word);
        }
        assert!(help.contains("6 re-pair needed"), "{help}");
        for c in COMMANDS {
            for line in text(Some(c.name)).lines() {
                assert!(line.len() <= WIDTH, "{} --help: {line}", c.word);
            }
        }
    }

    #[test]
    fn environment_variables_are_named_beside_their_option() {
        let help = text(Some(CommandName::Run));
        assert!(help.contains("[SFPAIR_KEEPALIVE]"), "{help}");
        assert!(help.contains("[SFPAIR_LOGIN_URL]"), "{help}");
    }
}
