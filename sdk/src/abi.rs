//! Everything that crosses the plugin boundary: the callback types, the status
//! codes, and the wire types, byte-compatible with Apache Iggy's connector
//! runtime.
//!
//! The wire types are encoded with [`postcard`], which writes no field names:
//! the order of the fields below *is* the wire format, and so is the order of
//! the variants of [`Schema`] and [`HeaderKind`]. Never reorder them.
//!
//! Header keys and values mirror `iggy_common`'s `HeaderField` (a kind and the
//! value bytes, the bytes serialized as a base64 string, as Iggy's serde impl
//! does), so a plugin does not have to link the Iggy client to read them. The
//! test `sdk/tests/upstream_compat.rs` encodes with Iggy's own types and
//! checks that the bytes are the same both ways.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Status: the call succeeded.
pub const STATUS_OK: i32 = 0;
/// Status: the connector's own code failed (returned an error or panicked).
pub const STATUS_CONNECTOR_ERROR: i32 = 1;
/// Status: the call was refused before reaching the connector: unknown or
/// already open id, a null pointer with a non-zero length, a length over the
/// limit, or bytes that do not decode.
pub const STATUS_INVALID_CALL: i32 = -1;

/// The longest plugin config, in bytes, that `open` accepts.
pub const MAX_CONFIG_LEN: usize = 64 * 1024 * 1024;
/// The longest saved source state, in bytes, that `open` accepts.
pub const MAX_STATE_LEN: usize = 256 * 1024 * 1024;
/// The longest encoded [`TopicMetadata`] or [`MessagesMetadata`] accepted.
pub const MAX_METADATA_LEN: usize = 1024 * 1024;
/// The longest encoded [`RawMessages`] batch accepted: 4 GiB (on 32-bit
/// targets, whatever fits the address space).
pub const MAX_MESSAGES_LEN: usize = (u32::MAX as usize).saturating_add(1);

/// How a plugin logs through the runtime: level 0 TRACE, 1 DEBUG, 2 INFO,
/// 3 WARN, 4 ERROR; target and message are UTF-8, valid only during the call.
pub type LogCallback = extern "C" fn(
    level: u8,
    target_ptr: *const u8,
    target_len: usize,
    message_ptr: *const u8,
    message_len: usize,
);

/// How a source hands a batch to the runtime: `messages` is a postcard
/// [`ProducedMessages`], valid only during the call, which the runtime must
/// copy. A non-zero return means the runtime did not take the batch (the
/// source then treats it as a [`BatchResult::Nack`]); after a zero return the
/// runtime answers with `iggy_source_batch_result(id, batch_id, result)`.
pub type SendCallback = extern "C" fn(
    plugin_id: u32,
    batch_id: u64,
    messages_ptr: *const u8,
    messages_len: usize,
) -> i32;

/// How a connector hands one dead letter to the runtime.
///
/// The runtime implements it and injects it with
/// `iggy_sink_set_dlq_callback(id, callback)` or
/// `iggy_source_set_dlq_callback(id, callback)` after a successful `open`.
///
/// # Contract
///
/// - `plugin_id` is the id the connector was opened with.
/// - `envelope_ptr`/`envelope_len` are one encoded
///   `iggy.dlq.v1.DlqEnvelope` (protobuf), never empty. The bytes belong to
///   the plugin and are valid only during the call: the runtime must copy
///   them before it returns.
/// - The call blocks until the runtime has accepted the dead letter (queued
///   it durably enough for its own guarantees) or refused it; the return
///   value is a [`DlqStatus`] code.
/// - The runtime may be called from any thread, and from several at once.
/// - After `iggy_*_close(id)` returns the plugin never calls it again for
///   that id. `close` and `set_dlq_callback` wait for calls in progress, so
///   the callback must not itself call either for the same id.
pub type DlqCallback =
    extern "C" fn(plugin_id: u32, envelope_ptr: *const u8, envelope_len: usize) -> i32;

