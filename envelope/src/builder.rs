//! Constructors for envelopes and their parts.

use bytes::Bytes;

use crate::v1::dlq_envelope::Origin;
use crate::{
    Connector, ConnectorKind, DlqEnvelope, ErrorCode, Failure, FailureStage, Header,
    PayloadIntegrity, PayloadSchema, Result, SinkOrigin, SourceOrigin, Uint128, now_micros,
};

impl From<u128> for Uint128 {
    fn from(value: u128) -> Self {
        Uint128 {
            high: (value >> 64) as u64,
            low: value as u64,
        }
    }
}

impl From<Uint128> for u128 {
    fn from(value: Uint128) -> Self {
        (u128::from(value.high) << 64) | u128::from(value.low)
    }
}

impl SinkOrigin {
    /// The origin of the message at `offset` of `partition_id` in
    /// `stream`/`topic`, with Iggy message id `message_id`. The other fields
    /// (ids, checksum, timestamps, consumer group) are public to set.
    pub fn new(
        stream: impl Into<String>,
        topic: impl Into<String>,
        partition_id: u32,
        offset: u64,
        message_id: u128,
    ) -> Self {
        SinkOrigin {
            stream: stream.into(),
            topic: topic.into(),
            partition_id,
            offset,
            message_id: Some(message_id.into()),
            ..Default::default()
        }
    }

    /// The Iggy message id; 0 when missing.
    pub fn message_id(&self) -> u128 {
        self.message_id.map(u128::from).unwrap_or_default()
    }
}

impl SourceOrigin {
    /// The origin of a record at `position` in external `system`, meant for
    /// `target_stream`/`target_topic`. `resource` and `record_key` are
    /// public to set.
    pub fn new(
        system: impl Into<String>,
        position: impl Into<Bytes>,
        target_stream: impl Into<String>,
        target_topic: impl Into<String>,
    ) -> Self {
        SourceOrigin {
            system: system.into(),
            position: position.into(),
            target_stream: target_stream.into(),
            target_topic: target_topic.into(),
            ..Default::default()
        }
    }
}

impl Failure {
    /// A failure at `stage` with `code` and a human-readable `reason`, after
    /// one attempt, not worth retrying. Failure times default to the time the
    /// envelope is built.
    pub fn new(stage: FailureStage, code: ErrorCode, reason: impl Into<String>) -> Self {
        Failure {
            reason: reason.into(),
            code: code as i32,
            stage: stage as i32,
            attempts: 1,
            ..Default::default()
        }
    }

    /// Marks whether trying again later may succeed.
    pub fn retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// Records how many attempts were made (at least 1).
    pub fn with_attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts;
        self
    }

    /// Adds the error chain, outermost error first.
    pub fn with_detail<I, S>(mut self, detail: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.detail.extend(detail.into_iter().map(Into::into));
        self
    }

    /// Records when the first and the last attempt failed.
    pub fn failed_at(mut self, first_micros: u64, last_micros: u64) -> Self {
        self.first_failed_at_micros = first_micros;
        self.last_failed_at_micros = last_micros;
        self
    }

    /// A failure from any error: its `Display` is the reason and its source
    /// chain the detail.
    pub fn from_error(
        stage: FailureStage,
        code: ErrorCode,
        error: &(dyn std::error::Error + 'static),
    ) -> Self {
        let mut detail = Vec::new();
        let mut source = error.source();
        while let Some(cause) = source {
            detail.push(cause.to_string());
            source = cause.source();
        }
        Failure::new(stage, code, error.to_string()).with_detail(detail)
    }
}

impl Connector {
    /// A sink connector's identity.
    pub fn sink(
        key: impl Into<String>,
        name: impl Into<String>,
        plugin_version: impl Into<String>,
    ) -> Self {
        Self::with_kind(ConnectorKind::Sink, key, name, plugin_version)
    }

    /// A source connector's identity.
    pub fn source(
        key: impl Into<String>,
        name: impl Into<String>,
        plugin_version: impl Into<String>,
    ) -> Self {
        Self::with_kind(ConnectorKind::Source, key, name, plugin_version)
    }

