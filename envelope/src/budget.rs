//! Fitting an envelope into the DLQ topic's maximum message size.

use bytes::Bytes;
use prost::Message;
use sha2::{Digest, Sha256};

use crate::{DlqEnvelope, Error, PayloadIntegrity, Result};

/// What to do with the payload of an envelope that is larger than the DLQ
/// topic accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PayloadPolicy {
    /// Keep the payload whole; an envelope that does not fit is an error.
    Keep,
    /// Keep the longest prefix of the payload that fits (the default).
    #[default]
    Truncate,
    /// Drop the payload; keep its length and SHA-256 only.
    Drop,
}

impl std::fmt::Display for PayloadPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PayloadPolicy::Keep => "keep",
            PayloadPolicy::Truncate => "truncate",
            PayloadPolicy::Drop => "drop",
        })
    }
}

impl DlqEnvelope {
    /// Makes the envelope fit in `max_len` encoded bytes under `policy`.
    ///
    /// An envelope that fits is returned unchanged. Otherwise, under
    /// [`PayloadPolicy::Truncate`] the payload is cut to the longest prefix
    /// that fits, and under [`PayloadPolicy::Drop`] it is removed; either way
    /// `payload_integrity` records the original length and SHA-256 and sets
    /// `truncated`, so a cut is never silent. Cutting an already cut envelope
    /// keeps the first original's record.
    ///
    /// # Errors
    ///
    /// [`Error::DoesNotFit`] under [`PayloadPolicy::Keep`] when the envelope
    /// is too large, or under any policy when even the envelope without a
    /// payload is larger than `max_len`.
    ///
    /// # Example
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use iggy_dlq_envelope::*;
    /// # let envelope = DlqEnvelope::for_sink(SinkOrigin::new("s", "t", 1, 2, 3))
    /// #     .payload(Bytes::from(vec![b'x'; 10_000]), PayloadSchema::Text)
    /// #     .failure(Failure::new(FailureStage::ConnectorWrite, ErrorCode::TooLarge, "too large"))
    /// #     .connector(Connector::sink("k", "n", "1"))
    /// #     .build()?;
    /// let fitted = envelope.fit_to(1_000, PayloadPolicy::Truncate)?;
    /// assert!(fitted.encode_to_bytes().len() <= 1_000);
    /// let integrity = fitted.payload_integrity.as_ref().unwrap();
    /// assert!(integrity.truncated);
    /// assert_eq!(integrity.original_length, 10_000);
    /// # Ok::<(), iggy_dlq_envelope::Error>(())
    /// ```
    pub fn fit_to(mut self, max_len: usize, policy: PayloadPolicy) -> Result<DlqEnvelope> {
        let len = self.encoded_len();
        if len <= max_len {
            return Ok(self);
        }
        if policy == PayloadPolicy::Keep {
            return Err(Error::DoesNotFit {
                needed: len,
                max: max_len,
                policy,
            });
        }

        let already_cut = self.payload_integrity.as_ref().is_some_and(|i| i.truncated);
        if !already_cut {
            self.payload_integrity = Some(PayloadIntegrity {
                original_length: self.payload.len() as u64,
                truncated: true,
                original_sha256: Bytes::copy_from_slice(&Sha256::digest(&self.payload)),
            });
        }
        let payload = std::mem::take(&mut self.payload);
        let without_payload = self.encoded_len();
        if without_payload > max_len {
            return Err(Error::DoesNotFit {
                needed: without_payload,
                max: max_len,
                policy,
            });
        }
        if policy == PayloadPolicy::Truncate {
            let kept = longest_prefix(max_len - without_payload, payload.len());
            self.payload = payload.slice(..kept);
        }
        debug_assert!(self.encoded_len() <= max_len);
        Ok(self)
    }
}

