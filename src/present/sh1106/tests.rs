//! The SH1106 driver through the presenter into a recording bus, replayed on the controller
//! model: page by page with the column offset, the rebuilt panel scans, wrong offsets show.

use super::*;
use crate::event::Event;
use crate::present::Presenter;
use crate::present::layout::CodeScreen;
use crate::present::layout::tests::{URLS, shown};
use crate::present::screen::Screen;
use std::time::Duration;

use crate::present::frame_qr;
use crate::present::oled_model;
use oled_model::{Chip, OledModel, RecordingBus};

fn glass_after(
    url: &str,
    driver_offset: u8,
    module_offset: usize,
) -> (Vec<Vec<bool>>, Vec<Vec<u8>>) {
    let bus = RecordingBus::default();
    let mut s = Screen::new(Sh1106::new(bus.clone(), driver_offset, "test".into()).unwrap());
    s.show(&Event::CodeIssued(shown(url)));
    let sent = bus.take();
    let mut chip = OledModel::new(
        Chip::Sh1106 {
            offset: module_offset,
        },
        64,
    );
    chip.feed(&sent);
    std::mem::forget(s);
    (chip.glass(), sent)
}

#[test]
fn page_by_page_with_the_column_offset_and_the_rebuilt_panel_scans() {
    for url in URLS {
        let (glass, sent) = glass_after(url, CENTRED_OFFSET, 2);
        assert_eq!(
            sent.len(),
            1 + 2 * 8 + 1,
            "init, 8 × (page, data), display on"
        );
        for page in 0..8u8 {
            assert_eq!(
                sent[1 + 2 * page as usize],
                [COMMANDS, 0xB0 | page, 0x02, 0x10]
            );
            assert_eq!(sent[2 + 2 * page as usize].len(), 129);
        }
        let decoded = frame_qr::decode_one(128, 64, |x, y| glass[y as usize][x as usize]);
        assert_eq!(decoded, url);
    }
    let (glass, _) = glass_after(URLS[1], 0, 0);
    let decoded = frame_qr::decode_one(128, 64, |x, y| glass[y as usize][x as usize]);
    assert_eq!(
        decoded, URLS[1],
        "sh1106-no-offset on a module wired from column 0"
    );
}

#[test]
fn the_wrong_offset_shifts_the_picture() {
    let url = URLS[0];
    let (glass, _) = glass_after(url, 0, 2);
    let frame = CodeScreen::plan(128, 64, &shown(url)).draw(Duration::from_secs(600));
    let shifted =
        (0..64).all(|y| (0..126).all(|x| glass[y][x] == frame.is_lit(x as u32 + 2, y as u32)));
    assert!(
        shifted,
        "the model shows RAM from column 2: the picture moves 2 px left"
    );
}

#[test]
fn a_countdown_tick_rewrites_only_the_pages_it_touches() {
    let bus = RecordingBus::default();
    let code = shown(URLS[2]);
    let mut s = Screen::new(Sh1106::new(bus.clone(), CENTRED_OFFSET, "test".into()).unwrap());
    s.show(&Event::CodeIssued(code.clone()));
    let mut chip = OledModel::new(Chip::Sh1106 { offset: 2 }, 64);
    chip.feed(&bus.take());
    s.show(&Event::Countdown {
        remaining: Duration::from_secs(599),
    });
    let tick = bus.take();
    assert!(tick.len() <= 4, "one or two pages: {}", tick.len());
    chip.feed(&tick);
    let expected = CodeScreen::plan(128, 64, &code).draw(Duration::from_secs(599));
    let glass = chip.glass();
    assert!((0..64).all(|y| (0..128).all(|x| glass[y][x] == expected.is_lit(x as u32, y as u32))));
    drop(s);
    chip.feed(&bus.take());
    assert!(
        chip.glass().iter().flatten().all(|&lit| !lit),
        "blanked on drop"
    );
}
