//! Small displays end to end: frames the real binary writes are read by `zbarimg` (Debian's
//! zbar-tools, as a phone would read the panel) and the approval follows the URL it reads; every
//! layout's PBM frame scans with zbarimg; displays that cannot be opened do not stop pairing.
//!
//! zbarimg is required: a missing zbarimg fails these tests (scripts/test installs it).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use sfpair::present::canvas::Canvas;
use sfpair::present::fbdev::Geometry;
use sfpair::present::layout::{CodeScreen, message_screen};
use sfpair::present::{pbm, png};

use crate::harness::{Env, RUN_LIMIT, Scratch, fast};

/// The QR payload zbarimg reads from the image file, or `None` when it finds no code.
fn zbarimg(path: &Path) -> Option<String> {
    let out = Command::new("zbarimg")
        .args(["--raw", "-q", "--nodbus"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "zbarimg cannot run ({e}): install zbar-tools (scripts/test does it with \
                 need_apt zbarimg zbar-tools); these tests need a real QR decoder"
            )
        });
    match out.status.code() {
        Some(0) => Some(
            String::from_utf8(out.stdout)
                .unwrap()
                .trim_end()
                .to_string(),
        ),
        Some(4) => None,
        _ => panic!("zbarimg failed on {}: {out:?}", path.display()),
    }
}

/// A frame as a camera sees it: ×4, inside an 8 px dark surround (the unlit panel and bezel).
fn as_photographed(frame: &Canvas) -> Canvas {
    let mut big = Canvas::new(frame.width() * 4 + 16, frame.height() * 4 + 16);
    big.blit_lit(frame, 8, 8, 4);
    big
}

/// Reads what zbarimg finds on `frame`, photographed.
fn scan(frame: &Canvas, scratch: &Path) -> Option<String> {
    let path = scratch.join("photo.pbm");
    std::fs::write(&path, pbm::encode(&as_photographed(frame))).unwrap();
    zbarimg(&path)
}

/// The same through our PNG encoder: zbarimg reads PNG through ImageMagick and libpng, so a
/// malformed file fails here.
fn scan_png(frame: &Canvas, scratch: &Path) -> Option<String> {
    let path = scratch.join("photo.png");
    std::fs::write(&path, png::encode(&as_photographed(frame))).unwrap();
    zbarimg(&path)
}

/// Parses a binary PBM as the agent writes it (1 = black = unlit).
fn read_pbm(bytes: &[u8]) -> Canvas {
    let mut fields = Vec::new();
    let mut at = 0;
    while fields.len() < 3 {
        let start = at;
        while !bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        fields.push(std::str::from_utf8(&bytes[start..at]).unwrap().to_string());
        at += 1;
    }
    assert_eq!(fields[0], "P4");
    let (w, h): (u32, u32) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    let stride = w.div_ceil(8) as usize;
    assert_eq!(bytes.len() - at, stride * h as usize, "whole frame");
    let mut c = Canvas::new(w, h);
    for y in 0..h {
        for x in 0..w {
            let byte = bytes[at + y as usize * stride + x as usize / 8];
            c.set(x, y, byte & (0x80 >> (x % 8)) == 0);
        }
    }
    c
}

use sfpair::testing::shown_code as shown;

#[test]
fn every_layout_with_a_qr_scans_with_zbarimg() {
    let scratch = Scratch::new();
    let urls = [
        "https://login.salesforce.com/setup/connect?user_code=X1D9SEET",
        "https://login.salesforce.com/setup/connect?user_code=X1D9SEET&prompt=login",
        "https://test.salesforce.com/setup/connect?user_code=08T3AY9D",
        "https://test.salesforce.com/setup/connect?user_code=08T3AY9D&prompt=login",
        "https://acme-industrial-devices--fieldtest.sandbox.my.salesforce.com/setup/connect?user_code=25XPRH6C",
        "https://acme-industrial-devices--fieldtest.sandbox.my.salesforce.com/setup/connect?user_code=25XPRH6C&prompt=login",
        "https://example.com/device?user_code=WDJB-MJHT",
    ];
    let mut sizes = vec![(128, 64), (128, 32), (256, 128)];
    for (w, h) in [(320, 240), (480, 272), (800, 480)] {
        let (_, cw, ch) = Geometry::simple(w, h, 16, w * 2).canvas();
        sizes.push((cw, ch));
    }
    let mut scanned = 0;
    for (w, h) in sizes {
        for url in urls {
            let screen = CodeScreen::plan(w, h, &shown(url));
            let frame = screen.draw(Duration::from_secs(600));
            let read = scan(&frame, &scratch.0);
            if screen.qr().is_some() {
                assert_eq!(read.as_deref(), Some(url), "{w}x{h}");
                if (w, h) == (128, 64) {
                    assert_eq!(scan_png(&frame, &scratch.0).as_deref(), Some(url), "PNG");
                }
                scanned += 1;
            } else {
                assert_eq!(read, None, "{w}x{h}: a text-only screen has no code");
            }
        }
    }
    assert!(scanned >= 36, "{scanned} layouts scanned");
}