/// What a [`DlqCallback`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum DlqStatus {
    /// The runtime took the dead letter.
    Accepted = 0,
    /// No DLQ is configured for this connector.
    NotConfigured = 1,
    /// The bytes are not a valid `DlqEnvelope`.
    InvalidEnvelope = 2,
    /// The envelope is larger than the DLQ accepts, even cut to fit.
    TooLarge = 3,
    /// The runtime is shutting down and takes no more dead letters.
    ShuttingDown = 4,
    /// The DLQ target is unavailable or did not answer in time; trying again
    /// later may succeed.
    Unavailable = 5,
    /// Bad arguments: a null pointer with a non-zero length, or an unknown id.
    BadArguments = -1,
}

impl DlqStatus {
    /// The code on the wire.
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// The status of a code, `None` for a code this version does not know.
    pub const fn from_code(code: i32) -> Option<Self> {
        Some(match code {
            0 => DlqStatus::Accepted,
            1 => DlqStatus::NotConfigured,
            2 => DlqStatus::InvalidEnvelope,
            3 => DlqStatus::TooLarge,
            4 => DlqStatus::ShuttingDown,
            5 => DlqStatus::Unavailable,
            -1 => DlqStatus::BadArguments,
            _ => return None,
        })
    }

    /// `Ok` for [`DlqStatus::Accepted`], else the matching [`Error`].
    ///
    /// # Errors
    ///
    /// Every status but `Accepted`.
    pub fn into_result(self) -> Result<()> {
        match self {
            DlqStatus::Accepted => Ok(()),
            DlqStatus::NotConfigured => Err(Error::NotConfigured),
            DlqStatus::InvalidEnvelope => Err(Error::InvalidEnvelope),
            DlqStatus::TooLarge => Err(Error::TooLarge),
            DlqStatus::ShuttingDown => Err(Error::ShuttingDown),
            DlqStatus::Unavailable => Err(Error::Unavailable),
            DlqStatus::BadArguments => Err(Error::BadArguments),
        }
    }
}

impl From<DlqStatus> for i32 {
    fn from(status: DlqStatus) -> Self {
        status.code()
    }
}

impl TryFrom<i32> for DlqStatus {
    type Error = i32;

    /// Fails with the code itself when it is not a known status.
    fn try_from(code: i32) -> std::result::Result<Self, i32> {
        DlqStatus::from_code(code).ok_or(code)
    }
}

/// The runtime's answer to a source batch, the `result` of
/// `iggy_source_batch_result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum BatchResult {
    /// The runtime sent the whole batch and persisted its state.
    Ack = 0,
    /// The runtime could not send the batch or persist its state; the source
    /// should produce it again.
    Nack = 1,
}

impl BatchResult {
    /// The result of a code, `None` for anything but 0 and 1.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(BatchResult::Ack),
            1 => Some(BatchResult::Nack),
            _ => None,
        }
    }
}

/// The declared format of a payload.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)] // each variant is the format of the same name
pub enum Schema {
    #[default]
    Json,
    Raw,
    Text,
    Proto,
    FlatBuffer,
    Avro,
}

impl From<Schema> for iggy_dlq_envelope::PayloadSchema {
    fn from(schema: Schema) -> Self {
        use iggy_dlq_envelope::PayloadSchema as P;
        match schema {
            Schema::Json => P::Json,
            Schema::Raw => P::Raw,
            Schema::Text => P::Text,
            Schema::Proto => P::Proto,
            Schema::FlatBuffer => P::Flatbuffer,
            Schema::Avro => P::Avro,
        }
    }
}

impl Schema {
    pub(crate) const fn to_u8(self) -> u8 {
        self as u8
    }

    pub(crate) const fn from_u8(code: u8) -> Self {
        match code {
            1 => Schema::Raw,
            2 => Schema::Text,
            3 => Schema::Proto,
            4 => Schema::FlatBuffer,
            5 => Schema::Avro,
            _ => Schema::Json,
        }
    }
}

/// The Iggy stream and topic a sink batch was consumed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMetadata {
    /// Stream name.
    pub stream: String,
    /// Topic name.
    pub topic: String,
}

/// Where a sink batch sits in its topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagesMetadata {
    /// The partition the batch was polled from.
    pub partition_id: u32,
    /// The consumer's offset when the batch was polled.
    pub current_offset: u64,
    /// The declared payload format of the batch.
    pub schema: Schema,
}

