//! The DLQ producer: one task per DLQ that batches dead letters, sends them
//! to Iggy with retries, spools them to disk while Iggy is unreachable and
//! drains the spool, in order, when it is back.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::file::{DlqFileWriter, Spool};
use super::route::{DeadLetter, partition_key};
use crate::metrics::ConnectorMetrics;

/// Why a send to the DLQ topic failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(pub String);

/// Where the producer sends dead letters when it is not spooling: the Iggy
/// DLQ topic in production, a fake in tests.
pub trait DlqTransport: Send + Sync + 'static {
    /// Sends `batch` (ordering key, message bytes) and resolves once the
    /// server acknowledged every message. Messages with the same key must
    /// keep their order.
    fn send<'a>(
        &'a mut self,
        batch: &'a [(u64, Bytes)],
    ) -> Pin<Box<dyn Future<Output = Result<(), TransportError>> + Send + 'a>>;

    /// Where it sends, for logs (no credentials).
    fn describe(&self) -> String;
}

/// How the producer batches and retries.
#[derive(Debug, Clone)]
pub struct DlqProducerConfig {
    /// The most dead letters in one send.
    pub batch_length: usize,
    /// How long to wait for more dead letters before sending a batch.
    pub linger: Duration,
    /// Retries of a failed send before the batch goes to the spool.
    pub max_retries: u32,
    /// Backoff before the first retry; doubles for each further one.
    pub retry_backoff: Duration,
    /// How often to try draining the spool while Iggy is unreachable.
    pub drain_interval: Duration,
    /// Capacity of the queue between the plugin and the producer; a full
    /// queue blocks the plugin (back-pressure).
    pub queue_capacity: usize,
}

impl Default for DlqProducerConfig {
    fn default() -> Self {
        DlqProducerConfig {
            batch_length: 1000,
            linger: Duration::from_millis(5),
            max_retries: 3,
            retry_backoff: Duration::from_millis(100),
            drain_interval: Duration::from_secs(1),
            queue_capacity: 10_000,
        }
    }
}

/// Where a producer puts dead letters.
pub enum Destination {
    /// The embedded file target: appended and synced, nothing else.
    File(DlqFileWriter),
    /// An Iggy topic, with a spool for outages.
    Iggy {
        /// The connection to the DLQ topic.
        transport: Box<dyn DlqTransport>,
        /// The outage spool.
        spool: Spool,
    },
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::File(w) => write!(f, "File({})", w.path().display()),
            Destination::Iggy { transport, .. } => write!(f, "Iggy({})", transport.describe()),
        }
    }
}

/// What a producer did, reported when it stops.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerReport {
    /// Dead letters acknowledged by Iggy or synced to the file target.
    pub confirmed: u64,
    /// Dead letters written to the spool.
    pub spooled: u64,
    /// Dead letters drained from the spool to Iggy.
    pub drained: u64,
    /// Dead letters that could not be stored anywhere.
    pub failed: u64,
    /// Bytes left in the spool, to drain at the next start.
    pub spool_pending_bytes: u64,
}

/// A running DLQ producer.
#[derive(Debug)]
pub struct DlqProducer {
    tx: flume::Sender<DeadLetter>,
    stop: watch::Sender<bool>,
    task: JoinHandle<ProducerReport>,
}

impl DlqProducer {
    /// Starts a producer on the current Tokio runtime.
    pub fn start(
        destination: Destination,
        config: DlqProducerConfig,
        metrics: Arc<ConnectorMetrics>,
    ) -> Self {
        let (tx, rx) = flume::bounded(config.queue_capacity.max(1));
        let (stop, stop_rx) = watch::channel(false);
        let worker = Worker {
            destination,
            config,
            metrics,
            report: ProducerReport::default(),
        };
        let task = tokio::spawn(worker.run(rx, stop_rx));
        DlqProducer { tx, stop, task }
    }

    /// The queue the routes feed.
    pub fn sender(&self) -> flume::Sender<DeadLetter> {
        self.tx.clone()
    }

