//! Delivery: takes the oldest batch from the outbox, sends it as one sObject Collections
//! request through a [`Caller`] (the agent, or `run`'s shared session), and settles each
//! record by its result (`batch.rs`). [`flush`] repeats that until the outbox is empty or
//! delivery cannot go on; `sfpair run` calls [`Deliverer::round`] and waits as it says.
//!
//! Exactly once, for upserts: a record leaves the queue only once the server said it was
//! saved (or refused it for good, into the dead letters). A reply that never came means the
//! batch may or may not have landed; it is sent again unchanged, and the external id makes
//! the second upsert update the row the first one created. Platform events cannot be
//! upserted, so a lost reply can publish an event twice: at least once, never lost.
//!
//! The deliver lock keeps two deliverers (a `flush` and a `run`) from sending the same batch
//! at once; it is not held by `send`, which only appends. Before a batch is sent, the outbox
//! sets aside the room to record its outcome (`Outbox::reserve_outcome`): a full disk sends
//! nothing, rather than the same batch at every attempt.

pub mod batch;
pub mod pace;
pub mod sendable;

use std::io::Write;
use std::time::Duration;

use log::{debug, info, warn};

use self::batch::{Outcome, Verdict};
use self::pace::{Pace, Policy, Usage};
use crate::call::{self, Caller};
use crate::error::{Error, ErrorKind};
use crate::outbox::{MAX_BATCH, Outbox, Pending, Settle};

/// The API version of the collection requests when `--api-version` is not given: the one
/// `sfpair call` uses too.
pub use crate::rest::DEFAULT_API_VERSION;

/// A record whose result was a transient failure (a locked row) this many times in a row
/// goes to the dead letters with the last error, so one record cannot hold the queue for
/// ever; `sfpair outbox retry-dead` queues it again.
pub const MAX_RECORD_RETRIES: u32 = 20;

/// `flush` gives up after this many failed rounds in a row without any progress.
pub const FLUSH_GIVE_UP: u32 = 5;

/// The whole of one delivery request when `--timeout` is not given (its default).
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);

/// How delivery talks to the org.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// `62.0`.
    pub api_version: String,
    /// `--api-reserve`: pause at this percentage of the daily API allocation.
    pub reserve: u8,
    /// `--timeout`: the whole of one request, from connecting to the reply's last byte. A
    /// reply is at most [`batch::MAX_REPLY`] bytes, so a server that paces it out more slowly
    /// (a byte a second keeps every per-read timeout happy) is a lost reply, not a wait for
    /// ever: `flush` then ends within [`FLUSH_GIVE_UP`] deadlines plus its backoff, and `run`'s
    /// delivery thread stays free to stop.
    pub deadline: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            api_version: DEFAULT_API_VERSION.into(),
            reserve: pace::DEFAULT_RESERVE_PERCENT,
            deadline: DEFAULT_DEADLINE,
        }
    }
}

/// What one round came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Round {
    /// Nothing is queued.
    Idle,
    /// Records were settled; go on.
    Progress {
        /// Records the org took.
        delivered: usize,
        /// Records it refused for good.
        dead: usize,
    },
    /// Nothing was settled and the reason may pass (network, lost reply, 5xx, locked rows):
    /// wait [`Pace::failed`] and go on.
    Failed(String),
    /// The org's API allocation is (nearly) used up: wait [`Pace::limited`]; `usage` when the
    /// server reported it.
    Limited {
        /// How long the server asked to wait, when it said.
        retry_after: Option<Duration>,
        /// The API usage the server reported (`Sforce-Limit-Info`).
        usage: Option<Usage>,
        /// Why, for the log and health.
        why: String,
    },
}

/// Delivery state that lives as long as the deliverer: transient failures per record.
pub struct Deliverer {
    options: Options,
    /// seq -> transient failures so far. A list: it holds at most a batch's records, and a
    /// `HashMap` of its own type is code of its own (BENCHMARKS.md, "Bytes for the third
    /// wave").
    retries: Vec<(u64, u32)>,
    /// The last `Sforce-Limit-Info` seen.
    pub usage: Option<Usage>,
}