/// A sink batch, as the runtime hands it to `iggy_sink_consume`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawMessages {
    /// The declared payload format.
    pub schema: Schema,
    /// The messages, in offset order.
    pub messages: Vec<RawMessage>,
}

/// One message consumed from Iggy, payload exactly as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawMessage {
    /// The Iggy message id.
    pub id: u128,
    /// Offset in the partition.
    pub offset: u64,
    /// Iggy's checksum of the message.
    pub checksum: u64,
    /// When the server stored it, microseconds since the Unix epoch.
    pub timestamp: u64,
    /// When the producer made it, microseconds since the Unix epoch.
    pub origin_timestamp: u64,
    /// Postcard of [`UserHeaders`], empty for none; see
    /// [`RawMessage::user_headers`].
    pub headers: Vec<u8>,
    /// The payload.
    pub payload: Vec<u8>,
}

impl RawMessage {
    /// The decoded user headers; empty when there are none.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when the header bytes are not postcard of
    /// [`UserHeaders`].
    pub fn user_headers(&self) -> Result<UserHeaders> {
        if self.headers.is_empty() {
            return Ok(UserHeaders::new());
        }
        from_bytes("message headers", &self.headers)
    }
}

/// A batch a source hands to the runtime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProducedMessages {
    /// The declared payload format.
    pub schema: Schema,
    /// The messages to send to the source's Iggy topic.
    pub messages: Vec<ProducedMessage>,
    /// The source's position after this batch, which the runtime persists
    /// when the batch is sent and hands back to `open` on restart.
    pub state: Option<ConnectorState>,
}

/// One message a source produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProducedMessage {
    /// The Iggy message id; the runtime assigns one when `None`.
    pub id: Option<u128>,
    /// Checksum; the runtime computes it when `None`.
    pub checksum: Option<u64>,
    /// Timestamp, microseconds since the Unix epoch.
    pub timestamp: Option<u64>,
    /// Origin timestamp, microseconds since the Unix epoch.
    pub origin_timestamp: Option<u64>,
    /// User headers.
    pub headers: Option<UserHeaders>,
    /// The payload.
    pub payload: Vec<u8>,
}

impl ProducedMessage {
    /// A message with only a payload.
    pub fn new(payload: impl Into<Vec<u8>>) -> Self {
        ProducedMessage {
            id: None,
            checksum: None,
            timestamp: None,
            origin_timestamp: None,
            headers: None,
            payload: payload.into(),
        }
    }
}

/// A source's opaque saved position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorState(pub Vec<u8>);

/// The kind of an Iggy header key or value, in Iggy's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)] // each variant is the Iggy kind of the same name
pub enum HeaderKind {
    Raw,
    String,
    Bool,
    Int8,
    Int16,
    Int32,
    Int64,
    Int128,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Uint128,
    Float32,
    Float64,
}

impl HeaderKind {
    /// Iggy's code for the kind (1 raw .. 15 float64), which is also the
    /// envelope's `HeaderKind` number.
    pub const fn code(self) -> u8 {
        self as u8 + 1
    }

    /// The kind of an Iggy code.
    pub const fn from_code(code: u8) -> Option<Self> {
        use HeaderKind::*;
        const KINDS: [HeaderKind; 15] = [
            Raw, String, Bool, Int8, Int16, Int32, Int64, Int128, Uint8, Uint16, Uint32, Uint64,
            Uint128, Float32, Float64,
        ];
        if code == 0 || code as usize > KINDS.len() {
            return None;
        }
        Some(KINDS[code as usize - 1])
    }
}

impl PartialOrd for HeaderKind {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for HeaderKind {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.code().cmp(&other.code())
    }
}

/// An Iggy header key or value: its kind and its bytes in Iggy's encoding
/// (little-endian numbers, UTF-8 strings, one byte for booleans).
///
/// Ordered by kind code, then bytes, as Iggy orders it, so a
/// [`UserHeaders`] map encodes in the same order as Iggy's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct HeaderField {
    /// The kind.
    pub kind: HeaderKind,
    /// The bytes.
    #[serde(with = "base64_string")]
    pub value: Vec<u8>,
}

