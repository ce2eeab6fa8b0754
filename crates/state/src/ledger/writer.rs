//! The ledger's writer thread. It takes events off the queue in batches, writes each batch
//! in one transaction, and drops none of them:
//!
//! - a write the database fails as a whole (it is down, locked, full) is retried with
//!   backoff, the events staying queued, so backpressure builds at admission;
//! - a batch the database refuses for its rows is split in halves until the rows it
//!   refuses alone are found; each of those is stored in a degraded form (`bounds`) and
//!   logged, so it is still recorded and chained;
//! - a flush that finds the database refusing writes for [`FLUSH_PATIENCE`] (shutdown with
//!   the database gone) writes what is still unwritten to the spill file as JSON lines.
//!
//! After each commit it appends a checkpoint (`checkpoint`) and acknowledges the batch's
//! `record_committed` waiters.

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use airlock_core::Event;
use tokio::sync::{mpsc, oneshot};

use super::bounds::{degraded, error_line};
use super::checkpoint::{ChainHead, CheckpointWriter};
use super::queue::{Command, Queue};
use super::{LedgerError, LedgerStore};

/// How long the writer waits for more events before committing a batch.
pub(super) const LINGER: Duration = Duration::from_millis(5);
/// Events written per transaction at most.
pub(super) const BATCH: usize = 512;
/// The first wait after a failed write; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long a flush waits for a database that refuses every write before the events are
/// spilled to a file instead.
pub(super) const FLUSH_PATIENCE: Duration = Duration::from_secs(10);

pub(super) struct Writer {
    pub store: Box<dyn LedgerStore>,
    pub rx: mpsc::UnboundedReceiver<Command>,
    pub queue: Arc<Queue>,
    pub checkpoint: Option<CheckpointWriter>,
    /// Where events go that the database would not take before a flush gave up.
    pub spill: PathBuf,
    /// [`FLUSH_PATIENCE`], but for tests.
    pub flush_patience: Duration,
    /// Commands read off the channel while a batch was being retried, in order: a flush
    /// among them is seen waiting.
    pub backlog: VecDeque<Command>,
}

/// Events taken for one transaction, and who waits for it.
#[derive(Default)]
struct Batch {
    events: VecDeque<Event>,
    committed: VecDeque<Option<oneshot::Sender<()>>>,
    flushes: Vec<(oneshot::Sender<Result<(), LedgerError>>, Instant)>,
}

impl Batch {
    fn take(&mut self, cmd: Command) {
        match cmd {
            Command::Append { event, committed } => {
                self.events.push_back(*event);
                self.committed.push_back(committed);
            }
            Command::Flush { ack, since } => self.flushes.push((ack, since)),
        }
    }
}

impl Writer {
    pub fn run(mut self) {
        while let Some(first) = self.next(true) {
            // Let a batch gather: a few large transactions cost the writer far less than
            // many tiny ones (the WAL is written in whole pages per commit). Events are
            // already off the request path; a flush does not wait, and neither does an
            // event whose response waits for its commit (`state.durable`): its batch is
            // whatever arrived while the last transaction was written — a group commit
            // that grows with the load instead of a fixed pause on every answer.
            if matches!(
                first,
                Command::Append {
                    committed: None,
                    ..
                }
            ) {
                std::thread::sleep(LINGER);
            }
            let mut batch = Batch::default();
            let mut next = Some(first);
            while let Some(cmd) = next.take() {
                batch.take(cmd);
                if batch.events.len() < BATCH {
                    next = self.next(false);
                }
            }
            self.write(&mut batch);
            if !batch.flushes.is_empty()
                && let Err(e) = self.store.fold_log()
            {
                tracing::warn!(error = %e, "the ledger's write-ahead log was not folded into its file");
            }
            for (ack, _) in batch.flushes {
                let _ = ack.send(Ok(()));
            }
        }
    }

    fn next(&mut self, wait: bool) -> Option<Command> {
        if let Some(cmd) = self.backlog.pop_front() {
            return Some(cmd);
        }
        if wait {
            self.rx.blocking_recv()
        } else {
            self.rx.try_recv().ok()
        }
    }

