//! Encoding and decoding with size limits and typed errors.

use bytes::Bytes;
use prost::Message;

use crate::{DlqEnvelope, Error, Result};

/// The largest input [`decode`] accepts: 64 MiB, above the largest message an
/// Iggy server accepts by default.
pub const DEFAULT_MAX_ENVELOPE_LEN: usize = 64 * 1024 * 1024;

impl DlqEnvelope {
    /// The envelope in protobuf encoding, as produced to the DLQ topic.
    pub fn encode_to_bytes(&self) -> Bytes {
        Bytes::from(self.encode_to_vec())
    }

    /// The envelope as canonical protobuf JSON (the proto3 JSON mapping:
    /// camelCase names, 64-bit integers as strings, bytes as base64, enums
    /// by name).
    pub fn to_canonical_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("generated serde impls serialize to JSON without error")
    }
}

/// Decodes and validates an envelope with the default limit
/// ([`DEFAULT_MAX_ENVELOPE_LEN`]).
///
/// The payload and header values of the result share `bytes`' buffer: no
/// payload is copied.
///
/// # Errors
///
/// [`Error::Empty`], [`Error::TooLarge`], [`Error::Malformed`] for bytes that
/// are no envelope, [`Error::Invalid`] for an envelope that breaks a rule.
pub fn decode(bytes: impl Into<Bytes>) -> Result<DlqEnvelope> {
    Decoder::default().decode(bytes)
}

/// A configurable decoder: a size limit, and whether to validate.
#[derive(Debug, Clone, Copy)]
pub struct Decoder {
    max_len: usize,
    validate: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            max_len: DEFAULT_MAX_ENVELOPE_LEN,
            validate: true,
        }
    }
}

impl Decoder {
    /// A decoder with the default limit that validates.
    pub fn new() -> Self {
        Self::default()
    }

    /// Refuses inputs longer than `max_len` bytes before decoding them.
    pub fn max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// Whether to validate decoded envelopes (the default). Turning it off
    /// lets a tool show an envelope that breaks a rule.
    pub fn validate(mut self, validate: bool) -> Self {
        self.validate = validate;
        self
    }

    /// Decodes one envelope; see [`decode`].
    ///
    /// # Errors
    ///
    /// As [`decode`].
    pub fn decode(&self, bytes: impl Into<Bytes>) -> Result<DlqEnvelope> {
        let bytes = bytes.into();
        let len = bytes.len();
        if len == 0 {
            return Err(Error::Empty);
        }
        if len > self.max_len {
            return Err(Error::TooLarge {
                len,
                max: self.max_len,
            });
        }
        let envelope = DlqEnvelope::decode(bytes).map_err(|source| Error::Malformed {
            len,
            reason: describe(&source),
            source,
        })?;
        if self.validate {
            envelope.validate()?;
        }
        Ok(envelope)
    }
}

/// prost's message names the innermost problem and the field path; say it in
/// the project's words.
fn describe(error: &prost::DecodeError) -> String {
    let text = error.to_string();
    text.strip_prefix("failed to decode Protobuf message: ")
        .unwrap_or(&text)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Connector, ErrorCode, Failure, FailureStage, PayloadSchema, SinkOrigin};
    use proptest::prelude::*;

    fn sample() -> DlqEnvelope {
        DlqEnvelope::for_sink(SinkOrigin::new("s", "t", 1, 2, u128::MAX))
            .payload(Bytes::from(vec![7u8; 300]), PayloadSchema::Raw)
            .failure(Failure::new(
                FailureStage::Transform,
                ErrorCode::TransformFailed,
                "boom",
            ))
            .connector(Connector::sink("k", "n", "1"))
            .build()
            .unwrap()
    }

    #[test]
    fn decoding_shares_the_input_buffer() {
        let bytes = sample().encode_to_bytes();
        let range = bytes.as_ptr_range();
        let decoded = decode(bytes.clone()).unwrap();
        assert!(range.contains(&decoded.payload.as_ptr()));
    }

    #[test]
    fn empty_and_oversized_inputs_are_refused_before_decoding() {
        assert!(matches!(decode(Bytes::new()), Err(Error::Empty)));
        let bytes = sample().encode_to_bytes();
        let err = Decoder::new().max_len(10).decode(bytes).unwrap_err();
        assert!(matches!(err, Error::TooLarge { max: 10, .. }));
    }

    #[test]
    fn garbage_is_malformed_with_a_reason() {
        let err = decode(Bytes::from_static(&[0xff, 0xff, 0xff])).unwrap_err();
        match err {
            Error::Malformed { len, reason, .. } => {
                assert_eq!(len, 3);
                assert!(!reason.is_empty());
            }
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_protobuf_that_is_no_envelope_is_invalid() {
        // Field 10 (replay_count) = 1: a well-formed protobuf, but no origin.
        let err = decode(Bytes::from_static(&[0x50, 0x01])).unwrap_err();
        assert!(matches!(
            err,
            Error::Invalid(crate::ValidationError::MissingOrigin)
        ));
    }

    #[test]
    fn every_truncation_of_an_envelope_fails_cleanly() {
        let bytes = sample().encode_to_bytes();
        for cut in 0..bytes.len() {
            assert!(decode(bytes.slice(..cut)).is_err(), "cut at {cut} decoded");
        }
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(Bytes::from(data));
        }

        #[test]
        fn bit_flips_never_panic(bit in 0usize..(8 * 400)) {
            let mut data = sample().encode_to_vec();
            let bit = bit % (8 * data.len());
            data[bit / 8] ^= 1 << (bit % 8);
            let _ = decode(Bytes::from(data));
        }
    }
}
