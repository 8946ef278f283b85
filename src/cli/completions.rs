//! Shell completions from the command table, for bash and zsh: the commands, and for each
//! command the options it takes, with file or word completion for their values. For packages
//! (`examples/cli_docs.rs` writes them); the binary never calls this.
//!
//! Script text only; no I/O.

use std::fmt::Write;

use super::table::{COMMANDS, CommandName, Complete, OPTIONS};

fn commands() -> impl Iterator<Item = &'static super::table::CommandSpec> {
    COMMANDS.iter().filter(|c| c.name != CommandName::Version)
}

/// The bash completion script (`/usr/share/bash-completion/completions/sfpair`).
pub fn bash() -> String {
    let mut out = String::from(
        "# bash completion for sfpair; generated from its command table, do not edit.\n\
         _sfpair() {\n\
         \x20   local cur prev cmd i\n\
         \x20   cur=${COMP_WORDS[COMP_CWORD]}\n\
         \x20   prev=${COMP_WORDS[COMP_CWORD-1]}\n\
         \x20   cmd=\n\
         \x20   for ((i = 1; i < COMP_CWORD; i++)); do\n\
         \x20       case ${COMP_WORDS[i]} in\n",
    );
    let words: Vec<&str> = commands().map(|c| c.word).collect();
    let _ = writeln!(
        out,
        "            {}) cmd=${{COMP_WORDS[i]}}; break ;;",
        words.join("|")
    );
    out.push_str("        esac\n    done\n    case $prev in\n");
    for o in OPTIONS {
        match o.complete {
            Complete::File => {
                let _ = writeln!(
                    out,
                    "        --{}) COMPREPLY=($(compgen -f -- \"$cur\")); return ;;",
                    o.long
                );
            }
            Complete::Dir => {
                let _ = writeln!(
                    out,
                    "        --{}) COMPREPLY=($(compgen -d -- \"$cur\")); return ;;",
                    o.long
                );
            }
            Complete::Words(words) => {
                let _ = writeln!(
                    out,
                    "        --{}) COMPREPLY=($(compgen -W \"{}\" -- \"$cur\")); return ;;",
                    o.long,
                    words.join(" ")
                );
            }
            Complete::Text => {
                let _ = writeln!(out, "        --{}) return ;;", o.long);
            }
            Complete::Nothing => {}
        }
    }
    out.push_str("    esac\n    case $cmd in\n");
    let _ = writeln!(
        out,
        "        '') COMPREPLY=($(compgen -W \"{} --help --version\" -- \"$cur\")) ;;",
        words.join(" ")
    );
    for c in commands() {
        let flags: Vec<String> = OPTIONS
            .iter()
            .filter(|o| o.applies_to(c.name))
            .map(|o| format!("--{}", o.long))
            .chain(["--help".to_string()])
            .collect();
        let _ = writeln!(
            out,
            "        {}) COMPREPLY=($(compgen -W \"{}\" -- \"$cur\")) ;;",
            c.word,
            flags.join(" ")
        );
    }
    out.push_str("    esac\n}\ncomplete -F _sfpair sfpair\n");
    out
}

/// The zsh completion function (`/usr/share/zsh/vendor-completions/_sfpair`).
pub fn zsh() -> String {
    let mut out = String::from(
        "#compdef sfpair\n# zsh completion for sfpair; generated from its command table, do not \
         edit.\n\n_sfpair() {\n    local -a commands\n    commands=(\n",
    );
    for c in commands() {
        let _ = writeln!(out, "        '{}:{}'", c.word, quote(c.summary));
    }
    out.push_str(
        "    )\n    if (( CURRENT == 2 )); then\n        _describe command commands\n        \
         return\n    fi\n    case $words[2] in\n",
    );
    for c in commands() {
        let _ = writeln!(out, "        {})\n            _arguments \\", c.word);
        for o in OPTIONS.iter().filter(|o| o.applies_to(c.name)) {
            let summary = quote(o.help.split('\n').next().unwrap_or_default());
            let summary: String = summary.chars().take(70).collect();
            let action = match o.complete {
                Complete::Nothing => String::new(),
                Complete::File => format!(":{}:_files", o.value),
                Complete::Dir => format!(":{}:_files -/", o.value),
                Complete::Words(words) => format!(":{}:({})", o.value, words.join(" ")),
                Complete::Text => format!(":{}: ", o.value),
            };
            let repeat = if o.repeatable { "*" } else { "" };
            let _ = writeln!(
                out,
                "                '{repeat}--{}[{summary}]{action}' \\",
                o.long
            );
        }
        out.push_str("                '--help[Show the help]'\n            ;;\n");
    }
    out.push_str("    esac\n}\n\n_sfpair \"$@\"\n");
    out
}

/// Text safe inside zsh's single-quoted, bracketed descriptions.
fn quote(text: &str) -> String {
    text.replace('\'', "")
        .replace(['[', ']'], "")
        .replace(':', " -")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_scripts_offer_every_command_and_its_options() {
        let (bash, zsh) = (bash(), zsh());
        for c in commands() {
            assert!(
                bash.contains(&format!("        {}) COMPREPLY", c.word))
                    || c.name == CommandName::Help,
                "{}",
                c.word
            );
            assert!(zsh.contains(&format!("'{}:", c.word)), "{}", c.word);
        }
        for o in OPTIONS {
            assert!(bash.contains(&format!("--{}", o.long)), "{}", o.long);
            assert!(zsh.contains(&format!("--{}[", o.long)), "{}", o.long);
        }
        assert!(bash.ends_with("complete -F _sfpair sfpair\n"));
    }
}
