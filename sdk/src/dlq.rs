//! [`DlqWriter`]: how a connector dead-letters a message.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use bytes::Bytes;
use iggy_dlq_envelope::{
    Connector, DlqEnvelope, ErrorCode, Failure, FailureStage, SinkOrigin, SourceOrigin,
};

use crate::abi::{
    DlqCallback, MessagesMetadata, RawMessage, Schema, TopicMetadata, UserHeaders, envelope_header,
};
use crate::{Error, Result, ffi};

/// Where a connector's dead letters go: one per connector instance, handed to
/// [`Sink::consume`](crate::Sink::consume) and
/// [`Source::poll`](crate::Source::poll).
///
/// Each `send*` builds a [`DlqEnvelope`] (payload exactly as received,
/// headers with their kinds, origin, failure, connector identity), encodes it
/// and hands it to the runtime's [`DlqCallback`], which returns once the
/// runtime took it or refused it. Nothing happens, and nothing is allocated or
/// locked, until a message actually fails.
///
/// Without a DLQ (the runtime never called `iggy_*_set_dlq_callback`, or it
/// does not know DLQs), every send returns [`Error::NotConfigured`]: the
/// loss is counted in [`lost_count`](Self::lost_count) and logged once per
/// instance. After the connector is closed every send returns
/// [`Error::Closed`] and the callback is never called again.
///
/// Cheap to clone; clones share the callback and the counters.
#[derive(Debug, Clone)]
pub struct DlqWriter {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    plugin_id: u32,
    connector: Connector,
    callback: RwLock<Slot>,
    batch_schema: AtomicU8,
    sent: AtomicU64,
    lost: AtomicU64,
    warned_not_configured: AtomicBool,
}

#[derive(Debug, Clone, Copy)]
enum Slot {
    Unset,
    Set(DlqCallback),
    Closed,
}

/// Something that says why a message failed: a [`Failure`] as is, or a
/// reason (`&str`, `String`) that becomes a failure at the caller's default
/// stage with [`ErrorCode::Other`].
pub trait IntoFailure {
    /// The failure, with `stage` where the value does not say.
    fn into_failure(self, stage: FailureStage) -> Failure;
}

impl IntoFailure for Failure {
    fn into_failure(self, _stage: FailureStage) -> Failure {
        self
    }
}

impl IntoFailure for String {
    fn into_failure(self, stage: FailureStage) -> Failure {
        Failure::new(stage, ErrorCode::Other, self)
    }
}

impl IntoFailure for &str {
    fn into_failure(self, stage: FailureStage) -> Failure {
        Failure::new(stage, ErrorCode::Other, self)
    }
}

/// What [`DlqWriter::partition`] made of a batch.
#[derive(Debug)]
#[must_use = "the successes still have to be written to the target"]
pub struct Partitioned<T> {
    /// What the function returned for each message it accepted, in order.
    pub succeeded: Vec<T>,
    /// How many failed messages the DLQ took.
    pub dead_lettered: usize,
    /// Failed messages the DLQ did not take: their offset and why.
    pub undelivered: Vec<(u64, Error)>,
}

impl<T> Partitioned<T> {
    /// How many messages failed, whether or not the DLQ took them.
    pub fn failed(&self) -> usize {
        self.dead_lettered + self.undelivered.len()
    }
}

impl DlqWriter {
    pub(crate) fn new(plugin_id: u32, connector: Connector) -> Self {
        DlqWriter {
            shared: Arc::new(Shared {
                plugin_id,
                connector,
                callback: RwLock::new(Slot::Unset),
                batch_schema: AtomicU8::new(Schema::Json.to_u8()),
                sent: AtomicU64::new(0),
                lost: AtomicU64::new(0),
                warned_not_configured: AtomicBool::new(false),
            }),
        }
    }

    /// A writer that is not wired to any runtime, for a connector's unit
    /// tests: every send returns [`Error::NotConfigured`].
    pub fn unconfigured(plugin_id: u32, connector: Connector) -> Self {
        DlqWriter::new(plugin_id, connector)
    }

    /// A writer wired to `callback`, for a connector's unit tests and for
    /// hosts that drive a connector in-process.
    pub fn with_callback(plugin_id: u32, connector: Connector, callback: DlqCallback) -> Self {
        let writer = DlqWriter::new(plugin_id, connector);
        writer.set_callback(callback);
        writer
    }

    /// Wires the callback; `false` when the writer is already closed.
    pub(crate) fn set_callback(&self, callback: DlqCallback) -> bool {
        let mut slot = self
            .shared
            .callback
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if matches!(*slot, Slot::Closed) {
            return false;
        }
        *slot = Slot::Set(callback);
        true
    }

