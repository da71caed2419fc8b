//! Typed header keys and values, in Iggy's own encoding.

use bytes::Bytes;

use crate::{Header, HeaderField, HeaderKind, ValidationError};

/// A typed Iggy header key or value.
///
/// The envelope stores each as a [`HeaderField`]: the kind and the bytes in
/// Iggy's encoding (little-endian numbers, UTF-8 strings, one byte for
/// booleans), so that every kind survives a trip through the DLQ unchanged.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)] // each variant is the Iggy kind of the same name
pub enum HeaderValue {
    Raw(Bytes),
    String(String),
    Bool(bool),
    Int8(i8),
    Int16(i16),
    Int32(i32),
    Int64(i64),
    Int128(i128),
    Uint8(u8),
    Uint16(u16),
    Uint32(u32),
    Uint64(u64),
    Uint128(u128),
    Float32(f32),
    Float64(f64),
}

impl From<&str> for HeaderValue {
    fn from(value: &str) -> Self {
        HeaderValue::String(value.to_owned())
    }
}

impl From<String> for HeaderValue {
    fn from(value: String) -> Self {
        HeaderValue::String(value)
    }
}

impl HeaderValue {
    /// The Iggy kind of this value.
    pub fn kind(&self) -> HeaderKind {
        match self {
            HeaderValue::Raw(_) => HeaderKind::Raw,
            HeaderValue::String(_) => HeaderKind::String,
            HeaderValue::Bool(_) => HeaderKind::Bool,
            HeaderValue::Int8(_) => HeaderKind::Int8,
            HeaderValue::Int16(_) => HeaderKind::Int16,
            HeaderValue::Int32(_) => HeaderKind::Int32,
            HeaderValue::Int64(_) => HeaderKind::Int64,
            HeaderValue::Int128(_) => HeaderKind::Int128,
            HeaderValue::Uint8(_) => HeaderKind::Uint8,
            HeaderValue::Uint16(_) => HeaderKind::Uint16,
            HeaderValue::Uint32(_) => HeaderKind::Uint32,
            HeaderValue::Uint64(_) => HeaderKind::Uint64,
            HeaderValue::Uint128(_) => HeaderKind::Uint128,
            HeaderValue::Float32(_) => HeaderKind::Float32,
            HeaderValue::Float64(_) => HeaderKind::Float64,
        }
    }

    /// The value in Iggy's encoding.
    pub fn to_bytes(&self) -> Bytes {
        match self {
            HeaderValue::Raw(b) => b.clone(),
            HeaderValue::String(s) => Bytes::copy_from_slice(s.as_bytes()),
            HeaderValue::Bool(b) => Bytes::copy_from_slice(&[u8::from(*b)]),
            HeaderValue::Int8(v) => Bytes::copy_from_slice(&v.to_le_bytes()),
            HeaderValue::Int16(v) => Bytes::copy_from_slice(&v.to_le_bytes()),
            HeaderValue::Int32(v) => Bytes::copy_from_slice(&v.to_le_bytes()),
            HeaderValue::Int64(v) => Bytes::copy_from_slice(&v.to_le_bytes()),
            HeaderValue::Int128(v) => Bytes::copy_from_slice(&v.to_le_bytes()),
            HeaderValue::Uint8(v) => Bytes::copy_from_slice(&v.to_le_bytes()),
            HeaderValue::Uint16(v) => Bytes::copy_from_slice(&v.to_le_bytes()),
            HeaderValue::Uint32(v) => Bytes::copy_from_slice(&v.to_le_bytes()),
            HeaderValue::Uint64(v) => Bytes::copy_from_slice(&v.to_le_bytes()),
            HeaderValue::Uint128(v) => Bytes::copy_from_slice(&v.to_le_bytes()),
            HeaderValue::Float32(v) => Bytes::copy_from_slice(&v.to_le_bytes()),
            HeaderValue::Float64(v) => Bytes::copy_from_slice(&v.to_le_bytes()),
        }
    }

    /// Reads a value of `kind` from Iggy's encoding.
    ///
    /// # Errors
    ///
    /// When `kind` is unspecified, or the bytes do not fit it: wrong length,
    /// a string that is not UTF-8, a bool that is neither 0 nor 1.
    pub fn from_bytes(kind: HeaderKind, bytes: &Bytes) -> Result<Self, ValidationError> {
        fn fixed<const N: usize>(kind: HeaderKind, b: &[u8]) -> Result<[u8; N], ValidationError> {
            b.try_into()
                .map_err(|_| ValidationError::HeaderValueLength {
                    kind,
                    expected: N,
                    actual: b.len(),
                })
        }
        Ok(match kind {
            HeaderKind::Unspecified => {
                return Err(ValidationError::UnknownHeaderKind(kind as i32));
            }
            HeaderKind::Raw => HeaderValue::Raw(bytes.clone()),
            HeaderKind::String => HeaderValue::String(
                std::str::from_utf8(bytes)
                    .map_err(|_| ValidationError::HeaderNotUtf8)?
                    .to_owned(),
            ),
            HeaderKind::Bool => match fixed::<1>(kind, bytes)?[0] {
                0 => HeaderValue::Bool(false),
                1 => HeaderValue::Bool(true),
                other => return Err(ValidationError::HeaderBadBool(other)),
            },
            HeaderKind::Int8 => HeaderValue::Int8(i8::from_le_bytes(fixed(kind, bytes)?)),
            HeaderKind::Int16 => HeaderValue::Int16(i16::from_le_bytes(fixed(kind, bytes)?)),
            HeaderKind::Int32 => HeaderValue::Int32(i32::from_le_bytes(fixed(kind, bytes)?)),
            HeaderKind::Int64 => HeaderValue::Int64(i64::from_le_bytes(fixed(kind, bytes)?)),
            HeaderKind::Int128 => HeaderValue::Int128(i128::from_le_bytes(fixed(kind, bytes)?)),
            HeaderKind::Uint8 => HeaderValue::Uint8(u8::from_le_bytes(fixed(kind, bytes)?)),
            HeaderKind::Uint16 => HeaderValue::Uint16(u16::from_le_bytes(fixed(kind, bytes)?)),
            HeaderKind::Uint32 => HeaderValue::Uint32(u32::from_le_bytes(fixed(kind, bytes)?)),
            HeaderKind::Uint64 => HeaderValue::Uint64(u64::from_le_bytes(fixed(kind, bytes)?)),
            HeaderKind::Uint128 => HeaderValue::Uint128(u128::from_le_bytes(fixed(kind, bytes)?)),
            HeaderKind::Float32 => HeaderValue::Float32(f32::from_le_bytes(fixed(kind, bytes)?)),
            HeaderKind::Float64 => HeaderValue::Float64(f64::from_le_bytes(fixed(kind, bytes)?)),
        })
    }
}