    /// Delivers everything queued, tries once more to drain the spool, and
    /// stops. What cannot reach Iggy stays in the spool for the next start.
    pub async fn shutdown(self) -> ProducerReport {
        let _ = self.stop.send(true);
        drop(self.tx);
        self.task.await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "dlq producer task failed");
            ProducerReport::default()
        })
    }
}

struct Worker {
    destination: Destination,
    config: DlqProducerConfig,
    metrics: Arc<ConnectorMetrics>,
    report: ProducerReport,
}

impl Worker {
    async fn run(
        mut self,
        rx: flume::Receiver<DeadLetter>,
        mut stop: watch::Receiver<bool>,
    ) -> ProducerReport {
        let mut drain_tick = tokio::time::interval(self.config.drain_interval);
        drain_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.drain().await;
        loop {
            let spooling = self.spool_pending();
            let first = tokio::select! {
                biased;
                _ = drain_tick.tick(), if spooling => {
                    self.drain().await;
                    continue;
                }
                _ = stop.changed() => None,
                item = rx.recv_async() => item.ok(),
            };
            let Some(first) = first else { break };
            let batch = self.gather(first, &rx).await;
            self.deliver(batch).await;
        }
        // Stopping: deliver what is still queued, then one last drain.
        loop {
            let batch: Vec<_> = rx.drain().take(self.config.batch_length).collect();
            if batch.is_empty() {
                break;
            }
            self.deliver(batch).await;
        }
        self.drain().await;
        if let Destination::Iggy { spool, .. } = &self.destination {
            self.report.spool_pending_bytes = spool.pending_bytes();
            if !spool.is_drained() {
                tracing::warn!(
                    pending_bytes = spool.pending_bytes(),
                    "dead letters remain in the spool; they are sent at the next start"
                );
            }
        }
        self.report
    }

    fn spool_pending(&self) -> bool {
        matches!(&self.destination, Destination::Iggy { spool, .. } if !spool.is_drained())
    }

    async fn gather(&self, first: DeadLetter, rx: &flume::Receiver<DeadLetter>) -> Vec<DeadLetter> {
        let mut batch = vec![first];
        let deadline = Instant::now() + self.config.linger;
        while batch.len() < self.config.batch_length {
            match rx.try_recv() {
                Ok(letter) => batch.push(letter),
                Err(flume::TryRecvError::Disconnected) => break,
                Err(flume::TryRecvError::Empty) => {
                    match tokio::time::timeout_at(deadline, rx.recv_async()).await {
                        Ok(Ok(letter)) => batch.push(letter),
                        _ => break,
                    }
                }
            }
        }
        batch
    }

    async fn deliver(&mut self, batch: Vec<DeadLetter>) {
        let n = batch.len() as u64;
        let durable = match &mut self.destination {
            Destination::File(writer) => match writer.append(batch.iter().map(|l| &l.bytes[..])) {
                Ok(()) => {
                    self.report.confirmed += n;
                    ConnectorMetrics::add(&self.metrics.dlq_confirmed, n);
                    true
                }
                Err(error) => {
                    tracing::error!(%error, "cannot write dead letters to the DLQ file");
                    false
                }
            },
            Destination::Iggy { transport, spool } => {
                let mut sent = false;
                if spool.is_drained() {
                    let messages: Vec<(u64, Bytes)> = batch
                        .iter()
                        .map(|l| (l.partition_key, l.bytes.clone()))
                        .collect();
                    let mut backoff = self.config.retry_backoff;
                    for attempt in 0..=self.config.max_retries {
                        match transport.send(&messages).await {
                            Ok(()) => {
                                sent = true;
                                break;
                            }
                            Err(error) if attempt < self.config.max_retries => {
                                ConnectorMetrics::add(&self.metrics.dlq_send_retries, 1);
                                tracing::debug!(%error, attempt, "dlq send failed, retrying");
                                tokio::time::sleep(backoff).await;
                                backoff = backoff.saturating_mul(2);
                            }
                            Err(error) => {
                                tracing::warn!(
                                    %error,
                                    target = %transport.describe(),
                                    "DLQ topic unreachable; spooling dead letters to {}",
                                    spool.path().display()
                                );
                            }
                        }
                    }
                }
                if sent {
                    self.report.confirmed += n;
                    ConnectorMetrics::add(&self.metrics.dlq_confirmed, n);
                    true
                } else {
                    match spool.append(batch.iter().map(|l| &l.bytes[..])) {
                        Ok(()) => {
                            self.report.spooled += n;
                            ConnectorMetrics::add(&self.metrics.spooled, n);
                            true
                        }
                        Err(error) => {
                            tracing::error!(%error, "cannot spool dead letters");
                            false
                        }
                    }
                }
            }
        };
        if !durable {
            self.report.failed += n;
        }
        for letter in batch {
            if let Some(tracker) = letter.tracker {
                tracker.confirm(durable);
            }
        }
    }

