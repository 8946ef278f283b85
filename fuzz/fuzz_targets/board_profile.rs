//! Any board profile text parses to a validated profile or to a configuration error (exit 2)
//! that names the file; never a panic. A valid profile's panel is built by the same rule the
//! `--display` parser uses (`present::spec::panel`), so it is one the command line accepts too.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sfpair::board::Board;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Board::parse(Path::new("fuzz.toml"), text) {
        // Valid: the panel is already a `Display` built by the command line's own rule.
        Ok(_) => {}
        Err(e) => {
            assert_eq!(e.exit_code(), 2, "{e}");
            assert!(
                e.message().contains("fuzz.toml"),
                "the error names the file: {e}"
            );
        }
    }
});
