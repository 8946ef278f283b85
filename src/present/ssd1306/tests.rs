//! The SSD1306 driver through the presenter into a recording bus, replayed on the controller
//! model: one write per frame, the rebuilt panel scans, a tick rewrites one strip, 128x32 wiring.

use super::*;
use crate::event::{Event, Paired};
use crate::present::Presenter;
use crate::present::layout::CodeScreen;
use crate::present::layout::tests::{URLS, shown};
use crate::present::screen::Screen;
use std::time::Duration;

use crate::present::frame_qr;
use crate::present::oled_model;
use oled_model::{Chip, OledModel, RecordingBus};

fn screen(bus: &RecordingBus, height: u32) -> Screen<Ssd1306<RecordingBus>> {
    Screen::new(Ssd1306::new(bus.clone(), height, "test".into()).unwrap())
}

fn same(glass: &[Vec<bool>], frame: &Canvas) -> bool {
    glass.len() == frame.height() as usize
        && glass.iter().enumerate().all(|(y, row)| {
            row.iter()
                .enumerate()
                .all(|(x, &lit)| lit == frame.is_lit(x as u32, y as u32))
        })
}

#[test]
fn a_whole_frame_is_one_write_and_the_rebuilt_panel_scans() {
    for url in URLS {
        let bus = RecordingBus::default();
        let mut s = screen(&bus, 64);
        s.show(&Event::CodeIssued(shown(url)));
        let sent = bus.take();
        assert_eq!(sent.len(), 4, "init, window, data, display on");
        assert_eq!(sent[2].len(), 1025);
        assert_eq!(sent[2][0], DATA);
        assert_eq!(sent[1], [COMMANDS, 0x21, 0, 127, 0x22, 0, 7]);
        let mut chip = OledModel::new(Chip::Ssd1306, 64);
        chip.feed(&sent);
        let glass = chip.glass();
        let decoded = frame_qr::decode_one(128, 64, |x, y| glass[y as usize][x as usize]);
        assert_eq!(decoded, url);
        std::mem::forget(s); // keep the code up: Drop would blank it
    }
}

#[test]
fn a_countdown_tick_rewrites_one_strip_and_the_panel_matches_the_frame() {
    let bus = RecordingBus::default();
    let mut s = screen(&bus, 64);
    let code = shown(URLS[0]);
    s.show(&Event::CodeIssued(code.clone()));
    let mut chip = OledModel::new(Chip::Ssd1306, 64);
    chip.feed(&bus.take());
    s.show(&Event::Countdown {
        remaining: Duration::from_secs(599),
    });
    let tick = bus.take();
    assert_eq!(tick.len(), 2, "window, data");
    assert!(tick[1].len() < 1 + 2 * 64, "{} bytes", tick[1].len());
    chip.feed(&tick);
    let expected = CodeScreen::plan(128, 64, &code).draw(Duration::from_secs(599));
    assert!(same(&chip.glass(), &expected));
    s.show(&Event::Paired(Paired {
        instance_url: "https://acme.my.salesforce.com".into(),
        org_id: None,
        user_id: None,
    }));
    chip.feed(&bus.take());
    let glass = chip.glass();
    assert!(frame_qr::decode_lit(128, 64, |x, y| glass[y as usize][x as usize]).is_empty());
    assert!(same(
        &glass,
        &crate::present::layout::message_screen(128, 64, "Paired", "acme.my.salesforce.com")
    ));
}

#[test]
fn a_128x32_panel_gets_its_own_wiring_and_the_code_as_text() {
    for url in [URLS[0], URLS[7]] {
        let bus = RecordingBus::default();
        let mut s = screen(&bus, 32);
        s.show(&Event::CodeIssued(shown(url)));
        let mut chip = OledModel::new(Chip::Ssd1306, 32);
        chip.feed(&bus.take());
        let glass = chip.glass();
        let expected = CodeScreen::plan(128, 32, &shown(url)).draw(Duration::from_secs(600));
        assert!(same(&glass, &expected), "{url}");
        let found = frame_qr::decode_lit(128, 32, |x, y| glass[y as usize][x as usize]);
        if url.len() <= 53 {
            assert_eq!(found, [url]);
        } else {
            assert!(found.is_empty(), "text only on 128x32: {found:?}");
        }
        drop(s);
        chip.feed(&bus.take());
        assert!(
            chip.glass().iter().flatten().all(|&lit| !lit),
            "blanked on drop"
        );
    }
}

#[test]
fn only_128_wide_panels_of_64_or_32_rows() {
    assert!(Ssd1306::new(RecordingBus::default(), 48, "x".into()).is_err());
}
