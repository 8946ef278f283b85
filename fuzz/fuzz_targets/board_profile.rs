//! Any board profile text parses to a validated profile or to a configuration error (exit 2)
//! that names the file; never a panic. A valid profile's display values are accepted by the
//! same `--display` parser the command line uses.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sfpair::board::Board;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Board::parse(Path::new("fuzz.toml"), text) {
        Ok(board) => {
            for spec in board.display_specs() {
                if let Err(e) = sfpair::present::spec::display(&spec) {
                    panic!("a valid profile made a display value the CLI refuses: {spec}: {e}");
                }
            }
        }
        Err(e) => {
            assert_eq!(e.exit_code(), 2, "{e}");
            assert!(
                e.message().contains("fuzz.toml"),
                "the error names the file: {e}"
            );
        }
    }
});
