//! The crate's error types.

use crate::HeaderKind;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an envelope could not be decoded, encoded or fitted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input was empty; an encoded envelope is never zero bytes long.
    #[error("empty input: an encoded dlq envelope is never zero bytes long")]
    Empty,

    /// The input is larger than the decoder's limit.
    #[error("input is {len} bytes, more than the decoder's limit of {max} bytes")]
    TooLarge {
        /// Length of the input.
        len: usize,
        /// The decoder's limit.
        max: usize,
    },

    /// The input is not a protobuf encoding of a `DlqEnvelope`.
    #[error("input ({len} bytes) is not an encoded dlq envelope: {reason}")]
    Malformed {
        /// Length of the input.
        len: usize,
        /// What the protobuf decoder found wrong.
        reason: String,
        /// The protobuf decoder's error.
        #[source]
        source: prost::DecodeError,
    },

    /// The input decoded, but the envelope breaks a rule of the schema.
    #[error("invalid dlq envelope: {0}")]
    Invalid(#[from] ValidationError),

    /// The envelope does not fit the size budget under the payload policy.
    #[error(
        "envelope needs {needed} bytes, more than the maximum message size of {max} bytes \
         (payload policy: {policy})"
    )]
    DoesNotFit {
        /// The smallest encoded length the policy allows.
        needed: usize,
        /// The size budget.
        max: usize,
        /// The payload policy that was applied.
        policy: crate::PayloadPolicy,
    },
}

/// A rule of the envelope schema that an envelope breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// Neither a sink nor a source origin is set.
    #[error("no origin: exactly one of `sink` and `source` must be set")]
    MissingOrigin,
    /// A sink origin lacks its stream or topic name.
    #[error("sink origin has an empty `{0}` name")]
    EmptySinkName(&'static str),
    /// A sink origin lacks its message id.
    #[error("sink origin has no `message_id`")]
    MissingMessageId,
    /// A source origin does not name its external system.
    #[error("source origin has an empty `system`")]
    EmptySourceSystem,
    /// The failure is missing.
    #[error("no `failure`")]
    MissingFailure,
    /// The failure has no reason.
    #[error("failure has an empty `reason`")]
    EmptyReason,
    /// The failure's stage is `FAILURE_STAGE_UNSPECIFIED`.
    #[error("failure has no `stage` (FAILURE_STAGE_UNSPECIFIED)")]
    UnspecifiedStage,
    /// The failure's code is `ERROR_CODE_UNSPECIFIED`.
    #[error("failure has no `code` (ERROR_CODE_UNSPECIFIED)")]
    UnspecifiedCode,
    /// The failure records zero attempts.
    #[error("failure records 0 `attempts`; a failed message was tried at least once")]
    ZeroAttempts,
    /// The first failure is later than the last one.
    #[error(
        "failure's `first_failed_at_micros` ({first}) is after `last_failed_at_micros` ({last})"
    )]
    FailureTimesOutOfOrder {
        /// `first_failed_at_micros`.
        first: u64,
        /// `last_failed_at_micros`.
        last: u64,
    },
    /// The connector identity is missing.
    #[error("no `connector`")]
    MissingConnector,
    /// The connector identity has no key.
    #[error("connector has an empty `key`")]
    EmptyConnectorKey,
    /// The connector kind is unspecified or does not match the origin.
    #[error("connector kind {kind} does not match a {origin} origin")]
    ConnectorKindMismatch {
        /// The connector kind, as its protobuf name.
        kind: &'static str,
        /// `"sink"` or `"source"`.
        origin: &'static str,
    },
    /// `payload_integrity` is missing.
    #[error("no `payload_integrity`")]
    MissingPayloadIntegrity,
    /// The payload length disagrees with `payload_integrity`.
    #[error(
        "payload is {actual} bytes but `payload_integrity` says {original} bytes, \
         not truncated"
    )]
    PayloadLengthMismatch {
        /// Length of `payload`.
        actual: u64,
        /// `payload_integrity.original_length`.
        original: u64,
    },
    /// A payload marked truncated is not shorter than the original.
    #[error("payload is marked truncated but holds {actual} of {original} bytes")]
    TruncatedNotShorter {
        /// Length of `payload`.
        actual: u64,
        /// `payload_integrity.original_length`.
        original: u64,
    },
    /// A truncated payload lacks the SHA-256 of its original.
    #[error("truncated payload has an `original_sha256` of {0} bytes, not 32")]
    BadOriginalChecksum(usize),
    /// A header key or value is missing.
    #[error("header #{index} has no {part}")]
    MissingHeaderPart {
        /// Position of the header.
        index: usize,
        /// `"key"` or `"value"`.
        part: &'static str,
    },
    /// A header field has kind `HEADER_KIND_UNSPECIFIED` or an unknown kind.
    #[error("header field has unknown kind {0}")]
    UnknownHeaderKind(i32),
    /// A header field's bytes do not fit its kind.
    #[error("header field of kind {kind:?} must be {expected} bytes, is {actual}")]
    HeaderValueLength {
        /// The header kind.
        kind: HeaderKind,
        /// Length the kind requires.
        expected: usize,
        /// Length found.
        actual: usize,
    },
    /// A string header field is not UTF-8.
    #[error("string header field is not valid UTF-8")]
    HeaderNotUtf8,
    /// A bool header field is neither 0 nor 1.
    #[error("bool header field holds {0}, not 0 or 1")]
    HeaderBadBool(u8),
    /// `written_at_micros` is not set.
    #[error("`written_at_micros` is 0")]
    MissingWrittenAt,
}
