//! The dead-letter envelope of iggy-dlq.
//!
//! A connector that fails on a message wraps it in a [`DlqEnvelope`]: the
//! payload exactly as received, its headers with their Iggy kinds, where it came
//! from ([`SinkOrigin`] or [`SourceOrigin`]), why it failed ([`Failure`]) and
//! which connector failed it ([`Connector`]). The envelope is defined once, in
//! `proto/iggy/dlq/v1/envelope.proto`; the types here are generated from it by
//! `prost-build`, and everything else in iggy-dlq (the SDK, the runtime, the
//! command line, the Python module) uses them.
//!
//! This crate adds what the generated types lack:
//!
//! - constructors that make a valid envelope hard to get wrong
//!   ([`DlqEnvelope::for_sink`], [`DlqEnvelope::for_source`], [`Failure::new`],
//!   [`Header::new`]);
//! - [`DlqEnvelope::encode_to_bytes`] and [`decode`] / [`Decoder`], which check
//!   size and content and fail with a typed [`Error`];
//! - [`DlqEnvelope::validate`];
//! - a size budget, [`DlqEnvelope::fit_to`], that cuts the payload to fit the
//!   DLQ topic's maximum message size and records that it did;
//! - [`dlq_file`], the append-only file format of the embedded DLQ target and
//!   of the runtime's outage spool.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use iggy_dlq_envelope::{
//!     decode, Connector, DlqEnvelope, ErrorCode, Failure, FailureStage, Header, HeaderValue,
//!     PayloadSchema, SinkOrigin,
//! };
//!
//! # fn main() -> Result<(), iggy_dlq_envelope::Error> {
//! let origin = SinkOrigin::new("orders", "created", 1, 4711, 0x1234_5678_9abc_def0_1122_3344_5566_7788);
//! let envelope = DlqEnvelope::for_sink(origin)
//!     .payload(Bytes::from_static(b"{\"id\": 1"), PayloadSchema::Json)
//!     .header(Header::new(HeaderValue::from("tenant"), HeaderValue::Uint64(42)))
//!     .failure(Failure::new(
//!         FailureStage::ConnectorProcess,
//!         ErrorCode::MalformedPayload,
//!         "EOF while parsing an object at line 1 column 8",
//!     ))
//!     .connector(Connector::sink("orders-to-postgres", "Orders to Postgres", "0.1.0"))
//!     .build()?;
//!
//! let bytes = envelope.encode_to_bytes();
//! let decoded = decode(bytes)?;
//! assert_eq!(decoded, envelope);
//! assert_eq!(decoded.sink_origin().unwrap().message_id(), 0x1234_5678_9abc_def0_1122_3344_5566_7788);
//! assert_eq!(decoded.headers[0].value.as_ref().unwrap().typed()?, HeaderValue::Uint64(42));
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod budget;
mod builder;
mod codec;
pub mod dlq_file;
mod error;
mod header;
mod validate;

/// The types generated from `proto/iggy/dlq/v1/envelope.proto`, package
/// `iggy.dlq.v1`, with canonical protobuf JSON (serde) impls.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/iggy.dlq.v1.rs"));
    include!(concat!(env!("OUT_DIR"), "/iggy.dlq.v1.serde.rs"));
}

pub use budget::PayloadPolicy;
pub use builder::EnvelopeBuilder;
pub use codec::{DEFAULT_MAX_ENVELOPE_LEN, Decoder, decode};
pub use error::{Error, Result, ValidationError};
pub use header::HeaderValue;
pub use v1::dlq_envelope::Origin;
pub use v1::{
    Connector, ConnectorKind, DlqEnvelope, ErrorCode, Failure, FailureStage, Header, HeaderField,
    HeaderKind, PayloadIntegrity, PayloadSchema, SinkOrigin, SourceOrigin, Uint128,
};

/// The user header that `iggy-dlq replay` puts on each message it replays:
/// a string key with a `uint32` value, how many times the message has now
/// been replayed. An envelope built for a message that carries it takes its
/// [`replay_count`](DlqEnvelope::replay_count) from it, so a message that
/// fails again after a replay says so, and replay can refuse to loop
/// forever.
pub const REPLAY_COUNT_HEADER: &str = "iggy-dlq-replay-count";

/// The protobuf package of the envelope schema.
pub const PROTO_PACKAGE: &str = "iggy.dlq.v1";

/// The fully qualified protobuf name of [`DlqEnvelope`].
pub const ENVELOPE_TYPE_NAME: &str = "iggy.dlq.v1.DlqEnvelope";

/// Microseconds since the Unix epoch, now: the time unit of every envelope
/// field named `*_micros`, as of Iggy's own timestamps.
pub fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