impl Deliverer {
    /// A deliverer with these options.
    pub fn new(options: Options) -> Self {
        Deliverer {
            options,
            retries: Vec::new(),
            usage: None,
        }
    }

    /// Sends the oldest batch once and settles what its reply decides. An `Err` stops
    /// delivery (the pairing needs repair, the store or the outbox failed, the org refused
    /// access); every record not settled stays queued.
    pub fn round(
        &mut self,
        outbox: &mut Outbox,
        via: &mut dyn Caller,
        now: u64,
    ) -> Result<Round, Error> {
        let batch = outbox.next_batch(MAX_BATCH)?;
        if batch.is_empty() {
            return Ok(Round::Idle);
        }
        // Read back from disk: checked again before anything of it goes on the wire.
        let (batch, mut settled) = sendable::split(batch);
        if !batch.is_empty() {
            // Room to record the answer first: on a full disk, a batch sent without it would
            // be sent again at every attempt (events published each time).
            outbox.reserve_outcome(batch.len() + settled.len())?;
        }
        let mut stopped = None;
        // Halves of a batch the server refused whole (400), sent one after another.
        let mut parts: Vec<&[Pending]> = if batch.is_empty() {
            Vec::new()
        } else {
            vec![&batch]
        };
        while let Some(part) = parts.pop() {
            match self.send(part, via)? {
                Sent::Outcome(Outcome::Each(verdicts)) => {
                    for (pending, verdict) in part.iter().zip(verdicts) {
                        self.judge(pending, verdict, &mut settled);
                    }
                }
                Sent::Outcome(Outcome::Split) => {
                    let (a, b) = part.split_at(part.len() / 2);
                    parts.push(b);
                    parts.push(a);
                }
                Sent::Outcome(Outcome::AllDead(why)) => {
                    for p in part {
                        settled.push(Settle::Dead {
                            seq: p.seq,
                            error: why.clone(),
                        });
                    }
                }
                Sent::Outcome(Outcome::RetryAll(why)) | Sent::Lost(why) => {
                    stopped = Some(Round::Failed(why));
                    break;
                }
                Sent::Limited(retry_after, why) => {
                    stopped = Some(Round::Limited {
                        retry_after,
                        usage: self.usage,
                        why,
                    });
                    break;
                }
            }
        }
        let delivered = settled
            .iter()
            .filter(|s| matches!(s, Settle::Delivered(_)))
            .count();
        let dead = settled.len() - delivered;
        if !settled.is_empty() {
            outbox.settle(&settled, now)?;
            for s in &settled {
                let seq = match s {
                    Settle::Delivered(seq) | Settle::Dead { seq, .. } => seq,
                };
                self.retries.retain(|&(s, _)| s != *seq);
            }
            info!(
                "outbox: {delivered} record(s) delivered{}",
                if dead > 0 {
                    format!(", {dead} moved to the dead letters")
                } else {
                    String::new()
                }
            );
        }
        if let Some(stop) = stopped {
            if settled.is_empty() {
                return Ok(stop);
            }
        } else if settled.is_empty() {
            return Ok(Round::Failed(
                "every record of the batch got a transient error (locked rows)".into(),
            ));
        }
        if let Some(usage) = self.usage.filter(|u| u.over(self.options.reserve)) {
            return Ok(Round::Limited {
                retry_after: None,
                usage: Some(usage),
                why: reserve_reason(usage, self.options.reserve),
            });
        }
        Ok(Round::Progress { delivered, dead })
    }

