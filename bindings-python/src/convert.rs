//! Conversions between the envelope's Rust values and Python values.

use bytes::Bytes;
use iggy_dlq_envelope::{
    ConnectorKind, ErrorCode, FailureStage, HeaderKind, HeaderValue, PayloadSchema,
};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyByteArray, PyBytes, PyString};

/// The readable name of an enum value: its protobuf name without the enum's
/// prefix (`ERROR_CODE_MALFORMED_PAYLOAD` is `MALFORMED_PAYLOAD`), or
/// `UNKNOWN(n)` for a value this version does not know (a newer producer's).
fn enum_name(name: Option<&'static str>, prefix: &str, value: i32) -> String {
    match name {
        Some(name) => name.strip_prefix(prefix).unwrap_or(name).to_owned(),
        None => format!("UNKNOWN({value})"),
    }
}

pub(crate) fn error_code_name(value: i32) -> String {
    let name = ErrorCode::try_from(value).ok().map(|v| v.as_str_name());
    enum_name(name, "ERROR_CODE_", value)
}

pub(crate) fn failure_stage_name(value: i32) -> String {
    let name = FailureStage::try_from(value).ok().map(|v| v.as_str_name());
    enum_name(name, "FAILURE_STAGE_", value)
}

pub(crate) fn connector_kind_name(value: i32) -> String {
    let name = ConnectorKind::try_from(value).ok().map(|v| v.as_str_name());
    enum_name(name, "CONNECTOR_KIND_", value)
}

pub(crate) fn payload_schema_name(value: i32) -> String {
    let name = PayloadSchema::try_from(value).ok().map(|v| v.as_str_name());
    enum_name(name, "PAYLOAD_SCHEMA_", value)
}

pub(crate) fn header_kind_name(kind: HeaderKind) -> String {
    enum_name(Some(kind.as_str_name()), "HEADER_KIND_", kind as i32)
}

/// Python's `repr` of a string, for the `__repr__` of the classes.
pub(crate) fn str_repr(py: Python<'_>, text: &str) -> PyResult<String> {
    PyString::new(py, text).repr()?.extract()
}

/// `datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)` and
/// `datetime.timedelta`, looked up once.
static EPOCH_AND_TIMEDELTA: PyOnceLock<(Py<PyAny>, Py<PyAny>)> = PyOnceLock::new();

/// Microseconds since the Unix epoch as a timezone-aware (UTC) `datetime`;
/// `None` for 0, which the schema uses for "not known".
pub(crate) fn datetime_from_micros(py: Python<'_>, micros: u64) -> PyResult<Py<PyAny>> {
    if micros == 0 {
        return Ok(py.None());
    }
    let (epoch, timedelta) = EPOCH_AND_TIMEDELTA.get_or_try_init(py, || -> PyResult<_> {
        let datetime = py.import("datetime")?;
        let utc = datetime.getattr("timezone")?.getattr("utc")?;
        let epoch = datetime
            .getattr("datetime")?
            .call1((1970, 1, 1, 0, 0, 0, 0, utc))?;
        Ok((epoch.unbind(), datetime.getattr("timedelta")?.unbind()))
    })?;
    let delta = timedelta
        .bind(py)
        .call1((0, micros / 1_000_000, micros % 1_000_000))?;
    Ok(epoch.bind(py).add(delta)?.unbind())
}

