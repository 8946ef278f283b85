//! Any command line (split on NUL) is parsed and resolved into a plan without a panic: bad
//! input is a usage error with exit code 2, never a crash, and no client secret is echoed.
//!
//! The secret comes from where sfpair takes it (SFPAIR_CLIENT_SECRET; `--client-secret VALUE`
//! is refused): neither the error, whatever it says, nor the plan's Debug output may hold it.
//! Nor does a refusal of `--client-secret VALUE` or `--pkcs11-pin VALUE` show the value.
#![no_main]

use std::ffi::OsString;

use libfuzzer_sys::fuzz_target;
use sfpair::cli;
use sfpair::config;

/// The client secret in the environment: long enough not to occur by chance in a message.
const SECRET: &str = "fuzz-client-secret-7f3a9c";

/// The flags whose values are secrets, refused and never echoed.
const REFUSED: [&str; 2] = ["--client-secret", "--pkcs11-pin"];

/// The values given to `flag` (one of [`REFUSED`]).
fn refused_values<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
    let mut values = Vec::new();
    for (i, arg) in args.iter().enumerate() {
        if let Some(value) = arg.strip_prefix(flag).and_then(|v| v.strip_prefix('=')) {
            values.push(value);
        } else if arg == flag
            && let Some(value) = args.get(i + 1)
        {
            values.push(value.as_str());
        }
    }
    values
}

/// What refusing `words` shows when `value` is swapped for a sentinel in every word
/// that holds it (as `--flag=VALUE` or alone).
fn shown_without(words: &[String], value: &str) -> String {
    let args = words.iter().map(|w| OsString::from(w.replace(value, "SENTINEL")));
    match cli::parse(std::iter::once(OsString::from("sfpair")).chain(args)) {
        Ok(_) => String::new(),
        Err(e) => format!("{e} {e:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let words: Vec<String> = text.split('\0').map(String::from).collect();
    let args = std::iter::once(OsString::from("sfpair")).chain(words.iter().map(OsString::from));
    // The environment's secret, unless the input holds it too (as a value it may echo).
    let must_not_show = |shown: &str| {
        if !text.contains(SECRET) {
            assert!(!shown.contains(SECRET), "the client secret echoed: {shown}");
        }
    };
    match cli::parse(args) {
        Ok(args) => {
            let env = |k: &str| match k {
                "HOME" => Some("/home/fuzz".to_string()),
                "SFPAIR_CLIENT_SECRET" => Some(SECRET.to_string()),
                _ => None,
            };
            // No stored pairing: the fuzzer reads no store.
            match config::plan(&args, &env, false, &|_, _| None) {
                Ok(plan) => must_not_show(&format!("{plan:?}")),
                Err(e) => {
                    assert_eq!(e.exit_code(), 2, "{e}");
                    must_not_show(&format!("{e} {e:?}"));
                }
            }
        }
        Err(e) => {
            assert_eq!(e.exit_code(), 2, "{e}");
            let shown = format!("{e} {e:?}");
            must_not_show(&shown);
            // Refused as `--client-secret` or `--pkcs11-pin` (not taken as another option's
            // value): the value given with it is a secret, unless the input also holds it
            // elsewhere.
            // A value that our own fixed words also hold (" is not accepted") is not an
            // echo: the same command line with the value swapped for a sentinel shows it too.
            for flag in REFUSED {
                if e.message().contains(&format!("{flag} is not accepted")) {
                    let unique = |v: &&&str| v.len() >= 6 && text.matches(**v).count() == 1;
                    for value in refused_values(&words, flag).iter().filter(unique) {
                        let fixed = shown_without(&words, value);
                        if !fixed.contains(value) {
                            assert!(!shown.contains(value), "a {flag} value echoed: {shown}");
                        }
                    }
                }
            }
        }
    }
});