    fn judge(&mut self, pending: &Pending, verdict: Verdict, settled: &mut Vec<Settle>) {
        match verdict {
            Verdict::Delivered => settled.push(Settle::Delivered(pending.seq)),
            // Logs name the codes and fields only: the messages may quote the record's values
            // (batch::Refusal); they go to the dead letter, which holds the record anyway.
            Verdict::Dead(why) => {
                warn!(
                    "outbox: record {} refused for good: {}",
                    pending.seq, why.codes
                );
                settled.push(Settle::Dead {
                    seq: pending.seq,
                    error: why.text,
                });
            }
            Verdict::Retry(why) => {
                let at = match self.retries.iter().position(|&(s, _)| s == pending.seq) {
                    Some(at) => at,
                    None => {
                        self.retries.push((pending.seq, 0));
                        self.retries.len() - 1
                    }
                };
                let tries = &mut self.retries[at].1;
                *tries += 1;
                if *tries >= MAX_RECORD_RETRIES {
                    settled.push(Settle::Dead {
                        seq: pending.seq,
                        error: format!(
                            "still failing after {MAX_RECORD_RETRIES} attempts: {}",
                            why.text
                        ),
                    });
                } else {
                    debug!(
                        "outbox: record {} will be retried: {}",
                        pending.seq, why.codes
                    );
                }
            }
        }
    }

    /// One request for `part`: its outcome, or why nothing can be concluded from it.
    fn send(&mut self, part: &[Pending], via: &mut dyn Caller) -> Result<Sent, Error> {
        let mut request = batch::request(part, &self.options.api_version)?;
        request.deadline = Some(self.options.deadline);
        let mut body = Bounded::default();
        let reply = match call::call(via, &request, &mut body) {
            Ok(reply) => reply,
            // Reading stopped at the limit: no reply to this batch is that long.
            Err(_) if body.over => {
                return Ok(Sent::Lost(format!(
                    "the server's reply passed {} bytes, more than any reply to {} records: \
                     reading stopped there",
                    batch::MAX_REPLY,
                    part.len()
                )));
            }
            // The request may or may not have reached the org: send it again later.
            Err(e) if matches!(e.kind(), ErrorKind::Network | ErrorKind::Server) => {
                return Ok(Sent::Lost(e.message().to_string()));
            }
            Err(e) => return Err(e),
        };
        if let Some(usage) = reply.limit_info.as_deref().and_then(pace::usage) {
            self.usage = Some(usage);
        }
        let code = reply.summary.as_deref().unwrap_or("");
        if reply.status == 403 && code.starts_with("REQUEST_LIMIT_EXCEEDED") {
            return Ok(Sent::Limited(
                reply.retry_after,
                format!("the org's API request limit is used up (HTTP 403 {code})"),
            ));
        }
        if reply.status == 401 || reply.status == 403 {
            // 401 after a refresh, or a 403 that is not the limit: the user or the app lacks
            // access. No record is at fault, so none is dead-lettered.
            let e = reply.error().unwrap_or_else(|| Error::server("refused"));
            return Err(Error::new(
                e.kind(),
                format!(
                    "{}; the outbox keeps every record until that is fixed",
                    e.message()
                ),
            ));
        }
        Ok(Sent::Outcome(batch::outcome(
            reply.status,
            &body.bytes,
            part.len(),
        )))
    }
}

fn reserve_reason(usage: Usage, reserve: u8) -> String {
    format!(
        "the org has used {} of its {} daily API requests, at or above --api-reserve {reserve}%",
        usage.used, usage.max
    )
}

enum Sent {
    Outcome(Outcome),
    /// No reply that can be trusted (a network error, a reply cut off).
    Lost(String),
    Limited(Option<Duration>, String),
}

/// Holds a reply of up to [`batch::MAX_REPLY`] bytes; a longer one cannot be a reply to 200
/// records. Past the limit a write fails, which stops the reading at once (it used to go on
/// discarding, for as long as the server kept sending).
#[derive(Default)]
struct Bounded {
    bytes: Vec<u8>,
    /// The reply passed the limit.
    over: bool,
}