    /// Drains the spool while Iggy takes it, for at most a short while so
    /// that new dead letters are not held up for long.
    async fn drain(&mut self) {
        let Destination::Iggy { transport, spool } = &mut self.destination else {
            return;
        };
        let started = Instant::now();
        while !spool.is_drained() && started.elapsed() < Duration::from_millis(500) {
            let (records, cursor) = match spool.peek(self.config.batch_length) {
                Ok(next) => next,
                Err(error) => {
                    tracing::error!(%error, "cannot read the DLQ spool");
                    return;
                }
            };
            if records.is_empty() {
                // Only a torn tail is left; nothing to send.
                let _ = spool.advance(cursor);
                return;
            }
            let messages: Vec<(u64, Bytes)> = records
                .into_iter()
                .map(|bytes| {
                    let key = iggy_dlq_envelope::Decoder::new()
                        .validate(false)
                        .decode(bytes.clone())
                        .map(|e| partition_key(&e))
                        .unwrap_or_default();
                    (key, bytes)
                })
                .collect();
            if let Err(error) = transport.send(&messages).await {
                tracing::debug!(%error, "DLQ topic still unreachable; the spool waits");
                return;
            }
            let n = messages.len() as u64;
            if let Err(error) = spool.advance(cursor) {
                tracing::error!(%error, "cannot record the spool's drain position");
                return;
            }
            self.report.drained += n;
            ConnectorMetrics::add(&self.metrics.drained, n);
            ConnectorMetrics::add(&self.metrics.dlq_confirmed, n);
            if spool.is_drained() {
                tracing::info!(drained = self.report.drained, "DLQ spool drained to Iggy");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dlq::route::BatchTracker;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A DLQ topic that can be taken down and brought back.
    #[derive(Clone, Default)]
    struct FakeTopic {
        up: Arc<AtomicBool>,
        received: Arc<Mutex<Vec<Bytes>>>,
    }

    impl DlqTransport for FakeTopic {
        fn send<'a>(
            &'a mut self,
            batch: &'a [(u64, Bytes)],
        ) -> Pin<Box<dyn Future<Output = Result<(), TransportError>> + Send + 'a>> {
            Box::pin(async move {
                if !self.up.load(Ordering::SeqCst) {
                    return Err(TransportError("connection refused".into()));
                }
                self.received
                    .lock()
                    .unwrap()
                    .extend(batch.iter().map(|(_, b)| b.clone()));
                Ok(())
            })
        }

        fn describe(&self) -> String {
            "fake".into()
        }
    }

    fn config() -> DlqProducerConfig {
        DlqProducerConfig {
            batch_length: 3,
            linger: Duration::from_millis(1),
            max_retries: 1,
            retry_backoff: Duration::from_millis(1),
            drain_interval: Duration::from_millis(10),
            queue_capacity: 16,
        }
    }

    fn letter(i: u32, tracker: &Arc<BatchTracker>) -> DeadLetter {
        tracker.add();
        DeadLetter {
            bytes: Bytes::from(format!("dead letter {i:03}")),
            partition_key: 0,
            tracker: Some(tracker.clone()),
        }
    }

    #[tokio::test]
    async fn an_outage_spools_and_the_spool_drains_in_order_when_iggy_is_back() {
        let dir = tempfile::tempdir().unwrap();
        let (spool, _) = Spool::open(dir.path().join("d.spool")).unwrap();
        let topic = FakeTopic::default();
        topic.up.store(true, Ordering::SeqCst);
        let producer = DlqProducer::start(
            Destination::Iggy {
                transport: Box::new(topic.clone()),
                spool,
            },
            config(),
            Arc::default(),
        );
        let tx = producer.sender();
        let tracker = BatchTracker::new();
        for i in 0..5 {
            tx.send_async(letter(i, &tracker)).await.unwrap();
        }
        assert_eq!(tracker.wait().await, 0);

        topic.up.store(false, Ordering::SeqCst);
        let during = BatchTracker::new();
        for i in 5..15 {
            tx.send_async(letter(i, &during)).await.unwrap();
        }
        // Confirmed while Iggy is down: they are durable in the spool.
        assert_eq!(during.wait().await, 0);
        assert_eq!(topic.received.lock().unwrap().len(), 5);

        topic.up.store(true, Ordering::SeqCst);
        let after = BatchTracker::new();
        for i in 15..20 {
            tx.send_async(letter(i, &after)).await.unwrap();
        }
        assert_eq!(after.wait().await, 0);
        let report = producer.shutdown().await;
        let received = topic.received.lock().unwrap().clone();
        let expected: Vec<Bytes> = (0..20)
            .map(|i| Bytes::from(format!("dead letter {i:03}")))
            .collect();
        assert_eq!(received, expected, "every dead letter, once, in order");
        // Everything sent during the outage was spooled, and so was what
        // came after it until the spool was drained: order comes first.
        assert!(report.spooled >= 10, "{report:?}");
        assert_eq!(report.drained, report.spooled);
        assert_eq!(report.spool_pending_bytes, 0);
    }

    #[tokio::test]
    async fn a_spool_left_by_a_stopped_producer_drains_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.spool");
        let topic = FakeTopic::default();
        {
            let (spool, _) = Spool::open(&path).unwrap();
            let producer = DlqProducer::start(
                Destination::Iggy {
                    transport: Box::new(topic.clone()),
                    spool,
                },
                config(),
                Arc::default(),
            );
            let tracker = BatchTracker::new();
            for i in 0..4 {
                producer
                    .sender()
                    .send_async(letter(i, &tracker))
                    .await
                    .unwrap();
            }
            assert_eq!(tracker.wait().await, 0);
            let report = producer.shutdown().await;
            assert_eq!(report.spooled, 4);
            assert!(report.spool_pending_bytes > 0);
        }
        topic.up.store(true, Ordering::SeqCst);
        let (spool, recovery) = Spool::open(&path).unwrap();
        assert_eq!(recovery.records, 4);
        let producer = DlqProducer::start(
            Destination::Iggy {
                transport: Box::new(topic.clone()),
                spool,
            },
            config(),
            Arc::default(),
        );
        let report = producer.shutdown().await;
        assert_eq!(report.drained, 4);
        assert_eq!(topic.received.lock().unwrap().len(), 4);
    }

    #[tokio::test]
    async fn the_file_target_confirms_after_sync() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.dlq");
        let (writer, _) = DlqFileWriter::open(&path).unwrap();
        let producer = DlqProducer::start(Destination::File(writer), config(), Arc::default());
        let tracker = BatchTracker::new();
        for i in 0..7 {
            producer
                .sender()
                .send_async(letter(i, &tracker))
                .await
                .unwrap();
        }
        assert_eq!(tracker.wait().await, 0);
        let (records, _) = super::super::read_records(&path, 0, 100).unwrap();
        assert_eq!(records.len(), 7);
        assert_eq!(producer.shutdown().await.confirmed, 7);
    }
}
