//! The per-connector entry of the DLQ path: what the plugin's callback calls.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use iggy_dlq_envelope::{Decoder, DlqEnvelope, Error as EnvelopeError, Origin, PayloadPolicy};
use tokio::sync::Notify;

use crate::metrics::{ConnectorMetrics, Registry};

pub use iggy_dlq_sdk::abi::DlqStatus;

/// One dead letter on its way to the DLQ.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The encoded envelope: the exact bytes of the DLQ message.
    pub bytes: Bytes,
    /// Dead letters with the same key keep their order in the DLQ (one DLQ
    /// partition per key): a hash of the origin partition.
    pub partition_key: u64,
    /// The batch to confirm to.
    pub tracker: Option<Arc<BatchTracker>>,
}

/// Counts the dead letters of one batch until each is confirmed.
#[derive(Debug, Default)]
pub struct BatchTracker {
    pending: AtomicUsize,
    failed: AtomicUsize,
    total: AtomicUsize,
    notify: Notify,
}

impl BatchTracker {
    /// A tracker with nothing pending.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Registers one more dead letter.
    pub fn add(&self) {
        self.total.fetch_add(1, Ordering::SeqCst);
        self.pending.fetch_add(1, Ordering::SeqCst);
    }

    /// Confirms one dead letter: `durable` when it reached the DLQ or the
    /// spool, `false` when it could not be stored anywhere.
    pub fn confirm(&self, durable: bool) {
        if !durable {
            self.failed.fetch_add(1, Ordering::SeqCst);
        }
        if self.pending.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.notify.notify_waiters();
        }
    }

    /// Forgets one registered dead letter that will never be sent (a
    /// failed attempt's, superseded by a later attempt).
    pub fn discard(&self) {
        self.total.fetch_sub(1, Ordering::SeqCst);
        self.confirm(true);
    }

    /// Dead letters registered so far.
    pub fn total(&self) -> usize {
        self.total.load(Ordering::SeqCst)
    }

    /// Dead letters not yet confirmed.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }

    /// Waits until every registered dead letter is confirmed; returns how
    /// many could not be stored (0 means the batch may be committed).
    pub async fn wait(&self) -> usize {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.pending() == 0 {
                return self.failed.load(Ordering::SeqCst);
            }
            notified.await;
        }
    }
}

/// The batch dead letters currently belong to.
#[derive(Debug)]
struct Batch {
    tracker: Arc<BatchTracker>,
    /// For an ordered batch, its dead letters until [`DlqRoute::flush_batch`].
    buffer: Option<Vec<Buffered>>,
}

#[derive(Debug)]
struct Buffered {
    origin_offset: u64,
    from_runtime: bool,
    /// Failure stage and code, counted when the letter is queued.
    reason: (i32, i32),
    letter: DeadLetter,
}

/// How a route checks what it is given.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// The connector's key.
    pub connector_key: String,
    /// The DLQ topic's maximum message size in bytes.
    pub max_message_size: usize,
    /// What to do with a payload that does not fit.
    pub payload_policy: PayloadPolicy,
    /// How long a submit may wait for room in a full queue before it
    /// reports [`DlqStatus::Unavailable`]; `None` waits as long as it takes.
    pub enqueue_timeout: Option<Duration>,
    /// This runtime's id, stamped into envelopes that lack it.
    pub runtime_instance_id: String,
}

/// The DLQ entry of one connector.
#[derive(Debug)]
pub struct DlqRoute {
    config: RouteConfig,
    tx: flume::Sender<DeadLetter>,
    current: Mutex<Option<Batch>>,
    metrics: Arc<ConnectorMetrics>,
    closed: AtomicBool,
}

impl DlqRoute {
    /// A route feeding `tx` (the producer's queue).
    pub fn new(
        config: RouteConfig,
        tx: flume::Sender<DeadLetter>,
        metrics: &Registry,
    ) -> Arc<Self> {
        let metrics = metrics.connector(&config.connector_key);
        Arc::new(DlqRoute {
            config,
            tx,
            current: Mutex::new(None),
            metrics,
            closed: AtomicBool::new(false),
        })
    }

    /// The connector's key.
    pub fn connector_key(&self) -> &str {
        &self.config.connector_key
    }

    /// Starts a new batch: dead letters submitted from now on belong to the
    /// returned tracker and are queued at once. Returns the previous batch's
    /// tracker, if any.
    pub fn begin_batch(&self) -> (Arc<BatchTracker>, Option<Arc<BatchTracker>>) {
        self.replace_batch(false)
    }

