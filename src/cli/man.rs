//! Man pages from the command table: `sfpair(1)`, the overview with every command, option,
//! environment variable and exit code, and `sfpair-COMMAND(1)` for each command. For
//! packages (`examples/cli_docs.rs` writes them); the `sfpair` binary never calls this, so it
//! costs the binary nothing.
//!
//! roff text only (man(7) macros); no I/O.

use std::fmt::Write;

use super::help::exit_codes;
use super::table::{COMMANDS, CommandName, CommandSpec, OPTIONS, OptionSpec};

/// Every page: (file name, roff text).
pub fn pages() -> Vec<(String, String)> {
    let mut pages = vec![("sfpair.1".to_string(), overview())];
    for c in COMMANDS.iter().filter(|c| c.name != CommandName::Help) {
        pages.push((format!("sfpair-{}.1", c.word), for_command(c)));
    }
    pages
}

fn header(out: &mut String, name: &str, what: &str) {
    let _ = writeln!(
        out,
        ".TH {} 1 \"\" \"sfpair {}\" \"sfpair manual\"",
        name.to_uppercase(),
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(out, ".SH NAME\n{} \\- {}", escape(name), escape(what));
}

fn overview() -> String {
    let mut out = String::new();
    header(
        &mut out,
        "sfpair",
        "pair a device without a keyboard with Salesforce, and keep it paired",
    );
    out.push_str(".SH SYNOPSIS\n.B sfpair\n.I COMMAND\n[\\fIOPTIONS\\fR]\n");
    out.push_str(
        ".SH DESCRIPTION\nsfpair pairs a device that has no keyboard with Salesforce through \
         the OAuth 2.0 device flow: the device shows a short code and a QR code, a person \
         approves on a phone, and sfpair keeps the refresh token safe across reboots and power \
         cuts. From then on it gets access tokens by itself, makes REST calls, serves tokens to \
         local processes and delivers queued records.\n",
    );
    out.push_str(".SH COMMANDS\n");
    for c in COMMANDS.iter().filter(|c| c.name != CommandName::Help) {
        let _ = writeln!(
            out,
            ".TP\n.B {}\n{} See \\fBsfpair\\-{}\\fR(1).",
            escape(c.word),
            escape(c.summary),
            escape(c.word)
        );
    }
    out.push_str(
        ".SH OPTIONS\nFlags beat the environment, which beats the board profile \
         (\\fB\\-\\-board\\fR), which beats the defaults.\n",
    );
    for o in OPTIONS {
        option(&mut out, o, true);
    }
    out.push_str(
        ".TP\n.BR \\-h \", \" \\-\\-help\nHelp.\n.TP\n.BR \\-V \", \" \\-\\-version\nVersion.\n",
    );
    out.push_str(".SH ENVIRONMENT\n");
    for o in OPTIONS.iter().filter(|o| o.env.is_some()) {
        let _ = writeln!(
            out,
            ".TP\n.B {}\nAs \\fB\\-\\-{}\\fR.",
            escape(o.env.unwrap_or_default()),
            escape(o.long)
        );
    }
    out.push_str(
        ".TP\n.B SFPAIR_STATE_DIR\nThe directory of the default file store.\n\
         .TP\n.B RUST_LOG\nLog level on standard error (info, debug); tokens are never logged.\n\
         .TP\n.B HTTPS_PROXY, NO_PROXY\nProxies.\n",
    );
    let _ = writeln!(out, ".SH EXIT STATUS\n{}", escape(&exit_codes()));
    out.push_str(".SH SEE ALSO\nThe documentation in /usr/share/doc/sfpair.\n");
    out
}

fn for_command(c: &CommandSpec) -> String {
    let mut out = String::new();
    header(&mut out, &format!("sfpair-{}", c.word), c.summary);
    out.push_str(".SH SYNOPSIS\n");
    for line in c.usage {
        let _ = writeln!(out, ".B sfpair\n{}\n.br", escape(line));
    }
    out.push_str(".SH DESCRIPTION\n");
    for paragraph in c.about.split('\n') {
        let _ = writeln!(out, "{}\n.PP", escape(paragraph));
    }
    out.push_str(".SH OPTIONS\n");
    for o in OPTIONS.iter().filter(|o| o.applies_to(c.name)) {
        option(&mut out, o, false);
    }
    let _ = writeln!(
        out,
        ".SH EXIT STATUS\n{}\n.SH SEE ALSO\n\\fBsfpair\\fR(1)",
        escape(&exit_codes())
    );
    out
}

fn option(out: &mut String, o: &OptionSpec, with_commands: bool) {
    let value = if o.value.is_empty() {
        String::new()
    } else {
        format!(" \\fI{}\\fR", escape(o.value))
    };
    let _ = writeln!(out, ".TP\n\\fB\\-\\-{}\\fR{value}", escape(o.long));
    let _ = writeln!(out, "{}", escape(&o.help.replace('\n', " ")));
    if let Some(var) = o.env {
        let _ = writeln!(out, "Environment: \\fB{}\\fR.", escape(var));
    }
    if with_commands {
        let words: Vec<&str> = COMMANDS
            .iter()
            .filter(|c| o.applies_to(c.name))
            .map(|c| c.word)
            .collect();
        let _ = writeln!(out, "Commands: {}.", escape(&words.join(", ")));
    }
}

/// Text made safe for roff: backslashes and dashes escaped, no line starting with a dot or a
/// quote (a request).
fn escape(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    match escaped.chars().next() {
        Some('.' | '\'') => format!("\\&{escaped}"),
        _ => escaped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_is_a_page_per_command_naming_each_of_its_options() {
        let pages = pages();
        assert_eq!(
            pages.len(),
            COMMANDS.len(),
            "sfpair.1 and one per command but help"
        );
        for c in COMMANDS.iter().filter(|c| c.name != CommandName::Help) {
            let (_, page) = pages
                .iter()
                .find(|(name, _)| *name == format!("sfpair-{}.1", c.word))
                .unwrap();
            for o in OPTIONS {
                let flag = format!("\\fB\\-\\-{}\\fR", escape(o.long));
                assert_eq!(
                    page.contains(&flag),
                    o.applies_to(c.name),
                    "{} {}",
                    c.word,
                    o.long
                );
            }
        }
        let overview = &pages[0].1;
        assert!(overview.starts_with(".TH SFPAIR 1"));
        for line in overview.lines() {
            assert!(!line.starts_with('\''), "{line}");
        }
    }

    #[test]
    fn roff_requests_in_text_are_escaped() {
        assert_eq!(escape(".hidden"), "\\&.hidden");
        assert_eq!(escape("a-b\\c"), "a\\-b\\ec");
    }
}
