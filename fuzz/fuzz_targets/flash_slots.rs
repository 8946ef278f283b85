//! A flash partition holding arbitrary bytes (a corrupt chip, a torn write, another program's
//! data) never makes the slot store panic. Whatever it loads is a record the codec accepts, and
//! a save over it either works and reads back, or refuses without touching a valid record.
//! With the power cut during that save (at a point the bytes after the image pick), a reboot
//! reads the valid record or the new one, never neither.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sfpair::store::flash::SlotStore;
use sfpair::store::{Loaded, TokenStore, record};
use sfpair::testing::{NorFlash, Torn};

/// Two 1 KiB NOR sectors: small enough that the fuzzer reaches every header byte.
const IMAGE: usize = 2048;

fuzz_target!(|data: &[u8]| {
    let flash = NorFlash::nor(1024, 2);
    let mut image = vec![0xFF; IMAGE];
    let n = data.len().min(IMAGE);
    image[..n].copy_from_slice(&data[..n]);
    flash.set_bytes(&image);
    // Units (erased blocks and programmed bytes) before the power goes, and how the unit it
    // was on is left: a save erases one block and programs a few hundred bytes.
    let cut = data.get(IMAGE..IMAGE + 3).map(|c| {
        let units = u64::from(u16::from_le_bytes([c[0], c[1]])) % 1100;
        (units, Torn::ALL[usize::from(c[2]) % Torn::ALL.len()])
    });
    let Ok(mut store) = SlotStore::new(flash.clone()) else {
        return;
    };
    let before = store.load();
    if let Ok(Loaded::Paired(record)) = &before {
        assert!(
            record::to_bytes(record, 0).is_ok(),
            "a loaded record encodes again"
        );
    }
    // A save either lands and reads back, or fails; it never leaves a valid record unreadable.
    let sample = match &before {
        Ok(Loaded::Paired(record)) => {
            let mut r = record.clone();
            r.scope.push_str(" x");
            r
        }
        _ => return,
    };
    let Some((units, torn)) = cut else {
        match store.save(&sample) {
            Ok(()) => assert_eq!(store.load().ok(), Some(Loaded::Paired(sample))),
            // Refused: the record that was there is still there, unchanged.
            Err(_) => assert_eq!(store.load().ok(), before.ok(), "a failed save changed it"),
        }
        return;
    };
    flash.cut_power_after(units, torn);
    let saved = store.save(&sample).is_ok();
    flash.power_on();
    let after = SlotStore::new(flash.clone())
        .expect("the chip opens after the cut")
        .load()
        .ok();
    let new = Some(Loaded::Paired(sample));
    match saved {
        true => assert_eq!(after, new, "a save that returned is there after a reboot"),
        false => assert!(
            after == before.ok() || after == new,
            "a cut after {units} units ({torn:?}) left neither record: {after:?}"
        ),
    }
});