impl Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > batch::MAX_REPLY {
            self.over = true;
            return Err(std::io::Error::other(format!(
                "the reply is longer than {} bytes",
                batch::MAX_REPLY
            )));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What a flush did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flushed {
    /// Records the org took.
    pub delivered: usize,
    /// Records it refused for good (now dead letters).
    pub dead: usize,
    /// Requests that failed and were retried.
    pub retries: u32,
}

/// Delivers until the outbox is empty (`Ok`), or stops with exit 7 (`Network`) when the
/// network is down or the org's API limit is reached, or with the error that stopped it; in
/// every case what is not delivered stays queued. `sleep` waits between retries (the real
/// clock, or a test's).
pub fn flush(
    outbox: &mut Outbox,
    via: &mut dyn Caller,
    options: Options,
    now: &mut dyn FnMut() -> u64,
    sleep: &mut dyn FnMut(Duration),
    seed: u64,
) -> Result<Flushed, Error> {
    let _guard = outbox.try_deliver_lock()?.ok_or_else(|| {
        Error::storage(format!(
            "another sfpair is delivering from the outbox {} (sfpair run, or a second flush); \
             nothing was sent twice: let it finish",
            outbox.dir().display()
        ))
    })?;
    let mut deliverer = Deliverer::new(options);
    let mut pace = Pace::new(Policy::FLUSH, seed);
    let mut done = Flushed::default();
    loop {
        match deliverer.round(outbox, via, now())? {
            Round::Idle => return Ok(done),
            Round::Progress { delivered, dead } => {
                pace.progress();
                done.delivered += delivered;
                done.dead += dead;
            }
            Round::Failed(why) => {
                if pace.failures() + 1 >= FLUSH_GIVE_UP {
                    return Err(stopped(
                        outbox,
                        &done,
                        &why,
                        "flush again when the network is back",
                    ));
                }
                let wait = pace.failed();
                done.retries += 1;
                warn!("outbox: {why}; sending again in {} ms", wait.as_millis());
                sleep(wait);
            }
            Round::Limited {
                retry_after, why, ..
            } => {
                let when = match retry_after {
                    Some(d) => format!(
                        "flush again in {} s (the server's Retry-After)",
                        d.as_secs()
                    ),
                    None => "flush again later: the allocation frees up over 24 hours".into(),
                };
                return Err(stopped(outbox, &done, &why, &when));
            }
        }
    }
}

fn stopped(outbox: &mut Outbox, done: &Flushed, why: &str, what_to_do: &str) -> Error {
    let queued = outbox
        .status()
        .map(|s| format!("{} record(s) still queued", s.queued))
        .unwrap_or_else(|_| "the rest is still queued".into());
    Error::new(
        ErrorKind::Network,
        format!(
            "delivery stopped: {why}. {} delivered, {queued}, nothing lost; {what_to_do}",
            done.delivered
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::Target;

    fn pending(seq: u64) -> Pending {
        Pending {
            seq,
            target: Target::Upsert {
                object: "A__c".into(),
                field: "Key__c".into(),
            },
            json: "{}".into(),
            queued_at: 1,
        }
    }

    fn locked() -> Verdict {
        Verdict::Retry(batch::Refusal {
            text: "UNABLE_TO_LOCK_ROW: busy".into(),
            codes: "UNABLE_TO_LOCK_ROW".into(),
        })
    }

    #[test]
    fn a_record_retried_max_times_goes_dead_and_each_record_counts_its_own_tries() {
        let mut deliverer = Deliverer::new(Options::default());
        let mut settled = Vec::new();
        for _ in 1..MAX_RECORD_RETRIES {
            deliverer.judge(&pending(7), locked(), &mut settled);
            deliverer.judge(&pending(8), locked(), &mut settled);
        }
        deliverer.judge(&pending(9), locked(), &mut settled);
        assert!(
            settled.is_empty(),
            "{} tries are not enough",
            MAX_RECORD_RETRIES - 1
        );
        deliverer.judge(&pending(8), locked(), &mut settled);
        let [Settle::Dead { seq: 8, error }] = &settled[..] else {
            panic!("{} records settled, not 8 alone, dead", settled.len());
        };
        assert!(
            error.starts_with("still failing after 20 attempts: UNABLE_TO_LOCK_ROW"),
            "{error}"
        );
        deliverer.judge(&pending(9), Verdict::Delivered, &mut settled);
        assert_eq!(settled.len(), 2);
    }
}