    /// Writes the batch, retrying while the database refuses; returns once every event is
    /// written, or spilled because a flush ran out of patience.
    fn write(&mut self, batch: &mut Batch) {
        let mut backoff = FIRST_BACKOFF;
        let mut failures = 0u32;
        while !batch.events.is_empty() {
            let events = batch.events.make_contiguous();
            let (written, failure) = match self.settle(events) {
                Ok(()) => (events.len(), None),
                Err((written, e)) => (written, Some(e)),
            };
            for ack in batch.committed.drain(..written).flatten() {
                let _ = ack.send(());
            }
            batch.events.drain(..written);
            self.queue.drained(written);
            let Some(e) = failure else { break };
            failures += 1;
            tracing::error!(error = %error_line(&e), unwritten = batch.events.len(), attempt = failures,
                retry_in_ms = backoff.as_millis() as u64, "ledger write failed; the events stay queued");
            while let Ok(cmd) = self.rx.try_recv() {
                self.backlog.push_back(cmd);
            }
            if self.flush_gave_up(batch) {
                self.spill(batch);
                return;
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        if failures > 0 {
            tracing::info!(attempts = failures + 1, "ledger writes work again");
        }
    }

    /// Writes `events`; a batch the store refuses for its rows is split to find the rows
    /// at fault, each then stored degraded. On a failure that is the database's, how many
    /// events from the front were written before it (the rest are to be retried).
    fn settle(&mut self, events: &[Event]) -> Result<(), (usize, LedgerError)> {
        let refused = match self.store.append(events) {
            Ok(head) => {
                self.checkpoint(head);
                return Ok(());
            }
            Err(e) if e.is_transient() => return Err((0, e)),
            Err(e) => e,
        };
        if let [event] = events {
            let stored = degraded(event, &refused);
            // Even the degraded form refused: taken as the database's fault, and retried.
            let head = self
                .store
                .append(std::slice::from_ref(&stored))
                .map_err(|e| (0, e))?;
            self.checkpoint(head);
            self.queue.degraded.fetch_add(1, Ordering::Relaxed);
            tracing::error!(id = %event.id, error = %error_line(&refused),
                "the ledger refused an event; it is stored with its fields cut and this error in `extra`");
            return Ok(());
        }
        let (front, back) = events.split_at(events.len() / 2);
        self.settle(front)?;
        self.settle(back).map_err(|(n, e)| (front.len() + n, e))
    }

    fn checkpoint(&mut self, head: Option<ChainHead>) {
        if let (Some(file), Some(head)) = (&mut self.checkpoint, head) {
            file.record(&head);
        }
    }

    /// Whether a flush (in this batch or queued behind it) has waited out its patience.
    fn flush_gave_up(&self, batch: &Batch) -> bool {
        let queued = self.backlog.iter().filter_map(|cmd| match cmd {
            Command::Flush { since, .. } => Some(since),
            Command::Append { .. } => None,
        });
        batch
            .flushes
            .iter()
            .map(|(_, since)| since)
            .chain(queued)
            .any(|since| since.elapsed() >= self.flush_patience)
    }

    /// Writes every unwritten event the writer holds (the batch, the backlog, the channel)
    /// to the spill file, and answers every flush with how many and where.
    fn spill(&mut self, batch: &mut Batch) {
        let mut flushes = std::mem::take(&mut batch.flushes);
        let mut events: Vec<Event> = batch.events.drain(..).collect();
        // Their waiters learn the events were not committed: the senders are dropped.
        batch.committed.clear();
        while let Some(cmd) = self.backlog.pop_front().or_else(|| self.rx.try_recv().ok()) {
            match cmd {
                Command::Append { event, .. } => events.push(*event),
                Command::Flush { ack, since } => flushes.push((ack, since)),
            }
        }
        let spill = match append_lines(&self.spill, &events) {
            Ok(()) => {
                tracing::error!(events = events.len(), path = %self.spill.display(),
                    "the ledger's database refused writes until shutdown; the unwritten events are saved in this file");
                Some(self.spill.clone())
            }
            Err(e) => {
                tracing::error!(events = events.len(), path = %self.spill.display(), error = %e,
                    "the ledger's database refused writes and the spill file cannot be written: these events are lost");
                None
            }
        };
        self.queue.drained(events.len());
        for (ack, _) in flushes {
            let _ = ack.send(Err(LedgerError::Unwritten {
                events: events.len(),
                spill: spill.clone(),
            }));
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Calls waiting for admission must not wait for a writer that is gone.
        self.rx.close();
        self.queue.stopped();
    }
}

/// Appends each event to `path` as a JSON line (the shape `audit export` writes) and
/// syncs it.
fn append_lines(path: &PathBuf, events: &[Event]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut text = String::new();
    for event in events {
        text.push_str(&event.to_json().to_string());
        text.push('\n');
    }
    file.write_all(text.as_bytes())?;
    file.sync_all()
}