/// A header key.
pub type HeaderKey = HeaderField;
/// A header value.
pub type HeaderValue = HeaderField;
/// Iggy's user headers, as carried by [`RawMessage::headers`] and
/// [`ProducedMessage::headers`].
pub type UserHeaders = BTreeMap<HeaderKey, HeaderValue>;

impl HeaderField {
    /// A field of `kind` holding `value`, which must already be in Iggy's
    /// encoding of that kind.
    pub fn new(kind: HeaderKind, value: impl Into<Vec<u8>>) -> Self {
        HeaderField {
            kind,
            value: value.into(),
        }
    }
}

macro_rules! header_from_number {
    ($($ty:ty => $kind:ident),* $(,)?) => {$(
        impl From<$ty> for HeaderField {
            fn from(value: $ty) -> Self {
                HeaderField::new(HeaderKind::$kind, value.to_le_bytes())
            }
        }
    )*};
}

header_from_number!(
    i8 => Int8, i16 => Int16, i32 => Int32, i64 => Int64, i128 => Int128,
    u8 => Uint8, u16 => Uint16, u32 => Uint32, u64 => Uint64, u128 => Uint128,
    f32 => Float32, f64 => Float64,
);

impl From<&str> for HeaderField {
    fn from(value: &str) -> Self {
        HeaderField::new(HeaderKind::String, value.as_bytes())
    }
}

impl From<String> for HeaderField {
    fn from(value: String) -> Self {
        HeaderField::new(HeaderKind::String, value.into_bytes())
    }
}

impl From<bool> for HeaderField {
    fn from(value: bool) -> Self {
        HeaderField::new(HeaderKind::Bool, [u8::from(value)])
    }
}

/// The envelope header of one Iggy header, kinds kept.
pub fn envelope_header(key: &HeaderKey, value: &HeaderValue) -> iggy_dlq_envelope::Header {
    iggy_dlq_envelope::Header::from_raw_parts(
        key.kind.code(),
        bytes::Bytes::copy_from_slice(&key.value),
        value.kind.code(),
        bytes::Bytes::copy_from_slice(&value.value),
    )
}

/// Encodes a wire type with postcard.
///
/// # Errors
///
/// [`Error::Encode`] when serde refuses the value.
pub fn to_bytes<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>> {
    postcard::to_allocvec(value).map_err(|source| Error::Encode { what, source })
}

/// Decodes a wire type from postcard; `what` names it in the error.
///
/// # Errors
///
/// [`Error::Decode`] when the bytes are not postcard of `T`.
pub fn from_bytes<'a, T: Deserialize<'a>>(what: &'static str, bytes: &'a [u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|source| Error::Decode { what, source })
}

/// Iggy serializes header bytes as a standard, padded base64 string.
mod base64_string {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(value))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dlq_status_codes_round_trip() {
        for code in -1..=5 {
            let status = DlqStatus::from_code(code).unwrap();
            assert_eq!(i32::from(status), code);
        }
        assert_eq!(DlqStatus::try_from(6), Err(6));
        assert!(DlqStatus::Accepted.into_result().is_ok());
        assert!(matches!(
            DlqStatus::NotConfigured.into_result(),
            Err(Error::NotConfigured)
        ));
    }

    #[test]
    fn header_kind_codes_match_the_envelope() {
        for code in 1..=15u8 {
            let kind = HeaderKind::from_code(code).unwrap();
            assert_eq!(kind.code(), code);
            let envelope_kind = iggy_dlq_envelope::HeaderKind::try_from(i32::from(code)).unwrap();
            assert_eq!(
                format!("{kind:?}").to_lowercase(),
                format!("{envelope_kind:?}").to_lowercase()
            );
        }
        assert_eq!(HeaderKind::from_code(0), None);
        assert_eq!(HeaderKind::from_code(16), None);
    }

    #[test]
    fn borrowed_cow_strings_decode_from_postcard() {
        let mut headers = UserHeaders::new();
        headers.insert("k".into(), 7u64.into());
        let bytes = to_bytes("headers", &headers).unwrap();
        let back: UserHeaders = from_bytes("headers", &bytes).unwrap();
        assert_eq!(back, headers);
    }
}