    fn with_kind(
        kind: ConnectorKind,
        key: impl Into<String>,
        name: impl Into<String>,
        plugin_version: impl Into<String>,
    ) -> Self {
        Connector {
            key: key.into(),
            name: name.into(),
            kind: kind as i32,
            plugin_version: plugin_version.into(),
            runtime_instance_id: String::new(),
        }
    }

    /// Records the id of the runtime instance hosting the connector.
    pub fn with_runtime_instance_id(mut self, id: impl Into<String>) -> Self {
        self.runtime_instance_id = id.into();
        self
    }
}

impl DlqEnvelope {
    /// Starts an envelope for a message a sink consumed from Iggy.
    pub fn for_sink(origin: SinkOrigin) -> EnvelopeBuilder {
        EnvelopeBuilder::new(Origin::Sink(origin))
    }

    /// Starts an envelope for a record a source could not turn into an Iggy
    /// message.
    pub fn for_source(origin: SourceOrigin) -> EnvelopeBuilder {
        EnvelopeBuilder::new(Origin::Source(origin))
    }

    /// The sink origin, if the message came from an Iggy topic.
    pub fn sink_origin(&self) -> Option<&SinkOrigin> {
        match &self.origin {
            Some(Origin::Sink(origin)) => Some(origin),
            _ => None,
        }
    }

    /// The source origin, if the record came from an external system.
    pub fn source_origin(&self) -> Option<&SourceOrigin> {
        match &self.origin {
            Some(Origin::Source(origin)) => Some(origin),
            _ => None,
        }
    }
}

/// Builds a valid [`DlqEnvelope`]; see [`DlqEnvelope::for_sink`] and
/// [`DlqEnvelope::for_source`].
///
/// [`build`](Self::build) fills what can be derived (payload integrity,
/// write and failure times) and validates the result.
#[derive(Debug, Clone)]
#[must_use = "an envelope builder does nothing until `build` is called"]
pub struct EnvelopeBuilder {
    envelope: DlqEnvelope,
}

impl EnvelopeBuilder {
    fn new(origin: Origin) -> Self {
        EnvelopeBuilder {
            envelope: DlqEnvelope {
                origin: Some(origin),
                ..Default::default()
            },
        }
    }

    /// The payload exactly as received, and its declared schema.
    pub fn payload(mut self, payload: impl Into<Bytes>, schema: PayloadSchema) -> Self {
        self.envelope.payload = payload.into();
        self.envelope.payload_schema = schema as i32;
        self
    }

    /// Adds one header.
    pub fn header(mut self, header: Header) -> Self {
        self.envelope.headers.push(header);
        self
    }

    /// Adds headers, in order.
    pub fn headers(mut self, headers: impl IntoIterator<Item = Header>) -> Self {
        self.envelope.headers.extend(headers);
        self
    }

    /// Why the message failed.
    pub fn failure(mut self, failure: Failure) -> Self {
        self.envelope.failure = Some(failure);
        self
    }

    /// Which connector failed it.
    pub fn connector(mut self, connector: Connector) -> Self {
        self.envelope.connector = Some(connector);
        self
    }

    /// When the envelope was written; defaults to now.
    pub fn written_at_micros(mut self, micros: u64) -> Self {
        self.envelope.written_at_micros = micros;
        self
    }

    /// How many times the message was already replayed from a DLQ. Without
    /// it, [`build`](Self::build) takes the count from the message's
    /// [`REPLAY_COUNT_HEADER`](crate::REPLAY_COUNT_HEADER), if it has one.
    pub fn replay_count(mut self, count: u32) -> Self {
        self.envelope.replay_count = count;
        self
    }

