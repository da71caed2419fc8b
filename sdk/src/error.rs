//! The crate's error type.

use crate::abi::DlqStatus;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong: a dead letter the DLQ did not take, bytes that did not
/// decode, or a connector's own failure.
///
/// The first variants mirror the [`DlqStatus`] codes a runtime returns;
/// [`Error::dlq_status`] maps them back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No DLQ is wired to this connector (the runtime never called
    /// `iggy_*_set_dlq_callback`, or answered `NotConfigured`): the dead
    /// letter is lost.
    #[error("no dlq is configured for this connector: the dead letter is lost")]
    NotConfigured,
    /// The runtime found the envelope invalid.
    #[error("the runtime refused the dead letter as an invalid envelope")]
    InvalidEnvelope,
    /// The envelope is larger than the DLQ accepts.
    #[error("the dead letter is larger than the dlq accepts")]
    TooLarge,
    /// The runtime is shutting down.
    #[error("the runtime is shutting down and takes no more dead letters")]
    ShuttingDown,
    /// The DLQ target is unavailable or timed out; a later try may succeed.
    #[error("the dlq is unavailable or timed out")]
    Unavailable,
    /// The runtime refused the call's arguments (for example, an id it does
    /// not know).
    #[error("the runtime refused the dlq call: bad arguments or unknown connector id")]
    BadArguments,
    /// The runtime returned a status this version does not know.
    #[error("the dlq callback returned unknown status {0}")]
    UnknownStatus(i32),
    /// The connector is closed: its DLQ callback may no longer be called.
    #[error("the connector is closed: its dlq callback may no longer be called")]
    Closed,
    /// The dead letter does not make a valid envelope.
    #[error("cannot build the dlq envelope: {0}")]
    Envelope(#[from] iggy_dlq_envelope::Error),
    /// The plugin config does not parse into the connector's config type.
    #[error("invalid plugin config: {0}")]
    Config(String),
    /// Bytes from the runtime do not decode.
    #[error("cannot decode {what}: {source}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// Postcard's error.
        #[source]
        source: postcard::Error,
    },
    /// A value does not encode.
    #[error("cannot encode {what}: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// Postcard's error.
        #[source]
        source: postcard::Error,
    },
    /// The connector's own failure, in its words.
    #[error("{0}")]
    Connector(String),
    /// The connector panicked; the panic message.
    #[error("connector panicked: {0}")]
    Panicked(String),
}

impl Error {
    /// A connector failure from anything printable.
    pub fn connector(reason: impl std::fmt::Display) -> Self {
        Error::Connector(reason.to_string())
    }

    /// The error for a [`DlqCallback`](crate::abi::DlqCallback) return code;
    /// `None` for `Accepted`.
    pub fn from_dlq_code(code: i32) -> Option<Self> {
        match DlqStatus::from_code(code) {
            Some(status) => status.into_result().err(),
            None => Some(Error::UnknownStatus(code)),
        }
    }

    /// The DLQ status this error mirrors, if it is one.
    pub fn dlq_status(&self) -> Option<DlqStatus> {
        Some(match self {
            Error::NotConfigured => DlqStatus::NotConfigured,
            Error::InvalidEnvelope => DlqStatus::InvalidEnvelope,
            Error::TooLarge => DlqStatus::TooLarge,
            Error::ShuttingDown => DlqStatus::ShuttingDown,
            Error::Unavailable => DlqStatus::Unavailable,
            Error::BadArguments => DlqStatus::BadArguments,
            _ => return None,
        })
    }

    /// Whether trying the same dead letter again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Unavailable | Error::ShuttingDown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_maps_back_to_its_status() {
        for code in [1, 2, 3, 4, 5, -1] {
            let err = Error::from_dlq_code(code).unwrap();
            assert_eq!(err.dlq_status().map(i32::from), Some(code));
        }
        assert!(Error::from_dlq_code(0).is_none());
        assert!(matches!(
            Error::from_dlq_code(42),
            Some(Error::UnknownStatus(42))
        ));
    }
}
