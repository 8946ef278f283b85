//! Queues between sfpair's threads: `run`'s wake-ups for its supervisor, the "still running"
//! senders whose last drop tells `run` that every thread has ended, and the broker's two lanes
//! of requests for its workers. A queue under a mutex with a condition variable, in place of
//! `std::sync::mpsc`: std's channel is three channels in one (array, list, rendezvous) chosen
//! at run time, so each message type links all three: `run`'s two types cost 4,736 bytes more
//! on armv7 that way, the broker's one 3,968 (BENCHMARKS.md, "Bytes for the third wave").
//!
//! Only what they need: many senders, one receiver (shared under a lock by the broker's
//! workers), unbounded or bounded ([`bounded`]: [`Sender::try_send`] refuses when full),
//! `recv`, `recv_timeout` and `try_recv` with std's error types. A sender never blocks. A
//! message sent after the receiver is gone is given back at once.

use std::collections::VecDeque;
use std::sync::mpsc::{RecvTimeoutError, TrySendError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

struct Queue<T> {
    items: VecDeque<T>,
    /// The most messages held at once; `usize::MAX` for unbounded.
    capacity: usize,
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

/// An empty unbounded queue: one sender and its receiver.
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    bounded(usize::MAX)
}

/// An empty queue that holds at most `capacity` messages.
pub fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue {
            items: VecDeque::new(),
            capacity,
            senders: 1,
            receiver: true,
        }),
        ready: Condvar::new(),
    });
    (Sender(Arc::clone(&shared)), Receiver(shared))
}

impl<T> Sender<T> {
    /// Queues `message` and wakes the receiver; `Err` gives it back when the receiver is gone
    /// or the queue is full.
    pub fn send(&self, message: T) -> Result<(), T> {
        self.try_send(message).map_err(|e| match e {
            TrySendError::Full(m) | TrySendError::Disconnected(m) => m,
        })
    }

    /// [`Sender::send`], saying why a message was refused.
    pub fn try_send(&self, message: T) -> Result<(), TrySendError<T>> {
        let mut queue = self.0.lock();
        if !queue.receiver {
            return Err(TrySendError::Disconnected(message));
        }
        if queue.items.len() >= queue.capacity {
            return Err(TrySendError::Full(message));
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
    /// The next message if one is waiting, else at once `Err(Timeout)` (or `Disconnected`).
    pub fn try_recv(&self) -> Result<T, RecvTimeoutError> {
        self.wait(Some(Instant::now()))
    }

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
    fn a_bounded_queue_refuses_what_does_not_fit_until_a_message_is_taken() {
        let (sender, receiver) = bounded(2);
        sender.try_send(1).unwrap();
        sender.try_send(2).unwrap();
        assert_eq!(sender.try_send(3), Err(TrySendError::Full(3)));
        assert_eq!(receiver.try_recv(), Ok(1));
        sender.try_send(3).unwrap();
        assert_eq!(receiver.try_recv(), Ok(2));
        assert_eq!(receiver.try_recv(), Ok(3));
        assert_eq!(receiver.try_recv(), Err(RecvTimeoutError::Timeout));
        drop(receiver);
        assert_eq!(sender.try_send(4), Err(TrySendError::Disconnected(4)));
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
