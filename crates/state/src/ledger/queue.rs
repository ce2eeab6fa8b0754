//! The ledger's queue, between the calls and the writer thread. Admission waits while
//! more events are unwritten than the queue's capacity (backpressure: a ledger that falls
//! behind slows new calls down); once admitted, a call records its event whenever it ends
//! without waiting, and the event is never dropped. A slot holds no room in the queue, so
//! calls that take long to finish — or agents that never send their body — cannot use the
//! capacity up and stall everyone else.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use airlock_core::Event;
use tokio::sync::{Notify, mpsc, oneshot};

use super::LedgerError;
use super::bounds::bounded;

pub(super) enum Command {
    Append {
        event: Box<Event>,
        /// Told once the event's batch is committed (`EventSlot::record_committed`).
        committed: Option<oneshot::Sender<()>>,
    },
    Flush {
        ack: oneshot::Sender<Result<(), LedgerError>>,
        /// When it was asked for: a flush the database keeps refusing is given up after a
        /// while (see `writer`).
        since: Instant,
    },
}

/// What the calls and the writer share.
pub(super) struct Queue {
    capacity: usize,
    /// Events recorded and neither written nor spilled yet, the writer's batch included.
    unwritten: AtomicUsize,
    /// Signalled by the writer whenever it takes events off `unwritten`, and when it stops.
    drained: Notify,
    /// Events stored in their degraded form (see `bounds::degraded`).
    pub degraded: AtomicU64,
}

impl Queue {
    pub fn new(capacity: usize) -> Queue {
        Queue {
            capacity,
            unwritten: AtomicUsize::new(0),
            drained: Notify::new(),
            degraded: AtomicU64::new(0),
        }
    }

    /// `n` events were written (or spilled): room for the calls waiting to be admitted.
    pub fn drained(&self, n: usize) {
        if n > 0 {
            self.unwritten.fetch_sub(n, Ordering::AcqRel);
            self.drained.notify_waiters();
        }
    }

    /// The writer stopped: waiters look again and find the channel closed.
    pub fn stopped(&self) {
        self.drained.notify_waiters();
    }

    /// Waits while the queue is over its capacity, then admits a call.
    pub async fn admit(
        self: &Arc<Self>,
        tx: &mpsc::UnboundedSender<Command>,
    ) -> Result<EventSlot, LedgerError> {
        loop {
            // Made before the count is read, so a drain between the two still wakes it.
            let drained = self.drained.notified();
            if tx.is_closed() {
                return Err(LedgerError::Closed);
            }
            if self.unwritten.load(Ordering::Acquire) < self.capacity {
                return Ok(EventSlot {
                    tx: tx.clone(),
                    queue: self.clone(),
                });
            }
            drained.await;
        }
    }
}

/// A call's admission to the ledger: the right to record one event, at any time, without
/// waiting. It holds no room in the queue.
pub struct EventSlot {
    tx: mpsc::UnboundedSender<Command>,
    queue: Arc<Queue>,
}

impl EventSlot {
    /// Queues the event for the writer; never waits and never drops it.
    pub fn record(self, event: Event) {
        self.send(event, None);
    }

    /// Queues the event and resolves once the transaction holding it has committed (the
    /// writer acknowledges every such event of a batch after its commit: a group commit).
    /// The event is queued at once, whether the future is awaited or not.
    pub fn record_committed(
        self,
        event: Event,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send + 'static {
        let (ack, committed) = oneshot::channel();
        self.send(event, Some(ack));
        async move { committed.await.map_err(|_| LedgerError::NotCommitted) }
    }

    fn send(self, event: Event, committed: Option<oneshot::Sender<()>>) {
        self.queue.unwritten.fetch_add(1, Ordering::AcqRel);
        let append = Command::Append {
            event: Box::new(bounded(event)),
            committed,
        };
        if let Err(mpsc::error::SendError(Command::Append { event, .. })) = self.tx.send(append) {
            self.queue.drained(1);
            tracing::error!(id = %event.id, "the ledger writer has stopped: the event is not recorded");
        }
    }
}