    /// Starts a new ordered batch: its dead letters, from the runtime and
    /// from the plugin, are held until [`flush_batch`](Self::flush_batch),
    /// which queues them in origin offset order, so that the DLQ keeps the
    /// origin partition's order whichever side found the failure.
    pub fn begin_ordered_batch(&self) -> Arc<BatchTracker> {
        self.replace_batch(true).0
    }

    fn replace_batch(&self, ordered: bool) -> (Arc<BatchTracker>, Option<Arc<BatchTracker>>) {
        let tracker = BatchTracker::new();
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let previous = current.replace(Batch {
            tracker: tracker.clone(),
            buffer: ordered.then(Vec::new),
        });
        (tracker, previous.map(|b| b.tracker))
    }

    /// Drops the dead letters the plugin sent during a failed attempt of the
    /// ordered batch: the next attempt, or the runtime's dead-lettering of
    /// the whole batch, replaces them, and the DLQ gets no duplicates.
    pub fn discard_plugin_letters(&self) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(buffer) = current.as_mut().and_then(|b| b.buffer.as_mut()) {
            buffer.retain(|b| {
                if b.from_runtime {
                    return true;
                }
                if let Some(tracker) = &b.letter.tracker {
                    tracker.discard();
                }
                false
            });
        }
    }

    /// Queues the ordered batch's dead letters in origin offset order,
    /// waiting for room in the queue (back-pressure).
    ///
    /// # Errors
    ///
    /// [`DlqStatus::ShuttingDown`] when the producer is gone; the dead
    /// letters not queued count as not stored.
    pub async fn flush_batch(&self) -> Result<(), DlqStatus> {
        let buffered = {
            let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
            current.as_mut().and_then(|b| b.buffer.take())
        };
        let Some(mut buffered) = buffered else {
            return Ok(());
        };
        // Stable: letters of one message keep the order they came in.
        buffered.sort_by_key(|b| b.origin_offset);
        let mut result = Ok(());
        for b in buffered {
            let tracker = b.letter.tracker.clone();
            if result.is_ok() && self.tx.send_async(b.letter).await.is_ok() {
                // Counted here, not at submit: a failed attempt's letters
                // are discarded before they get this far.
                self.metrics.count_dead_letter(b.reason.0, b.reason.1);
                continue;
            }
            result = Err(DlqStatus::ShuttingDown);
            if let Some(tracker) = tracker {
                tracker.confirm(false);
            }
        }
        result
    }

    /// Refuses further dead letters ([`DlqStatus::ShuttingDown`]).
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// Takes one encoded envelope from the plugin: decodes and validates
    /// it, fits it to the maximum message size, and queues it, waiting for
    /// room when the queue is full.
    pub fn submit(&self, bytes: &[u8]) -> DlqStatus {
        if self.closed.load(Ordering::SeqCst) {
            return DlqStatus::ShuttingDown;
        }
        let input = Bytes::copy_from_slice(bytes);
        let mut envelope = match Decoder::new().decode(input.clone()) {
            Ok(envelope) => envelope,
            Err(error) => {
                ConnectorMetrics::add(&self.metrics.dlq_refused, 1);
                tracing::warn!(connector = %self.config.connector_key, %error, "refused an invalid dead-letter envelope");
                return DlqStatus::InvalidEnvelope;
            }
        };
        // The runtime, not the plugin, knows which connector and runtime
        // instance this is.
        let connector = envelope.connector.as_mut().expect("validated");
        if connector.key != self.config.connector_key
            || connector.runtime_instance_id != self.config.runtime_instance_id
        {
            connector.key.clone_from(&self.config.connector_key);
            connector
                .runtime_instance_id
                .clone_from(&self.config.runtime_instance_id);
            return self.enqueue(envelope, None, false);
        }
        self.enqueue(envelope, Some(input), false)
    }

    /// Queues an envelope built by the runtime itself (for messages it could
    /// not hand to the plugin, or a batch the plugin failed as a whole).
    /// `encoded` is the envelope's encoding when the caller has it.
    pub fn submit_envelope(&self, envelope: DlqEnvelope, encoded: Option<Bytes>) -> DlqStatus {
        self.enqueue(envelope, encoded, true)
    }

    fn enqueue(
        &self,
        envelope: DlqEnvelope,
        encoded: Option<Bytes>,
        from_runtime: bool,
    ) -> DlqStatus {
        if self.closed.load(Ordering::SeqCst) {
            return DlqStatus::ShuttingDown;
        }
        let fits = encoded
            .as_ref()
            .is_some_and(|b| b.len() <= self.config.max_message_size);
        let (envelope, bytes) = if fits {
            let bytes = encoded.expect("checked above");
            (envelope, bytes)
        } else {
            match envelope.fit_to(self.config.max_message_size, self.config.payload_policy) {
                Ok(fitted) => {
                    let bytes = fitted.encode_to_bytes();
                    (fitted, bytes)
                }
                Err(error @ EnvelopeError::DoesNotFit { .. }) => {
                    ConnectorMetrics::add(&self.metrics.dlq_refused, 1);
                    tracing::warn!(connector = %self.config.connector_key, %error, "refused a dead letter that does not fit the DLQ");
                    return DlqStatus::TooLarge;
                }
                Err(error) => {
                    ConnectorMetrics::add(&self.metrics.dlq_refused, 1);
                    tracing::warn!(connector = %self.config.connector_key, %error, "refused a dead letter");
                    return DlqStatus::InvalidEnvelope;
                }
            }
        };
        let (stage, code) = envelope
            .failure
            .as_ref()
            .map_or((0, 0), |f| (f.stage, f.code));
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let tracker = current.as_ref().map(|b| b.tracker.clone());
        if let Some(tracker) = &tracker {
            tracker.add();
        }
        let letter = DeadLetter {
            bytes,
            partition_key: partition_key(&envelope),
            tracker: tracker.clone(),
        };
        if let Some(buffer) = current.as_mut().and_then(|b| b.buffer.as_mut()) {
            buffer.push(Buffered {
                origin_offset: envelope.sink_origin().map_or(u64::MAX, |o| o.offset),
                from_runtime,
                reason: (stage, code),
                letter,
            });
            return DlqStatus::Accepted;
        }
        drop(current);
        let sent = match self.config.enqueue_timeout {
            None => self.tx.send(letter).map_err(|_| DlqStatus::ShuttingDown),
            Some(timeout) => self.tx.send_timeout(letter, timeout).map_err(|e| match e {
                flume::SendTimeoutError::Timeout(_) => DlqStatus::Unavailable,
                flume::SendTimeoutError::Disconnected(_) => DlqStatus::ShuttingDown,
            }),
        };
        match sent {
            Ok(()) => {
                self.metrics.count_dead_letter(stage, code);
                DlqStatus::Accepted
            }
            Err(status) => {
                if let Some(tracker) = tracker {
                    // Not queued: nothing will confirm it, and it is not
                    // stored, so the batch must not be committed.
                    tracker.confirm(false);
                }
                status
            }
        }
    }
}