/// A typed header key or value as the Python value of its kind: `bytes`,
/// `str`, `bool`, `int` (every integer kind, 128-bit included) or `float`.
pub(crate) fn header_value<'py>(
    py: Python<'py>,
    value: &HeaderValue,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        HeaderValue::Raw(b) => PyBytes::new(py, b).into_any(),
        HeaderValue::String(s) => PyString::new(py, s).into_any(),
        HeaderValue::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        HeaderValue::Int8(v) => v.into_pyobject(py)?.into_any(),
        HeaderValue::Int16(v) => v.into_pyobject(py)?.into_any(),
        HeaderValue::Int32(v) => v.into_pyobject(py)?.into_any(),
        HeaderValue::Int64(v) => v.into_pyobject(py)?.into_any(),
        HeaderValue::Int128(v) => v.into_pyobject(py)?.into_any(),
        HeaderValue::Uint8(v) => v.into_pyobject(py)?.into_any(),
        HeaderValue::Uint16(v) => v.into_pyobject(py)?.into_any(),
        HeaderValue::Uint32(v) => v.into_pyobject(py)?.into_any(),
        HeaderValue::Uint64(v) => v.into_pyobject(py)?.into_any(),
        HeaderValue::Uint128(v) => v.into_pyobject(py)?.into_any(),
        HeaderValue::Float32(v) => f64::from(*v).into_pyobject(py)?.into_any(),
        HeaderValue::Float64(v) => v.into_pyobject(py)?.into_any(),
    })
}

/// A header key or value as text, for tables: strings as they are, numbers
/// and booleans as Python prints them, raw bytes as hex.
pub(crate) fn header_text(value: &HeaderValue) -> String {
    match value {
        HeaderValue::Raw(b) => b.iter().map(|byte| format!("{byte:02x}")).collect(),
        HeaderValue::String(s) => s.clone(),
        HeaderValue::Bool(true) => "True".to_owned(),
        HeaderValue::Bool(false) => "False".to_owned(),
        HeaderValue::Int8(v) => v.to_string(),
        HeaderValue::Int16(v) => v.to_string(),
        HeaderValue::Int32(v) => v.to_string(),
        HeaderValue::Int64(v) => v.to_string(),
        HeaderValue::Int128(v) => v.to_string(),
        HeaderValue::Uint8(v) => v.to_string(),
        HeaderValue::Uint16(v) => v.to_string(),
        HeaderValue::Uint32(v) => v.to_string(),
        HeaderValue::Uint64(v) => v.to_string(),
        HeaderValue::Uint128(v) => v.to_string(),
        HeaderValue::Float32(v) => format!("{v:?}"),
        HeaderValue::Float64(v) => format!("{v:?}"),
    }
}

/// A Python `bytes` object seen as the owner of a [`Bytes`] buffer, so that
/// decoding does not copy its input.
struct PyBytesOwner {
    // Keeps the bytes object, and so its buffer, alive.
    _object: Py<PyBytes>,
    ptr: *const u8,
    len: usize,
}

// SAFETY: a `bytes` object is immutable, and its buffer lives as long as the
// object, which `_object` keeps alive; reading it needs no lock. Dropping a
// `Py` without the GIL is allowed: PyO3 defers the decref.
unsafe impl Send for PyBytesOwner {}
// SAFETY: as for `Send`; the buffer is never written.
unsafe impl Sync for PyBytesOwner {}

impl AsRef<[u8]> for PyBytesOwner {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `ptr` and `len` describe the buffer of `_object`, which is
        // alive and immutable for as long as `self` is (see `Send`).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// The input of a decode: a `bytes` object is shared without a copy; a
/// `bytearray`, `memoryview` or other buffer is copied once.
pub(crate) fn input_bytes(data: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    if let Ok(bytes) = data.cast::<PyBytes>() {
        let slice = bytes.as_bytes();
        let owner = PyBytesOwner {
            ptr: slice.as_ptr(),
            len: slice.len(),
            _object: bytes.clone().unbind(),
        };
        return Ok(Bytes::from_owner(owner));
    }
    if let Ok(array) = data.cast::<PyByteArray>() {
        return Ok(Bytes::from(array.to_vec()));
    }
    // Any other object with the buffer protocol, through bytes(); a str or
    // an int is refused with a TypeError that says what was expected.
    if data.is_instance_of::<PyString>() || data.hasattr("__index__")? {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "expected bytes, bytearray or memoryview, got {}",
            data.get_type().name()?
        )));
    }
    let copied = data
        .py()
        .get_type::<PyBytes>()
        .call1((data,))
        .map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(format!(
                "expected bytes, bytearray or memoryview, got {}",
                data.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?;
    input_bytes(&copied)
}
