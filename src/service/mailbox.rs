//! The run's two mailboxes: the supervisor's wake-ups (`Notice`) and the threads' "still
//! running" senders, whose last drop tells `run` that every thread has ended. A queue under a
//! mutex with a condition variable, in place of `std::sync::mpsc`: std's channel is three
//! channels in one (array, list, rendezvous) chosen at run time, so each message type links
//! all three; this is the one kind `run` uses (-4,736 bytes on armv7 for the two types;
//! BENCHMARKS.md, "Bytes for the third wave").
//!
//! Only what `run` needs: unbounded, many senders, one receiver, `recv` and `recv_timeout`
//! with std's [`RecvTimeoutError`]. Must not block a sender (the broker's workers and signal
//! paths send). A message sent after the receiver is gone is dropped at once.

use std::collections::VecDeque;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

struct Queue<T> {
    items: VecDeque<T>,
    senders: usize,
    receiver: bool,
}

struct Shared<T> {
    queue: Mutex<Queue<T>>,
    ready: Condvar,
}

impl<T> Shared<T> {
    /// The queue, whatever a panicking holder left: a queue of messages stays a queue.
    fn lock(&self) -> MutexGuard<'_, Queue<T>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A sending side; cloned for each thread that sends.
pub struct Sender<T>(Arc<Shared<T>>);

/// The one receiving side.
pub struct Receiver<T>(Arc<Shared<T>>);

/// An empty mailbox with one sender and its receiver.
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue {
            items: VecDeque::new(),
            senders: 1,
            receiver: true,
        }),
        ready: Condvar::new(),
    });
    (Sender(Arc::clone(&shared)), Receiver(shared))
}

impl<T> Sender<T> {
    /// Queues `message` and wakes the receiver; `Err` gives it back when the receiver is gone.
    pub fn send(&self, message: T) -> Result<(), T> {
        let mut queue = self.0.lock();
        if !queue.receiver {
            return Err(message);
        }
        queue.items.push_back(message);
        drop(queue);
        self.0.ready.notify_one();
        Ok(())
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.0.lock().senders += 1;
        Sender(Arc::clone(&self.0))
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut queue = self.0.lock();
        queue.senders -= 1;
        if queue.senders == 0 {
            drop(queue);
            // The receiver learns that no message can come any more.
            self.0.ready.notify_one();
        }
    }
}

impl<T> Receiver<T> {
    /// The next message, waiting as long as it takes; `Err` once it is empty and every sender
    /// is gone.
    pub fn recv(&self) -> Result<T, RecvTimeoutError> {
        self.wait(None)
    }

    /// The next message, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        // A timeout too long for the clock is no timeout.
        self.wait(Instant::now().checked_add(timeout))
    }

    fn wait(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let mut queue = self.0.lock();
        loop {
            if let Some(message) = queue.items.pop_front() {
                return Ok(message);
            }
            if queue.senders == 0 {
                return Err(RecvTimeoutError::Disconnected);
            }
            queue = match deadline {
                None => self
                    .0
                    .ready
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(at) => {
                    let left = at.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(RecvTimeoutError::Timeout);
                    }
                    let woken = self.0.ready.wait_timeout(queue, left);
                    woken.unwrap_or_else(PoisonError::into_inner).0
                }
            };
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut queue = self.0.lock();
        queue.receiver = false;
        // Nobody will read them: the messages go now, not with the last sender.
        queue.items.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_in_order_then_disconnected_once_every_sender_is_gone() {
        let (first, receiver) = channel();
        let second = first.clone();
        first.send(1).unwrap();
        second.send(2).unwrap();
        drop(first);
        assert_eq!(receiver.recv_timeout(Duration::ZERO), Ok(1));
        assert_eq!(receiver.recv(), Ok(2));
        assert_eq!(
            receiver.recv_timeout(Duration::ZERO),
            Err(RecvTimeoutError::Timeout),
            "a sender is left"
        );
        drop(second);
        assert_eq!(receiver.recv(), Err(RecvTimeoutError::Disconnected));
        assert_eq!(
            receiver.recv_timeout(Duration::from_secs(60)),
            Err(RecvTimeoutError::Disconnected)
        );
    }

    #[test]
    fn a_waiting_receiver_wakes_for_a_message_and_for_the_last_sender_leaving() {
        let (sender, receiver) = channel::<u8>();
        let other = sender.clone();
        let sending = std::thread::spawn(move || {
            sender.send(7).unwrap();
            drop(sender);
        });
        assert_eq!(receiver.recv_timeout(Duration::from_secs(60)), Ok(7));
        sending.join().unwrap();
        let leaving = std::thread::spawn(move || drop(other));
        let started = Instant::now();
        assert_eq!(
            receiver.recv_timeout(Duration::from_secs(60)),
            Err(RecvTimeoutError::Disconnected)
        );
        assert!(started.elapsed() < Duration::from_secs(60));
        leaving.join().unwrap();
    }

    #[test]
    fn a_timeout_ends_the_wait_and_a_message_after_the_receiver_is_refused() {
        let (sender, receiver) = channel::<u8>();
        let started = Instant::now();
        assert_eq!(
            receiver.recv_timeout(Duration::from_millis(20)),
            Err(RecvTimeoutError::Timeout)
        );
        assert!(started.elapsed() >= Duration::from_millis(20));
        drop(receiver);
        assert_eq!(sender.send(3), Err(3));
    }
}
