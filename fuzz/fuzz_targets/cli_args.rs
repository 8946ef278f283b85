//! Any command line (split on NUL) is parsed and resolved into a plan without a panic: bad
//! input is a usage error with exit code 2, never a crash, and no client secret is echoed.
#![no_main]

use std::ffi::OsString;

use libfuzzer_sys::fuzz_target;
use sfpair::cli;
use sfpair::config;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let args =
        std::iter::once(OsString::from("sfpair")).chain(text.split('\0').map(OsString::from));
    match cli::parse(args) {
        Ok(args) => {
            let env = |k: &str| (k == "HOME").then(|| "/home/fuzz".to_string());
            // No stored pairing: the fuzzer reads no store.
            if let Err(e) = config::plan(&args, &env, false, &|_, _| None) {
                assert_eq!(e.exit_code(), 2, "{e}");
            }
        }
        Err(e) => assert_eq!(e.exit_code(), 2, "{e}"),
    }
});
