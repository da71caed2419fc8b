//! The rules an envelope must keep beyond what protobuf itself checks.

use crate::v1::dlq_envelope::Origin;
use crate::{ConnectorKind, DlqEnvelope, ErrorCode, FailureStage, ValidationError};

impl DlqEnvelope {
    /// Checks the rules of the schema that protobuf cannot express.
    ///
    /// Values of enums that this version does not know (a newer producer's)
    /// are accepted; only the `*_UNSPECIFIED` values are refused where a
    /// value is required.
    ///
    /// # Errors
    ///
    /// The first rule broken: a missing origin, failure or connector, an
    /// unspecified stage or code, a payload whose length disagrees with its
    /// integrity record, a header whose bytes do not fit its kind, ...
    pub fn validate(&self) -> Result<(), ValidationError> {
        let origin_kind = match &self.origin {
            None => return Err(ValidationError::MissingOrigin),
            Some(Origin::Sink(sink)) => {
                if sink.stream.is_empty() {
                    return Err(ValidationError::EmptySinkName("stream"));
                }
                if sink.topic.is_empty() {
                    return Err(ValidationError::EmptySinkName("topic"));
                }
                if sink.message_id.is_none() {
                    return Err(ValidationError::MissingMessageId);
                }
                ConnectorKind::Sink
            }
            Some(Origin::Source(source)) => {
                if source.system.is_empty() {
                    return Err(ValidationError::EmptySourceSystem);
                }
                ConnectorKind::Source
            }
        };

        let failure = self
            .failure
            .as_ref()
            .ok_or(ValidationError::MissingFailure)?;
        if failure.reason.is_empty() {
            return Err(ValidationError::EmptyReason);
        }
        if failure.stage == FailureStage::Unspecified as i32 {
            return Err(ValidationError::UnspecifiedStage);
        }
        if failure.code == ErrorCode::Unspecified as i32 {
            return Err(ValidationError::UnspecifiedCode);
        }
        if failure.attempts == 0 {
            return Err(ValidationError::ZeroAttempts);
        }
        if failure.first_failed_at_micros > failure.last_failed_at_micros {
            return Err(ValidationError::FailureTimesOutOfOrder {
                first: failure.first_failed_at_micros,
                last: failure.last_failed_at_micros,
            });
        }

        let connector = self
            .connector
            .as_ref()
            .ok_or(ValidationError::MissingConnector)?;
        if connector.key.is_empty() {
            return Err(ValidationError::EmptyConnectorKey);
        }
        if connector.kind != origin_kind as i32 {
            return Err(ValidationError::ConnectorKindMismatch {
                kind: ConnectorKind::try_from(connector.kind)
                    .map(|k| k.as_str_name())
                    .unwrap_or("(unknown)"),
                origin: if origin_kind == ConnectorKind::Sink {
                    "sink"
                } else {
                    "source"
                },
            });
        }

        let integrity = self
            .payload_integrity
            .as_ref()
            .ok_or(ValidationError::MissingPayloadIntegrity)?;
        let actual = self.payload.len() as u64;
        if integrity.truncated {
            if actual >= integrity.original_length {
                return Err(ValidationError::TruncatedNotShorter {
                    actual,
                    original: integrity.original_length,
                });
            }
            if integrity.original_sha256.len() != 32 {
                return Err(ValidationError::BadOriginalChecksum(
                    integrity.original_sha256.len(),
                ));
            }
        } else if actual != integrity.original_length {
            return Err(ValidationError::PayloadLengthMismatch {
                actual,
                original: integrity.original_length,
            });
        }

        for (index, header) in self.headers.iter().enumerate() {
            let key = header
                .key
                .as_ref()
                .ok_or(ValidationError::MissingHeaderPart { index, part: "key" })?;
            let value = header
                .value
                .as_ref()
                .ok_or(ValidationError::MissingHeaderPart {
                    index,
                    part: "value",
                })?;
            key.typed()?;
            value.typed()?;
        }

        if self.written_at_micros == 0 {
            return Err(ValidationError::MissingWrittenAt);
        }
        Ok(())
    }
}