#[test]
fn pairs_with_the_url_zbarimg_reads_off_the_frame_file() {
    let env = Env::start(fast());
    let frame_path = env.scratch.0.join("frame.pbm");
    let display = format!("pbm:{}", frame_path.display());
    let run = env.spawn(&["pair", "--display", &display]);

    // Poll the frame file until zbarimg reads a code off it (bounded).
    let deadline = Instant::now() + Duration::from_secs(30);
    let (url, code_frame) = loop {
        if let Ok(bytes) = std::fs::read(&frame_path) {
            let frame = read_pbm(&bytes);
            if let Some(url) = scan(&frame, &env.scratch.0) {
                break (url, frame);
            }
        }
        assert!(
            Instant::now() < deadline,
            "no scannable frame in {}",
            frame_path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        url.starts_with(&format!("{}/setup/connect?user_code=", env.base_url)),
        "{url}"
    );
    env.approve(&url);
    let out = run.finish(RUN_LIMIT);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(env.token_path().exists());
    assert!(out.stdout.is_empty(), "no console was asked for: {out:?}");

    // The code is gone: the last frame is the "Paired" screen.
    let last = read_pbm(&std::fs::read(&frame_path).unwrap());
    assert_ne!(last, code_frame);
    assert_eq!(scan(&last, &env.scratch.0), None);
    assert_eq!(last, message_screen(128, 64, "Paired", "127.0.0.1"));
}

#[test]
fn a_display_that_cannot_be_opened_does_not_stop_pairing() {
    let env = Env::start(fast());
    let frame_path = env.scratch.0.join("small.pbm");
    let good = format!("pbm:{}:128x32", frame_path.display());
    let png_path = env.scratch.0.join("frame.png");
    let png_display = format!("png:{}", png_path.display());
    let mut run = env.spawn(&[
        "pair",
        "--json",
        "--display",
        "ssd1306:/dev/i2c-sfpair-missing@0x3d",
        "--display",
        &good,
        "--display",
        &png_display,
    ]);
    let code = run.event("code", RUN_LIMIT);
    env.approve(code["verification_uri_complete"].as_str().unwrap());
    let out = run.finish(RUN_LIMIT);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stderr
            .contains("/dev/i2c-sfpair-missing at address 0x3d"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("pairing goes on"), "{}", out.stderr);
    assert!(
        !out.stderr.contains("none of the displays"),
        "{}",
        out.stderr
    );
    // A 128x32 panel cannot carry a scannable QR of this URL: said in the log.
    assert!(
        out.stderr.contains("too small for a scannable QR"),
        "{}",
        out.stderr
    );
    assert_eq!(
        read_pbm(&std::fs::read(&frame_path).unwrap()),
        message_screen(128, 32, "Paired", "127.0.0.1")
    );
    assert_eq!(
        std::fs::read(&png_path).unwrap(),
        png::encode(&message_screen(128, 64, "Paired", "127.0.0.1"))
    );
}

#[test]
fn when_every_display_fails_the_code_goes_to_standard_error() {
    let env = Env::start(fast());
    let missing_dir = env.scratch.0.join("no-such-dir/frame.pbm");
    let mut command = env.command(&[
        "pair",
        "--display",
        "sh1106:/dev/i2c-sfpair-missing",
        "--display",
        &format!("pbm:{}", missing_dir.display()),
    ]);
    command.stderr(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    // The fallback console prints "...open URL\nand enter the code CODE" on stderr.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let user_code = loop {
        let line = rx.recv_timeout(RUN_LIMIT).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("no code on stderr: {seen:?}")
        });
        if let Some(code) = line.strip_prefix("and enter the code ") {
            break code.to_string();
        }
        seen.push(line);
    };
    let all = seen.join("\n");
    crate::harness::assert_clean_stderr(&all);
    assert!(all.contains("/dev/i2c-sfpair-missing"), "{all}");
    assert!(all.contains("no-such-dir"), "{all}");
    assert!(
        all.contains("none of the displays could be opened"),
        "{all}"
    );
    env.approve(&format!(
        "{}/setup/connect?user_code={user_code}",
        env.base_url
    ));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            panic!("sfpair did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    assert!(env.token_path().exists());
}