    /// Forgets the callback for good; waits for sends in progress.
    pub(crate) fn close(&self) {
        *self
            .shared
            .callback
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Slot::Closed;
    }

    /// Records the schema of the batch being consumed, the one `send` puts
    /// in the envelope.
    pub(crate) fn begin_batch(&self, schema: Schema) {
        self.shared
            .batch_schema
            .store(schema.to_u8(), Ordering::Relaxed);
    }

    /// The connector instance id.
    pub fn plugin_id(&self) -> u32 {
        self.shared.plugin_id
    }

    /// The connector identity written into every envelope.
    pub fn connector(&self) -> &Connector {
        &self.shared.connector
    }

    /// Whether a DLQ callback is wired (and the connector not closed).
    pub fn is_configured(&self) -> bool {
        matches!(
            *self
                .shared
                .callback
                .read()
                .unwrap_or_else(PoisonError::into_inner),
            Slot::Set(_)
        )
    }

    /// How many dead letters the runtime accepted.
    pub fn sent_count(&self) -> u64 {
        self.shared.sent.load(Ordering::Relaxed)
    }

    /// How many dead letters did not reach a DLQ, whatever the reason
    /// (not configured, refused, closed).
    pub fn lost_count(&self) -> u64 {
        self.shared.lost.load(Ordering::Relaxed)
    }

    /// Dead-letters a message a sink consumed, failed in the connector with
    /// a human-readable `reason` (stage `ConnectorProcess`, code `Other`).
    /// The payload schema is that of the batch being consumed.
    ///
    /// # Errors
    ///
    /// The runtime's refusal ([`Error::NotConfigured`], [`Error::Unavailable`],
    /// ...), [`Error::Closed`] after close, or [`Error::Envelope`] when the
    /// message does not make a valid envelope (an empty reason, for one).
    pub fn send(
        &self,
        topic: &TopicMetadata,
        partition_id: u32,
        message: &RawMessage,
        reason: impl Into<String>,
    ) -> Result<()> {
        self.send_failure(
            topic,
            partition_id,
            message,
            reason.into().into_failure(FailureStage::ConnectorProcess),
        )
    }

    /// Dead-letters a message a sink consumed, with a structured
    /// [`Failure`] (code, stage, retryable, attempts, detail).
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub fn send_failure(
        &self,
        topic: &TopicMetadata,
        partition_id: u32,
        message: &RawMessage,
        failure: Failure,
    ) -> Result<()> {
        let schema = Schema::from_u8(self.shared.batch_schema.load(Ordering::Relaxed));
        self.deliver(|| self.sink_envelope(topic, partition_id, schema, message, failure))
    }

