//! Writes one PBM frame per screen into a directory, through the same presenter and frame-file
//! writer as `sfpair pair --display pbm:...`, for the pictures in docs/screens/
//! (`scripts/screens` converts them to PNG). Usage: `screens DIR`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sfpair::error::{Error, ErrorKind};
use sfpair::event::{Event, Paired, ShownCode};
use sfpair::present::Presenter;
use sfpair::present::frame_file::{Format, FrameFile};
use sfpair::present::screen::Screen;

fn code(url: &str, number: u32) -> ShownCode {
    ShownCode {
        number,
        ..sfpair::testing::shown_code(url)
    }
}

/// Shows `events` on a `width × height` frame file and keeps the last frame as `dir/name.pbm`.
fn screen(dir: &Path, name: &str, width: u32, height: u32, events: &[Event]) {
    let path: PathBuf = dir.join(format!("{name}.pbm"));
    let mut s = Screen::new(FrameFile::new(&path, width, height, Format::Pbm).unwrap());
    for e in events {
        s.show(e);
    }
    std::mem::forget(s); // keep the last frame: no blanking on drop
    println!("{}", path.display());
}

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).expect("usage: screens DIR"));
    std::fs::create_dir_all(&dir).unwrap();
    let login = "https://login.salesforce.com/setup/connect?user_code=X1D9SEET";
    let short = "https://example.com/device?user_code=WDJB-MJHT";
    let tick = Event::Countdown {
        remaining: Duration::from_secs(583),
    };
    screen(
        &dir,
        "code-128x64",
        128,
        64,
        &[Event::CodeIssued(code(login, 1)), tick.clone()],
    );
    screen(
        &dir,
        "code-128x64-short-url",
        128,
        64,
        &[Event::CodeIssued(code(short, 1)), tick.clone()],
    );
    screen(
        &dir,
        "new-code-128x64",
        128,
        64,
        &[Event::CodeIssued(code(login, 2)), tick.clone()],
    );
    screen(
        &dir,
        "code-128x32",
        128,
        32,
        &[Event::CodeIssued(code(login, 1)), tick.clone()],
    );
    screen(
        &dir,
        "code-160x120-fb-320x240",
        160,
        120,
        &[Event::CodeIssued(code(login, 1)), tick],
    );
    let expired = Event::CodeExpired {
        number: 1,
        last: false,
        reason: "the code expired".into(),
    };
    screen(&dir, "expired-128x64", 128, 64, &[expired]);
    let paired = Event::Paired(Paired {
        instance_url: "https://acme.my.salesforce.com".into(),
        org_id: None,
        user_id: None,
    });
    screen(&dir, "paired-128x64", 128, 64, &[paired]);
    let failed = |kind| Event::Failed(Error::new(kind, "x"));
    screen(&dir, "denied-128x64", 128, 64, &[failed(ErrorKind::Denied)]);
    screen(
        &dir,
        "timed-out-128x64",
        128,
        64,
        &[failed(ErrorKind::Expired)],
    );
    screen(&dir, "error-128x64", 128, 64, &[failed(ErrorKind::Network)]);
}
