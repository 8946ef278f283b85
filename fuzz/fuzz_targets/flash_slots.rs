//! A flash partition holding arbitrary bytes (a corrupt chip, a torn write, another program's
//! data) never makes the slot store panic. Whatever it loads is a record the codec accepts, and
//! a save over it either works and reads back, or refuses without touching a valid record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sfpair::store::flash::SlotStore;
use sfpair::store::{Loaded, TokenStore, record};
use sfpair::testing::NorFlash;

fuzz_target!(|data: &[u8]| {
    // Two 1 KiB NOR sectors: small enough that the fuzzer reaches every header byte.
    let flash = NorFlash::nor(1024, 2);
    let mut image = vec![0xFF; 2048];
    let n = data.len().min(image.len());
    image[..n].copy_from_slice(&data[..n]);
    flash.set_bytes(&image);
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
    match store.save(&sample) {
        Ok(()) => assert_eq!(store.load().ok(), Some(Loaded::Paired(sample))),
        Err(_) => assert!(matches!(store.load(), Ok(Loaded::Paired(_)))),
    }
});