/// The ordering key of a dead letter: its origin partition, so that dead
/// letters of one origin partition keep their order in the DLQ.
pub(crate) fn partition_key(envelope: &DlqEnvelope) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    match &envelope.origin {
        Some(Origin::Sink(o)) => (0u8, &o.stream, &o.topic, o.partition_id).hash(&mut hasher),
        Some(Origin::Source(o)) => (1u8, &o.system, &o.resource).hash(&mut hasher),
        None => 2u8.hash(&mut hasher),
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use iggy_dlq_envelope::{
        Connector, ErrorCode, Failure, FailureStage, PayloadSchema, SinkOrigin,
    };

    fn envelope(payload: usize) -> DlqEnvelope {
        DlqEnvelope::for_sink(SinkOrigin::new("s", "t", 1, 7, 9))
            .payload(Bytes::from(vec![b'x'; payload]), PayloadSchema::Raw)
            .failure(Failure::new(
                FailureStage::ConnectorProcess,
                ErrorCode::Other,
                "bad",
            ))
            .connector(Connector::sink("k", "n", "1"))
            .build()
            .unwrap()
    }

    fn route(
        capacity: usize,
        timeout: Option<Duration>,
    ) -> (Arc<DlqRoute>, flume::Receiver<DeadLetter>) {
        let (tx, rx) = flume::bounded(capacity);
        let config = RouteConfig {
            connector_key: "k".into(),
            max_message_size: 1024,
            payload_policy: PayloadPolicy::Truncate,
            enqueue_timeout: timeout,
            runtime_instance_id: "runtime-1".into(),
        };
        (DlqRoute::new(config, tx, &Registry::default()), rx)
    }

    #[test]
    fn garbage_is_refused_as_invalid_and_nothing_is_queued() {
        let (route, rx) = route(4, None);
        assert_eq!(
            route.submit(b"\xff\xff garbage"),
            DlqStatus::InvalidEnvelope
        );
        assert!(rx.is_empty());
    }

    #[test]
    fn an_oversized_envelope_is_cut_to_fit_and_marked() {
        let (route, rx) = route(4, None);
        let bytes = envelope(10_000).encode_to_bytes();
        assert_eq!(route.submit(&bytes), DlqStatus::Accepted);
        let letter = rx.try_recv().unwrap();
        assert!(letter.bytes.len() <= 1024);
        let decoded = iggy_dlq_envelope::decode(letter.bytes).unwrap();
        assert!(decoded.payload_integrity.unwrap().truncated);
    }

    #[test]
    fn a_full_queue_blocks_then_times_out_without_dropping_silently() {
        let (route, rx) = route(1, Some(Duration::from_millis(50)));
        let (tracker, _) = route.begin_batch();
        let bytes = envelope(10).encode_to_bytes();
        assert_eq!(route.submit(&bytes), DlqStatus::Accepted);
        assert_eq!(route.submit(&bytes), DlqStatus::Unavailable);
        // The refused one is counted as not stored: the batch is not
        // committable.
        assert_eq!(tracker.pending(), 1);
        rx.try_recv().unwrap().tracker.unwrap().confirm(true);
        assert_eq!(tracker.pending(), 0);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(tracker.wait()), 1);
    }

    fn at_offset(offset: u64) -> DlqEnvelope {
        DlqEnvelope::for_sink(SinkOrigin::new("s", "t", 1, offset, 9))
            .payload(Bytes::from_static(b"x"), PayloadSchema::Raw)
            .failure(Failure::new(
                FailureStage::ConnectorProcess,
                ErrorCode::Other,
                "bad",
            ))
            .connector(Connector::sink("k", "n", "1"))
            .build()
            .unwrap()
    }

    fn offset_of(letter: &DeadLetter) -> u64 {
        iggy_dlq_envelope::decode(letter.bytes.clone())
            .unwrap()
            .sink_origin()
            .unwrap()
            .offset
    }

    #[tokio::test]
    async fn an_ordered_batch_queues_in_origin_order_and_drops_failed_attempts() {
        let (route, rx) = route(16, None);
        let tracker = route.begin_ordered_batch();
        // The runtime finds offset 5, the plugin 2 and 9 on a failed attempt...
        assert_eq!(
            route.submit_envelope(at_offset(5), None),
            DlqStatus::Accepted
        );
        assert_eq!(
            route.submit(&at_offset(9).encode_to_bytes()),
            DlqStatus::Accepted
        );
        assert_eq!(
            route.submit(&at_offset(2).encode_to_bytes()),
            DlqStatus::Accepted
        );
        route.discard_plugin_letters();
        // ... and 7 and 3 on the attempt that succeeds.
        assert_eq!(
            route.submit(&at_offset(7).encode_to_bytes()),
            DlqStatus::Accepted
        );
        assert_eq!(
            route.submit(&at_offset(3).encode_to_bytes()),
            DlqStatus::Accepted
        );
        assert!(rx.is_empty(), "nothing is queued before the flush");
        route.flush_batch().await.unwrap();
        let offsets: Vec<u64> = rx.drain().map(|l| offset_of(&l)).collect();
        assert_eq!(offsets, vec![3, 5, 7]);
        assert_eq!((tracker.total(), tracker.pending()), (3, 3));
        // The discarded attempt's letters are not counted as dead letters.
        assert_eq!(ConnectorMetrics::get(&route.metrics.dead_lettered), 3);
    }

    #[test]
    fn after_close_submits_are_refused() {
        let (route, _rx) = route(4, None);
        route.close();
        assert_eq!(
            route.submit(&envelope(1).encode_to_bytes()),
            DlqStatus::ShuttingDown
        );
    }

    #[test]
    fn a_full_queue_applies_back_pressure_until_there_is_room() {
        let (route, rx) = route(1, None);
        let bytes = envelope(10).encode_to_bytes();
        assert_eq!(route.submit(&bytes), DlqStatus::Accepted);
        let route2 = route.clone();
        let b2 = bytes.clone();
        let blocked = std::thread::spawn(move || route2.submit(&b2));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!blocked.is_finished(), "second submit must wait for room");
        rx.recv().unwrap();
        assert_eq!(blocked.join().unwrap(), DlqStatus::Accepted);
        assert_eq!(rx.len(), 1);
    }
}