impl HeaderField {
    /// A field holding `value`.
    pub fn from_value(value: &HeaderValue) -> Self {
        HeaderField {
            kind: value.kind() as i32,
            value: value.to_bytes(),
        }
    }

    /// The typed value of this field.
    ///
    /// # Errors
    ///
    /// When the kind is not one this version knows, or the bytes do not fit it.
    pub fn typed(&self) -> Result<HeaderValue, ValidationError> {
        let kind = HeaderKind::try_from(self.kind)
            .map_err(|_| ValidationError::UnknownHeaderKind(self.kind))?;
        HeaderValue::from_bytes(kind, &self.value)
    }
}

impl Header {
    /// A header with a typed key and a typed value.
    pub fn new(key: HeaderValue, value: HeaderValue) -> Self {
        Header {
            key: Some(HeaderField::from_value(&key)),
            value: Some(HeaderField::from_value(&value)),
        }
    }

    /// The replay count this header carries, when it is the
    /// [`REPLAY_COUNT_HEADER`](crate::REPLAY_COUNT_HEADER) with a `uint32`
    /// value.
    pub fn replay_count(&self) -> Option<u32> {
        let (key, value) = (self.key.as_ref()?, self.value.as_ref()?);
        if key.kind != HeaderKind::String as i32
            || key.value.as_ref() != crate::REPLAY_COUNT_HEADER.as_bytes()
            || value.kind != HeaderKind::Uint32 as i32
        {
            return None;
        }
        Some(u32::from_le_bytes(value.value.as_ref().try_into().ok()?))
    }

    /// A header from a key and a value already in Iggy's encoding, with their
    /// kinds as Iggy's kind codes; the kinds are checked when the envelope is
    /// validated.
    pub fn from_raw_parts(key_kind: u8, key: Bytes, value_kind: u8, value: Bytes) -> Self {
        Header {
            key: Some(HeaderField {
                kind: i32::from(key_kind),
                value: key,
            }),
            value: Some(HeaderField {
                kind: i32::from(value_kind),
                value,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_iggy_encoding() {
        let values = [
            HeaderValue::Raw(Bytes::from_static(&[0, 255, 7])),
            HeaderValue::from("text"),
            HeaderValue::Bool(true),
            HeaderValue::Int8(-8),
            HeaderValue::Int16(-16),
            HeaderValue::Int32(-32),
            HeaderValue::Int64(i64::MIN),
            HeaderValue::Int128(i128::MIN),
            HeaderValue::Uint8(8),
            HeaderValue::Uint16(16),
            HeaderValue::Uint32(32),
            HeaderValue::Uint64(u64::MAX),
            HeaderValue::Uint128(u128::MAX),
            HeaderValue::Float32(1.5),
            HeaderValue::Float64(-2.25),
        ];
        for value in values {
            let field = HeaderField::from_value(&value);
            assert_eq!(field.kind, value.kind() as i32);
            assert_eq!(field.typed().unwrap(), value);
        }
    }

    #[test]
    fn wrong_lengths_and_bad_bytes_are_named() {
        let field = HeaderField {
            kind: HeaderKind::Uint64 as i32,
            value: Bytes::from_static(&[1, 2, 3]),
        };
        assert_eq!(
            field.typed(),
            Err(ValidationError::HeaderValueLength {
                kind: HeaderKind::Uint64,
                expected: 8,
                actual: 3
            })
        );
        let field = HeaderField {
            kind: HeaderKind::Bool as i32,
            value: Bytes::from_static(&[2]),
        };
        assert_eq!(field.typed(), Err(ValidationError::HeaderBadBool(2)));
        let field = HeaderField {
            kind: HeaderKind::String as i32,
            value: Bytes::from_static(&[0xff]),
        };
        assert_eq!(field.typed(), Err(ValidationError::HeaderNotUtf8));
        let field = HeaderField {
            kind: 99,
            value: Bytes::new(),
        };
        assert_eq!(field.typed(), Err(ValidationError::UnknownHeaderKind(99)));
    }
}