/// The longest payload prefix whose field (one tag byte, a varint length,
/// the bytes) fits in `room` bytes, at most `available` long. An empty
/// payload costs nothing: proto3 does not encode it.
fn longest_prefix(room: usize, available: usize) -> usize {
    let cost = |k: usize| {
        if k == 0 {
            0
        } else {
            1 + prost::encoding::encoded_len_varint(k as u64) + k
        }
    };
    let mut k = room.saturating_sub(1 + prost::encoding::encoded_len_varint(room as u64));
    k = k.min(available);
    while k < available && cost(k + 1) <= room {
        k += 1;
    }
    while k > 0 && cost(k) > room {
        k -= 1;
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Connector, ErrorCode, Failure, FailureStage, PayloadSchema, SinkOrigin, decode};

    fn envelope(payload_len: usize) -> DlqEnvelope {
        DlqEnvelope::for_sink(SinkOrigin::new("stream", "topic", 1, 2, 3))
            .payload(Bytes::from(vec![b'p'; payload_len]), PayloadSchema::Raw)
            .failure(Failure::new(
                FailureStage::ConnectorWrite,
                ErrorCode::TooLarge,
                "big",
            ))
            .connector(Connector::sink("key", "name", "1.0"))
            .build()
            .unwrap()
    }

    #[test]
    fn an_envelope_that_fits_is_unchanged() {
        let e = envelope(100);
        assert_eq!(e.clone().fit_to(10_000, PayloadPolicy::Keep).unwrap(), e);
    }

    #[test]
    fn truncation_fills_the_budget_exactly_or_nearly() {
        // Every budget from "just the metadata" up to "the whole envelope":
        // the result fits, is valid, and leaves no more than one byte unused
        // (a varint length that just grew a byte).
        let e = envelope(1_000);
        let full = e.encoded_len();
        let mut cut = e.clone();
        cut.payload = Bytes::new();
        cut.payload_integrity = Some(PayloadIntegrity {
            original_length: 1_000,
            truncated: true,
            original_sha256: Bytes::from(vec![0; 32]),
        });
        let floor = cut.encoded_len();
        for max in floor..full {
            let fitted = e.clone().fit_to(max, PayloadPolicy::Truncate).unwrap();
            let len = fitted.encoded_len();
            assert!(len <= max, "budget {max}: {len} bytes");
            assert!(max - len <= 2, "budget {max}: only {len} bytes used");
            let bytes = fitted.encode_to_bytes();
            let decoded = decode(bytes).unwrap();
            let integrity = decoded.payload_integrity.unwrap();
            assert!(integrity.truncated);
            assert_eq!(integrity.original_length, 1_000);
            assert_eq!(
                &integrity.original_sha256[..],
                &Sha256::digest(vec![b'p'; 1_000])[..]
            );
            assert_eq!(&decoded.payload[..], &vec![b'p'; decoded.payload.len()][..]);
        }
    }

    #[test]
    fn drop_keeps_only_length_and_checksum() {
        let fitted = envelope(5_000).fit_to(1_000, PayloadPolicy::Drop).unwrap();
        assert!(fitted.payload.is_empty());
        let integrity = fitted.payload_integrity.unwrap();
        assert!(integrity.truncated);
        assert_eq!(integrity.original_length, 5_000);
    }

    #[test]
    fn keep_refuses_and_tiny_budgets_fail_under_every_policy() {
        let err = envelope(5_000)
            .fit_to(1_000, PayloadPolicy::Keep)
            .unwrap_err();
        assert!(matches!(err, Error::DoesNotFit { max: 1_000, .. }));
        for policy in [PayloadPolicy::Truncate, PayloadPolicy::Drop] {
            let err = envelope(5_000).fit_to(20, policy).unwrap_err();
            assert!(matches!(err, Error::DoesNotFit { max: 20, .. }), "{policy}");
        }
    }

    #[test]
    fn cutting_twice_keeps_the_first_original() {
        let once = envelope(5_000)
            .fit_to(2_000, PayloadPolicy::Truncate)
            .unwrap();
        let twice = once.fit_to(1_000, PayloadPolicy::Truncate).unwrap();
        assert!(twice.encoded_len() <= 1_000);
        assert_eq!(twice.payload_integrity.unwrap().original_length, 5_000);
    }
}