    /// Finishes the envelope: records the payload's length as the original
    /// length (not truncated), defaults the write time to now and the failure
    /// times to the write time, the replay count to the one in the headers,
    /// and validates.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`](crate::Error::Invalid) naming the first broken rule,
    /// such as a missing failure or connector.
    pub fn build(self) -> Result<DlqEnvelope> {
        let mut envelope = self.envelope;
        envelope.payload_integrity = Some(PayloadIntegrity {
            original_length: envelope.payload.len() as u64,
            truncated: false,
            original_sha256: Bytes::new(),
        });
        if envelope.written_at_micros == 0 {
            envelope.written_at_micros = now_micros();
        }
        if envelope.replay_count == 0
            && let Some(count) = envelope.headers.iter().find_map(Header::replay_count)
        {
            envelope.replay_count = count;
        }
        if let Some(failure) = envelope.failure.as_mut() {
            if failure.last_failed_at_micros == 0 {
                failure.last_failed_at_micros = envelope.written_at_micros;
            }
            if failure.first_failed_at_micros == 0 {
                failure.first_failed_at_micros = failure.last_failed_at_micros;
            }
        }
        envelope.validate()?;
        Ok(envelope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Error, ValidationError};

    #[test]
    fn u128_ids_survive_the_two_halves() {
        for id in [
            0,
            1,
            u128::from(u64::MAX),
            u128::from(u64::MAX) + 1,
            u128::MAX,
        ] {
            assert_eq!(u128::from(Uint128::from(id)), id);
        }
    }

    #[test]
    fn build_fills_derived_fields() {
        let envelope = DlqEnvelope::for_sink(SinkOrigin::new("s", "t", 1, 2, 3))
            .payload(Bytes::from_static(b"abc"), PayloadSchema::Raw)
            .failure(Failure::new(
                FailureStage::ConnectorWrite,
                ErrorCode::TargetRejected,
                "rejected",
            ))
            .connector(Connector::sink("k", "n", "1"))
            .written_at_micros(10)
            .build()
            .unwrap();
        let integrity = envelope.payload_integrity.unwrap();
        assert_eq!(integrity.original_length, 3);
        assert!(!integrity.truncated);
        let failure = envelope.failure.unwrap();
        assert_eq!(
            (
                failure.first_failed_at_micros,
                failure.last_failed_at_micros
            ),
            (10, 10)
        );
    }

    #[test]
    fn the_replay_count_comes_from_the_replay_header() {
        use crate::HeaderValue;
        let build = |headers: Vec<Header>, count: Option<u32>| {
            let mut builder = DlqEnvelope::for_sink(SinkOrigin::new("s", "t", 1, 2, 3))
                .payload(Bytes::from_static(b"abc"), PayloadSchema::Raw)
                .headers(headers)
                .failure(Failure::new(
                    FailureStage::ConnectorProcess,
                    ErrorCode::MissingField,
                    "missing",
                ))
                .connector(Connector::sink("k", "n", "1"));
            if let Some(count) = count {
                builder = builder.replay_count(count);
            }
            builder.build().unwrap().replay_count
        };
        let replayed = |value: HeaderValue| Header::new(crate::REPLAY_COUNT_HEADER.into(), value);
        let tenant = Header::new("tenant".into(), HeaderValue::Uint32(7));
        assert_eq!(build(vec![], None), 0);
        assert_eq!(build(vec![tenant.clone()], None), 0);
        assert_eq!(
            build(vec![tenant, replayed(HeaderValue::Uint32(2))], None),
            2
        );
        assert_eq!(
            build(vec![replayed(HeaderValue::Uint32(2))], Some(5)),
            5,
            "an explicit count wins"
        );
        assert_eq!(
            build(vec![replayed(HeaderValue::Uint64(2))], None),
            0,
            "only a uint32 value counts"
        );
        assert_eq!(
            build(
                vec![Header::new(
                    HeaderValue::Raw(Bytes::from_static(crate::REPLAY_COUNT_HEADER.as_bytes())),
                    HeaderValue::Uint32(2)
                )],
                None
            ),
            0,
            "only a string key counts"
        );
    }

    #[test]
    fn build_refuses_an_envelope_without_failure() {
        let err = DlqEnvelope::for_sink(SinkOrigin::new("s", "t", 1, 2, 3))
            .connector(Connector::sink("k", "n", "1"))
            .build()
            .unwrap_err();
        assert!(matches!(
            err,
            Error::Invalid(ValidationError::MissingFailure)
        ));
    }

    #[test]
    fn failure_from_error_keeps_the_chain() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let err = Outer(std::io::Error::other("inner"));
        let failure = Failure::from_error(FailureStage::ConnectorWrite, ErrorCode::Other, &err);
        assert_eq!(failure.reason, "outer");
        assert_eq!(failure.detail, vec!["inner".to_owned()]);
    }
}
