//! What the person sees: presenters turn pairing events into a console screen, JSON lines for a
//! host UI, or (later) frames on small displays.
//!
//! A presenter never fails the pairing: a display that breaks logs a warning and the others go
//! on. Presenters get only [`Event`]s, which hold no token and no device code.

pub mod console;
pub mod json;
pub mod qr;

use crate::event::Event;

/// Shows pairing events somewhere.
pub trait Presenter: Send {
    fn show(&mut self, event: &Event);
}