    /// Dead-letters a record a source could not turn into a message, failed
    /// at `SourceConversion` with `ConversionFailed` and a human-readable
    /// `reason`.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub fn send_record(
        &self,
        origin: SourceOrigin,
        payload: &[u8],
        schema: Schema,
        reason: impl Into<String>,
    ) -> Result<()> {
        let failure = Failure::new(
            FailureStage::SourceConversion,
            ErrorCode::ConversionFailed,
            reason,
        );
        self.send_record_failure(origin, payload, schema, None, failure)
    }

    /// Dead-letters a source record with a structured [`Failure`] and,
    /// optionally, the headers it would have carried.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub fn send_record_failure(
        &self,
        origin: SourceOrigin,
        payload: &[u8],
        schema: Schema,
        headers: Option<&UserHeaders>,
        failure: Failure,
    ) -> Result<()> {
        self.deliver(|| {
            let mut builder = DlqEnvelope::for_source(origin)
                .payload(Bytes::copy_from_slice(payload), schema.into())
                .failure(failure)
                .connector(self.shared.connector.clone());
            if let Some(headers) = headers {
                builder = builder.headers(headers.iter().map(|(k, v)| envelope_header(k, v)));
            }
            Ok(builder.build()?)
        })
    }

    /// Dead-letters an envelope the connector built itself. The connector
    /// identity is filled in when the envelope has none.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub fn send_envelope(&self, mut envelope: DlqEnvelope) -> Result<()> {
        self.deliver(move || {
            if envelope.connector.is_none() {
                envelope.connector = Some(self.shared.connector.clone());
            }
            envelope
                .validate()
                .map_err(iggy_dlq_envelope::Error::from)?;
            Ok(envelope)
        })
    }

    /// The proposal's pattern in one call: runs `process` over every message
    /// of a sink batch, keeps what it returns for the messages it accepts,
    /// and dead-letters each message it rejects with the reason it gives
    /// (a `&str`, a `String` or a full [`Failure`]; stage
    /// `ConnectorProcess` by default). Write `succeeded` to the target in one
    /// batch write afterwards.
    ///
    /// A failure the DLQ does not take is reported in
    /// [`Partitioned::undelivered`], never silently dropped; the connector
    /// decides whether that fails the batch.
    pub fn partition<T, E, F>(
        &self,
        topic: &TopicMetadata,
        metadata: &MessagesMetadata,
        messages: &[RawMessage],
        mut process: F,
    ) -> Partitioned<T>
    where
        E: IntoFailure,
        F: FnMut(&RawMessage) -> std::result::Result<T, E>,
    {
        self.begin_batch(metadata.schema);
        let mut result = Partitioned {
            succeeded: Vec::with_capacity(messages.len()),
            dead_lettered: 0,
            undelivered: Vec::new(),
        };
        for message in messages {
            match process(message) {
                Ok(value) => result.succeeded.push(value),
                Err(reason) => {
                    let failure = reason.into_failure(FailureStage::ConnectorProcess);
                    match self.send_failure(topic, metadata.partition_id, message, failure) {
                        Ok(()) => result.dead_lettered += 1,
                        Err(err) => result.undelivered.push((message.offset, err)),
                    }
                }
            }
        }
        result
    }

    fn sink_envelope(
        &self,
        topic: &TopicMetadata,
        partition_id: u32,
        schema: Schema,
        message: &RawMessage,
        mut failure: Failure,
    ) -> Result<DlqEnvelope> {
        let mut origin = SinkOrigin::new(
            topic.stream.clone(),
            topic.topic.clone(),
            partition_id,
            message.offset,
            message.id,
        );
        origin.checksum = message.checksum;
        origin.timestamp_micros = message.timestamp;
        origin.origin_timestamp_micros = message.origin_timestamp;
        let mut builder = DlqEnvelope::for_sink(origin)
            .payload(Bytes::copy_from_slice(&message.payload), schema.into());
        match message.user_headers() {
            Ok(headers) => {
                builder = builder.headers(headers.iter().map(|(k, v)| envelope_header(k, v)));
            }
            // The message is still worth keeping; say why its headers are not.
            Err(err) => failure.detail.push(format!("headers dropped: {err}")),
        }
        Ok(builder
            .failure(failure)
            .connector(self.shared.connector.clone())
            .build()?)
    }

    fn deliver(&self, envelope: impl FnOnce() -> Result<DlqEnvelope>) -> Result<()> {
        let result = self.try_deliver(envelope);
        match &result {
            Ok(()) => {
                self.shared.sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(err) => {
                self.shared.lost.fetch_add(1, Ordering::Relaxed);
                if matches!(err, Error::NotConfigured) {
                    if !self
                        .shared
                        .warned_not_configured
                        .swap(true, Ordering::Relaxed)
                    {
                        tracing::warn!(
                            "connector {} ({}) has no dlq configured: failed messages are lost \
                             (counted, logged only once)",
                            self.shared.plugin_id,
                            self.shared.connector.key
                        );
                    }
                } else {
                    tracing::warn!(
                        "connector {}: dead letter not delivered: {err}",
                        self.shared.plugin_id
                    );
                }
            }
        }
        result
    }

    fn try_deliver(&self, envelope: impl FnOnce() -> Result<DlqEnvelope>) -> Result<()> {
        // Held for reading during the call, so close() cannot complete while
        // the callback runs: a closed writer never calls a stale pointer.
        let slot = self
            .shared
            .callback
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let callback = match *slot {
            Slot::Set(callback) => callback,
            Slot::Unset => return Err(Error::NotConfigured),
            Slot::Closed => return Err(Error::Closed),
        };
        let bytes = envelope()?.encode_to_bytes();
        let code = ffi::call_dlq_callback(callback, self.shared.plugin_id, &bytes);
        match Error::from_dlq_code(code) {
            None => Ok(()),
            Some(err) => Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::abi::{HeaderField, HeaderKind};

    static RECEIVED: Mutex<Vec<(u32, Vec<u8>)>> = Mutex::new(Vec::new());

    extern "C" fn record(plugin_id: u32, ptr: *const u8, len: usize) -> i32 {
        // SAFETY: the writer passes a pointer to `len` bytes valid during the call.
        let bytes = unsafe { std::slice::from_raw_parts(ptr, len) }.to_vec();
        RECEIVED.lock().unwrap().push((plugin_id, bytes));
        0
    }

    extern "C" fn unavailable(_: u32, _: *const u8, _: usize) -> i32 {
        5
    }

    fn topic() -> TopicMetadata {
        TopicMetadata {
            stream: "orders".into(),
            topic: "created".into(),
        }
    }

    fn message(offset: u64, payload: &[u8]) -> RawMessage {
        let mut headers = UserHeaders::new();
        headers.insert("tenant".into(), 42u64.into());
        headers.insert(HeaderField::new(HeaderKind::Raw, [1, 2]), true.into());
        RawMessage {
            id: u128::MAX - offset as u128,
            offset,
            checksum: 7,
            timestamp: 1_000,
            origin_timestamp: 900,
            headers: crate::abi::to_bytes("headers", &headers).unwrap(),
            payload: payload.to_vec(),
        }
    }

    #[test]
    fn a_sent_message_decodes_to_what_was_consumed() {
        let writer = DlqWriter::with_callback(901, Connector::sink("k", "n", "1.2.3"), record);
        writer.begin_batch(Schema::Text);
        writer
            .send(&topic(), 3, &message(17, b"\xffnot json"), "bad")
            .unwrap();
        let (id, bytes) = RECEIVED
            .lock()
            .unwrap()
            .iter()
            .find(|(id, _)| *id == 901)
            .cloned()
            .unwrap();
        assert_eq!(id, 901);
        let envelope = iggy_dlq_envelope::decode(bytes).unwrap();
        let origin = envelope.sink_origin().unwrap();
        assert_eq!(
            (origin.stream.as_str(), origin.partition_id, origin.offset),
            ("orders", 3, 17)
        );
        assert_eq!(origin.message_id(), u128::MAX - 17);
        assert_eq!(
            (
                origin.checksum,
                origin.timestamp_micros,
                origin.origin_timestamp_micros
            ),
            (7, 1_000, 900)
        );
        assert_eq!(&envelope.payload[..], b"\xffnot json");
        assert_eq!(
            envelope.payload_schema,
            iggy_dlq_envelope::PayloadSchema::Text as i32
        );
        assert_eq!(envelope.failure.as_ref().unwrap().reason, "bad");
        assert_eq!(envelope.headers.len(), 2);
        let tenant = envelope
            .headers
            .iter()
            .find(|h| h.key.as_ref().unwrap().typed().ok() == Some("tenant".into()))
            .unwrap();
        assert_eq!(
            tenant.value.as_ref().unwrap().typed().unwrap(),
            iggy_dlq_envelope::HeaderValue::Uint64(42)
        );
        assert_eq!(writer.sent_count(), 1);
    }

    #[test]
    fn the_writer_can_be_shared_across_threads() {
        fn shareable<T: Send + Sync + Clone + 'static>() {}
        shareable::<DlqWriter>();
    }

    #[test]
    fn without_a_callback_sends_are_not_configured_and_counted() {
        let writer = DlqWriter::unconfigured(1, Connector::sink("k", "n", "1"));
        for _ in 0..3 {
            assert!(matches!(
                writer.send(&topic(), 1, &message(1, b"x"), "bad"),
                Err(Error::NotConfigured)
            ));
        }
        assert_eq!(writer.lost_count(), 3);
        assert!(!writer.is_configured());
    }

    #[test]
    fn refusals_come_back_typed_and_close_is_final() {
        let writer = DlqWriter::with_callback(2, Connector::sink("k", "n", "1"), unavailable);
        let err = writer
            .send(&topic(), 1, &message(1, b"x"), "bad")
            .unwrap_err();
        assert!(matches!(err, Error::Unavailable) && err.is_retryable());
        writer.close();
        assert!(matches!(
            writer.send(&topic(), 1, &message(1, b"x"), "bad"),
            Err(Error::Closed)
        ));
        assert!(!writer.set_callback(record));
        assert_eq!(writer.lost_count(), 2);
    }

    #[test]
    fn partition_keeps_successes_and_reports_what_was_not_delivered() {
        let writer = DlqWriter::unconfigured(3, Connector::sink("k", "n", "1"));
        let metadata = MessagesMetadata {
            partition_id: 1,
            current_offset: 0,
            schema: Schema::Json,
        };
        let messages: Vec<_> = (0..10)
            .map(|i| message(i, if i % 3 == 0 { b"bad" } else { b"ok" }))
            .collect();
        let result = writer.partition(&topic(), &metadata, &messages, |m| {
            if m.payload == b"ok" {
                Ok(m.offset)
            } else {
                Err("bad payload")
            }
        });
        assert_eq!(result.succeeded, vec![1, 2, 4, 5, 7, 8]);
        assert_eq!(result.dead_lettered, 0);
        assert_eq!(
            result
                .undelivered
                .iter()
                .map(|(o, _)| *o)
                .collect::<Vec<_>>(),
            vec![0, 3, 6, 9]
        );
        assert_eq!(result.failed(), 4);
    }
}
