//! `DlqEnvelope` and its parts as Python classes, and the decode functions.

use bytes::Bytes;
use iggy_dlq_envelope::{HeaderValue, Origin, v1};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::convert::{
    connector_kind_name, datetime_from_micros, error_code_name, failure_stage_name,
    header_kind_name, header_text, header_value, input_bytes, payload_schema_name, str_repr,
};
use crate::errors::{decode_error, raise};

/// The origin of a message that a sink connector consumed from an Iggy topic.
#[pyclass(module = "iggy_dlq", frozen, eq, get_all)]
#[derive(Debug, Clone, PartialEq)]
pub struct SinkOrigin {
    stream: String,
    stream_id: Option<u32>,
    topic: String,
    topic_id: Option<u32>,
    partition_id: u32,
    offset: u64,
    message_id: u128,
    checksum: u64,
    timestamp_micros: u64,
    origin_timestamp_micros: u64,
    consumer_group: String,
}

impl From<&v1::SinkOrigin> for SinkOrigin {
    fn from(sink: &v1::SinkOrigin) -> Self {
        SinkOrigin {
            stream: sink.stream.clone(),
            stream_id: sink.stream_id,
            topic: sink.topic.clone(),
            topic_id: sink.topic_id,
            partition_id: sink.partition_id,
            offset: sink.offset,
            message_id: sink.message_id(),
            checksum: sink.checksum,
            timestamp_micros: sink.timestamp_micros,
            origin_timestamp_micros: sink.origin_timestamp_micros,
            consumer_group: sink.consumer_group.clone(),
        }
    }
}

#[pymethods]
impl SinkOrigin {
    /// When the Iggy server appended the message; `None` when not known.
    #[getter]
    fn timestamp(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        datetime_from_micros(py, self.timestamp_micros)
    }

    /// The message's origin timestamp (set by its producer); `None` when not
    /// known.
    #[getter]
    fn origin_timestamp(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        datetime_from_micros(py, self.origin_timestamp_micros)
    }

    /// The fields as a `dict`, named as in the schema.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("stream", &self.stream)?;
        d.set_item("stream_id", self.stream_id)?;
        d.set_item("topic", &self.topic)?;
        d.set_item("topic_id", self.topic_id)?;
        d.set_item("partition_id", self.partition_id)?;
        d.set_item("offset", self.offset)?;
        d.set_item("message_id", self.message_id)?;
        d.set_item("checksum", self.checksum)?;
        d.set_item("timestamp_micros", self.timestamp_micros)?;
        d.set_item("origin_timestamp_micros", self.origin_timestamp_micros)?;
        d.set_item("consumer_group", &self.consumer_group)?;
        Ok(d)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "SinkOrigin(stream={}, topic={}, partition_id={}, offset={}, message_id={})",
            str_repr(py, &self.stream)?,
            str_repr(py, &self.topic)?,
            self.partition_id,
            self.offset,
            self.message_id
        ))
    }
}

/// The origin of a record that a source connector read from an external
/// system and could not turn into an Iggy message.
#[pyclass(module = "iggy_dlq", frozen, eq)]
#[derive(Debug, Clone, PartialEq)]
pub struct SourceOrigin {
    #[pyo3(get)]
    system: String,
    #[pyo3(get)]
    resource: String,
    position: Bytes,
    record_key: Option<Bytes>,
    #[pyo3(get)]
    target_stream: String,
    #[pyo3(get)]
    target_topic: String,
}

impl From<&v1::SourceOrigin> for SourceOrigin {
    fn from(source: &v1::SourceOrigin) -> Self {
        SourceOrigin {
            system: source.system.clone(),
            resource: source.resource.clone(),
            position: source.position.clone(),
            record_key: source.record_key.clone(),
            target_stream: source.target_stream.clone(),
            target_topic: source.target_topic.clone(),
        }
    }
}

#[pymethods]
impl SourceOrigin {
    /// The opaque position of the record in the external system.
    #[getter]
    fn position<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.position)
    }

    /// The record's key in the external system, or `None`.
    #[getter]
    fn record_key<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.record_key.as_ref().map(|key| PyBytes::new(py, key))
    }

    /// The fields as a `dict`, named as in the schema.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("system", &self.system)?;
        d.set_item("resource", &self.resource)?;
        d.set_item("position", self.position(py))?;
        d.set_item("record_key", self.record_key(py))?;
        d.set_item("target_stream", &self.target_stream)?;
        d.set_item("target_topic", &self.target_topic)?;
        Ok(d)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "SourceOrigin(system={}, resource={}, target_stream={}, target_topic={})",
            str_repr(py, &self.system)?,
            str_repr(py, &self.resource)?,
            str_repr(py, &self.target_stream)?,
            str_repr(py, &self.target_topic)?
        ))
    }
}

/// Whether the payload is the whole original payload.
#[pyclass(module = "iggy_dlq", frozen, eq)]
#[derive(Debug, Clone, PartialEq)]
pub struct PayloadIntegrity {
    #[pyo3(get)]
    original_length: u64,
    #[pyo3(get)]
    truncated: bool,
    original_sha256: Bytes,
}

impl From<&v1::PayloadIntegrity> for PayloadIntegrity {
    fn from(integrity: &v1::PayloadIntegrity) -> Self {
        PayloadIntegrity {
            original_length: integrity.original_length,
            truncated: integrity.truncated,
            original_sha256: integrity.original_sha256.clone(),
        }
    }
}

#[pymethods]
impl PayloadIntegrity {
    /// SHA-256 of the original payload; empty unless `truncated`.
    #[getter]
    fn original_sha256<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.original_sha256)
    }

    /// The fields as a `dict`, named as in the schema.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("original_length", self.original_length)?;
        d.set_item("truncated", self.truncated)?;
        d.set_item("original_sha256", self.original_sha256(py))?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "PayloadIntegrity(original_length={}, truncated={})",
            self.original_length,
            if self.truncated { "True" } else { "False" }
        )
    }
}

/// One Iggy user header: a typed key and a typed value, with their kinds.
#[pyclass(module = "iggy_dlq", frozen, eq)]
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    key: HeaderValue,
    value: HeaderValue,
}

impl Header {
    fn from_proto(py: Python<'_>, header: &v1::Header) -> PyResult<Self> {
        let typed = |field: &Option<v1::HeaderField>| match field.as_ref().map(|f| f.typed()) {
            Some(Ok(value)) => Ok(value),
            Some(Err(err)) => Err(raise(
                py,
                "InvalidEnvelopeError",
                format!("invalid dlq envelope: {err}"),
            )),
            None => Err(raise(
                py,
                "InvalidEnvelopeError",
                "invalid dlq envelope: a header has no key or value".to_owned(),
            )),
        };
        Ok(Header {
            key: typed(&header.key)?,
            value: typed(&header.value)?,
        })
    }

    fn dict<'py>(&self, py: Python<'py>, text: bool) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        if text {
            d.set_item("key", header_text(&self.key))?;
        } else {
            d.set_item("key", header_value(py, &self.key)?)?;
        }
        d.set_item("key_kind", header_kind_name(self.key.kind()))?;
        if text {
            d.set_item("value", header_text(&self.value))?;
        } else {
            d.set_item("value", header_value(py, &self.value)?)?;
        }
        d.set_item("value_kind", header_kind_name(self.value.kind()))?;
        Ok(d)
    }
}

#[pymethods]
impl Header {
    /// The key as the Python value of its kind.
    #[getter]
    fn key<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        header_value(py, &self.key)
    }

    /// The key's Iggy kind, such as `"STRING"` or `"UINT64"`.
    #[getter]
    fn key_kind(&self) -> String {
        header_kind_name(self.key.kind())
    }

    /// The value as the Python value of its kind.
    #[getter]
    fn value<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        header_value(py, &self.value)
    }

    /// The value's Iggy kind, such as `"STRING"` or `"UINT64"`.
    #[getter]
    fn value_kind(&self) -> String {
        header_kind_name(self.value.kind())
    }

    /// `{"key": ..., "key_kind": ..., "value": ..., "value_kind": ...}`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.dict(py, false)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Header(key={}, key_kind={}, value={}, value_kind={})",
            self.key(py)?.repr()?,
            str_repr(py, &self.key_kind())?,
            self.value(py)?.repr()?,
            str_repr(py, &self.value_kind())?
        ))
    }
}

/// Why a message failed.
#[pyclass(module = "iggy_dlq", frozen, eq, get_all)]
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    reason: String,
    code: String,
    stage: String,
    retryable: bool,
    detail: Vec<String>,
    attempts: u32,
    first_failed_at_micros: u64,
    last_failed_at_micros: u64,
}

impl From<&v1::Failure> for Failure {
    fn from(failure: &v1::Failure) -> Self {
        Failure {
            reason: failure.reason.clone(),
            code: error_code_name(failure.code),
            stage: failure_stage_name(failure.stage),
            retryable: failure.retryable,
            detail: failure.detail.clone(),
            attempts: failure.attempts,
            first_failed_at_micros: failure.first_failed_at_micros,
            last_failed_at_micros: failure.last_failed_at_micros,
        }
    }
}

#[pymethods]
impl Failure {
    /// When the first attempt failed; `None` when not known.
    #[getter]
    fn first_failed_at(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        datetime_from_micros(py, self.first_failed_at_micros)
    }

    /// When the last attempt failed; `None` when not known.
    #[getter]
    fn last_failed_at(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        datetime_from_micros(py, self.last_failed_at_micros)
    }

    /// The fields as a `dict`, named as in the schema.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("reason", &self.reason)?;
        d.set_item("code", &self.code)?;
        d.set_item("stage", &self.stage)?;
        d.set_item("retryable", self.retryable)?;
        d.set_item("detail", &self.detail)?;
        d.set_item("attempts", self.attempts)?;
        d.set_item("first_failed_at_micros", self.first_failed_at_micros)?;
        d.set_item("last_failed_at_micros", self.last_failed_at_micros)?;
        Ok(d)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Failure(code={}, stage={}, reason={}, retryable={}, attempts={})",
            str_repr(py, &self.code)?,
            str_repr(py, &self.stage)?,
            str_repr(py, &self.reason)?,
            if self.retryable { "True" } else { "False" },
            self.attempts
        ))
    }
}

/// The connector that dead-lettered the message.
#[pyclass(module = "iggy_dlq", frozen, eq, get_all)]
#[derive(Debug, Clone, PartialEq)]
pub struct Connector {
    key: String,
    name: String,
    kind: String,
    plugin_version: String,
    runtime_instance_id: String,
}

impl From<&v1::Connector> for Connector {
    fn from(connector: &v1::Connector) -> Self {
        Connector {
            key: connector.key.clone(),
            name: connector.name.clone(),
            kind: connector_kind_name(connector.kind),
            plugin_version: connector.plugin_version.clone(),
            runtime_instance_id: connector.runtime_instance_id.clone(),
        }
    }
}

#[pymethods]
impl Connector {
    /// The fields as a `dict`, named as in the schema.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("key", &self.key)?;
        d.set_item("name", &self.name)?;
        d.set_item("kind", &self.kind)?;
        d.set_item("plugin_version", &self.plugin_version)?;
        d.set_item("runtime_instance_id", &self.runtime_instance_id)?;
        Ok(d)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Connector(key={}, name={}, kind={}, plugin_version={})",
            str_repr(py, &self.key)?,
            str_repr(py, &self.name)?,
            str_repr(py, &self.kind)?,
            str_repr(py, &self.plugin_version)?
        ))
    }
}

/// One dead letter, decoded and validated.
///
/// Read-only. The payload is copied into a Python `bytes` once, on first
/// access; the other parts are built on access.
#[pyclass(module = "iggy_dlq", frozen, eq)]
pub struct DlqEnvelope {
    inner: iggy_dlq_envelope::DlqEnvelope,
    payload: PyOnceLock<Py<PyBytes>>,
}

impl PartialEq for DlqEnvelope {
    fn eq(&self, other: &Self) -> bool {
        self.inner == other.inner
    }
}

impl DlqEnvelope {
    pub(crate) fn new(inner: iggy_dlq_envelope::DlqEnvelope) -> Self {
        DlqEnvelope {
            inner,
            payload: PyOnceLock::new(),
        }
    }

    fn payload_object<'py>(&self, py: Python<'py>) -> &Bound<'py, PyBytes> {
        self.payload
            .get_or_init(py, || PyBytes::new(py, &self.inner.payload).unbind())
            .bind(py)
    }

    fn typed_headers(&self, py: Python<'_>) -> PyResult<Vec<Header>> {
        self.inner
            .headers
            .iter()
            .map(|header| Header::from_proto(py, header))
            .collect()
    }

    fn failure_ref(&self) -> Failure {
        Failure::from(
            self.inner
                .failure
                .as_ref()
                .unwrap_or(&v1::Failure::default()),
        )
    }

    fn connector_ref(&self) -> Connector {
        Connector::from(
            self.inner
                .connector
                .as_ref()
                .unwrap_or(&v1::Connector::default()),
        )
    }

    fn integrity_ref(&self) -> PayloadIntegrity {
        PayloadIntegrity::from(
            self.inner
                .payload_integrity
                .as_ref()
                .unwrap_or(&v1::PayloadIntegrity::default()),
        )
    }
}

#[pymethods]
impl DlqEnvelope {
    /// `"sink"` or `"source"`: which of `sink` and `source` is set.
    #[getter]
    fn origin(&self) -> &'static str {
        match self.inner.origin {
            Some(Origin::Source(_)) => "source",
            _ => "sink",
        }
    }

    /// The sink origin, or `None` for a source's record.
    #[getter]
    fn sink(&self) -> Option<SinkOrigin> {
        match &self.inner.origin {
            Some(Origin::Sink(sink)) => Some(SinkOrigin::from(sink)),
            _ => None,
        }
    }

    /// The source origin, or `None` for a sink's message.
    #[getter]
    fn source(&self) -> Option<SourceOrigin> {
        match &self.inner.origin {
            Some(Origin::Source(source)) => Some(SourceOrigin::from(source)),
            _ => None,
        }
    }

    /// The payload as received (or its prefix, see `payload_integrity`).
    #[getter]
    fn payload<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        self.payload_object(py).clone()
    }

    /// The payload's declared schema, such as `"JSON"` or `"RAW"`.
    #[getter]
    fn payload_schema(&self) -> String {
        payload_schema_name(self.inner.payload_schema)
    }

    /// Whether `payload` is the whole original payload.
    #[getter]
    fn payload_integrity(&self) -> PayloadIntegrity {
        self.integrity_ref()
    }

    /// The headers as a `dict` of typed keys to typed values. Two keys that
    /// are equal in Python (the string `"1"` is not, but `1` and `True` are)
    /// keep the last; `headers_typed` has every header with its kinds.
    #[getter]
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for header in self.typed_headers(py)? {
            d.set_item(
                header_value(py, &header.key)?,
                header_value(py, &header.value)?,
            )?;
        }
        Ok(d)
    }

    /// Every header in order, with its key's and value's Iggy kinds.
    #[getter]
    fn headers_typed(&self, py: Python<'_>) -> PyResult<Vec<Header>> {
        self.typed_headers(py)
    }

    /// Why the message failed.
    #[getter]
    fn failure(&self) -> Failure {
        self.failure_ref()
    }

    /// Which connector failed it.
    #[getter]
    fn connector(&self) -> Connector {
        self.connector_ref()
    }

    /// When the envelope was written, in microseconds since the Unix epoch.
    #[getter]
    fn written_at_micros(&self) -> u64 {
        self.inner.written_at_micros
    }

    /// When the envelope was written, as a UTC `datetime`.
    #[getter]
    fn written_at(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        datetime_from_micros(py, self.inner.written_at_micros)
    }

    /// How many times the message was replayed from a DLQ and failed again.
    #[getter]
    fn replay_count(&self) -> u32 {
        self.inner.replay_count
    }

    /// The envelope in its protobuf encoding, as produced to the DLQ topic.
    fn encode<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.encode_to_bytes())
    }

    /// The envelope as a `dict` shaped like the schema: field names as in
    /// the schema, the origin under `"sink"` or `"source"` (the other is
    /// `None`), enums by readable name, the message id as an `int`, times as
    /// microseconds, headers as a list of `Header.to_dict()`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        match self.sink() {
            Some(sink) => d.set_item("sink", sink.to_dict(py)?)?,
            None => d.set_item("sink", py.None())?,
        }
        match self.source() {
            Some(source) => d.set_item("source", source.to_dict(py)?)?,
            None => d.set_item("source", py.None())?,
        }
        d.set_item("payload", self.payload_object(py))?;
        d.set_item("payload_schema", self.payload_schema())?;
        d.set_item("payload_integrity", self.integrity_ref().to_dict(py)?)?;
        let headers = PyList::empty(py);
        for header in self.typed_headers(py)? {
            headers.append(header.to_dict(py)?)?;
        }
        d.set_item("headers", headers)?;
        d.set_item("failure", self.failure_ref().to_dict(py)?)?;
        d.set_item("connector", self.connector_ref().to_dict(py)?)?;
        d.set_item("written_at_micros", self.inner.written_at_micros)?;
        d.set_item("replay_count", self.inner.replay_count)?;
        Ok(d)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let origin = match &self.inner.origin {
            Some(Origin::Sink(s)) => format!(
                "sink {}/{} partition {} offset {}",
                s.stream, s.topic, s.partition_id, s.offset
            ),
            Some(Origin::Source(s)) => {
                format!("source {} {}", s.system, str_repr(py, &s.resource)?)
            }
            None => "no origin".to_owned(),
        };
        let failure = self.failure_ref();
        let written = self.written_at(py)?;
        let written = written.bind(py);
        let written = if written.is_none() {
            "unknown".to_owned()
        } else {
            written.call_method0("isoformat")?.extract::<String>()?
        };
        Ok(format!(
            "<DlqEnvelope {origin}: {} at {} by {} ({}), payload {} bytes {}{}, written {written}>",
            failure.code,
            failure.stage,
            str_repr(py, &self.connector_ref().key)?,
            str_repr(py, &failure.reason)?,
            self.inner.payload.len(),
            self.payload_schema(),
            if self.integrity_ref().truncated {
                " (truncated)"
            } else {
                ""
            },
        ))
    }
}

/// Decodes and validates one encoded envelope (one Iggy message, one DLQ
/// file record).
///
/// Raises `DecodeError` for bytes that are no envelope, and its subclass
/// `InvalidEnvelopeError` for an envelope that breaks a rule of the schema.
#[pyfunction]
pub fn decode(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<DlqEnvelope> {
    let bytes = input_bytes(data)?;
    match iggy_dlq_envelope::decode(bytes) {
        Ok(envelope) => Ok(DlqEnvelope::new(envelope)),
        Err(err) => Err(decode_error(py, &err)),
    }
}

/// Decodes every item of an iterable of encoded envelopes, in order, without
/// holding the GIL while decoding.
///
/// Raises as `decode` does, for the first item that fails, with its index.
#[pyfunction]
pub fn decode_many(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Vec<DlqEnvelope>> {
    let inputs = data
        .try_iter()?
        .map(|item| input_bytes(&item?))
        .collect::<PyResult<Vec<Bytes>>>()?;
    let decoded = py.detach(|| {
        inputs
            .into_iter()
            .map(iggy_dlq_envelope::decode)
            .collect::<Vec<_>>()
    });
    decoded
        .into_iter()
        .enumerate()
        .map(|(index, result)| match result {
            Ok(envelope) => Ok(DlqEnvelope::new(envelope)),
            Err(err) => {
                let err = decode_error(py, &err);
                let message = format!("item {index}: {}", err.value(py));
                Err(PyErr::from_type(err.get_type(py), message))
            }
        })
        .collect()
}

/// The envelopes as columns, one `list` per column, for
/// `iggy_dlq.to_arrow`: the origin flattened into `stream`/`topic` (where a
/// sink's message came from, or where a source's record was going) and
/// `sink_*` / `source_*` columns, `None` where a column does not apply;
/// times as microseconds (`None` for unknown); headers as text.
#[pyfunction]
pub fn columns<'py>(
    py: Python<'py>,
    envelopes: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let mut origin = Vec::new();
    let mut stream = Vec::new();
    let mut topic = Vec::new();
    let mut partition_id: Vec<Option<u32>> = Vec::new();
    let mut offset: Vec<Option<u64>> = Vec::new();
    let mut message_id: Vec<Option<String>> = Vec::new();
    let mut iggy_timestamp: Vec<Option<u64>> = Vec::new();
    let mut origin_timestamp: Vec<Option<u64>> = Vec::new();
    let mut consumer_group: Vec<Option<String>> = Vec::new();
    let mut source_system: Vec<Option<String>> = Vec::new();
    let mut source_resource: Vec<Option<String>> = Vec::new();
    let mut source_position: Vec<Option<Bound<'py, PyBytes>>> = Vec::new();
    let mut source_record_key: Vec<Option<Bound<'py, PyBytes>>> = Vec::new();
    let mut payload = Vec::new();
    let mut payload_schema = Vec::new();
    let mut payload_length = Vec::new();
    let mut payload_truncated = Vec::new();
    let mut payload_sha256: Vec<Option<Bound<'py, PyBytes>>> = Vec::new();
    let headers = PyList::empty(py);
    let mut reason = Vec::new();
    let mut code = Vec::new();
    let mut stage = Vec::new();
    let mut retryable = Vec::new();
    let mut detail = Vec::new();
    let mut attempts = Vec::new();
    let mut first_failed_at = Vec::new();
    let mut last_failed_at = Vec::new();
    let mut connector_key = Vec::new();
    let mut connector_name = Vec::new();
    let mut connector_kind = Vec::new();
    let mut plugin_version = Vec::new();
    let mut runtime_instance_id = Vec::new();
    let mut written_at = Vec::new();
    let mut replay_count = Vec::new();

    let known = |micros: u64| (micros != 0).then_some(micros);
    for item in envelopes.try_iter()? {
        let item = item?;
        let envelope = item.cast::<DlqEnvelope>()?.get();
        let inner = &envelope.inner;
        match &inner.origin {
            Some(Origin::Source(s)) => {
                origin.push("source");
                stream.push(s.target_stream.clone());
                topic.push(s.target_topic.clone());
                partition_id.push(None);
                offset.push(None);
                message_id.push(None);
                iggy_timestamp.push(None);
                origin_timestamp.push(None);
                consumer_group.push(None);
                source_system.push(Some(s.system.clone()));
                source_resource.push(Some(s.resource.clone()));
                source_position.push(Some(PyBytes::new(py, &s.position)));
                source_record_key.push(s.record_key.as_ref().map(|k| PyBytes::new(py, k)));
            }
            other => {
                let default = v1::SinkOrigin::default();
                let s = match other {
                    Some(Origin::Sink(s)) => s,
                    _ => &default,
                };
                origin.push("sink");
                stream.push(s.stream.clone());
                topic.push(s.topic.clone());
                partition_id.push(Some(s.partition_id));
                offset.push(Some(s.offset));
                message_id.push(Some(s.message_id().to_string()));
                iggy_timestamp.push(known(s.timestamp_micros));
                origin_timestamp.push(known(s.origin_timestamp_micros));
                consumer_group.push(Some(s.consumer_group.clone()));
                source_system.push(None);
                source_resource.push(None);
                source_position.push(None);
                source_record_key.push(None);
            }
        }
        payload.push(envelope.payload_object(py).clone());
        payload_schema.push(envelope.payload_schema());
        let integrity = envelope.integrity_ref();
        payload_length.push(integrity.original_length);
        payload_truncated.push(integrity.truncated);
        payload_sha256.push(
            integrity
                .truncated
                .then(|| PyBytes::new(py, &integrity.original_sha256)),
        );
        let row = PyList::empty(py);
        for header in envelope.typed_headers(py)? {
            row.append(header.dict(py, true)?)?;
        }
        headers.append(row)?;
        let failure = envelope.failure_ref();
        first_failed_at.push(known(failure.first_failed_at_micros));
        last_failed_at.push(known(failure.last_failed_at_micros));
        reason.push(failure.reason);
        code.push(failure.code);
        stage.push(failure.stage);
        retryable.push(failure.retryable);
        detail.push(failure.detail);
        attempts.push(failure.attempts);
        let connector = envelope.connector_ref();
        connector_key.push(connector.key);
        connector_name.push(connector.name);
        connector_kind.push(connector.kind);
        plugin_version.push(connector.plugin_version);
        runtime_instance_id.push(connector.runtime_instance_id);
        written_at.push(known(inner.written_at_micros));
        replay_count.push(inner.replay_count);
    }

    let d = PyDict::new(py);
    d.set_item("origin", origin)?;
    d.set_item("stream", stream)?;
    d.set_item("topic", topic)?;
    d.set_item("sink_partition_id", partition_id)?;
    d.set_item("sink_offset", offset)?;
    d.set_item("sink_message_id", message_id)?;
    d.set_item("sink_timestamp", iggy_timestamp)?;
    d.set_item("sink_origin_timestamp", origin_timestamp)?;
    d.set_item("sink_consumer_group", consumer_group)?;
    d.set_item("source_system", source_system)?;
    d.set_item("source_resource", source_resource)?;
    d.set_item("source_position", source_position)?;
    d.set_item("source_record_key", source_record_key)?;
    d.set_item("payload", payload)?;
    d.set_item("payload_schema", payload_schema)?;
    d.set_item("payload_original_length", payload_length)?;
    d.set_item("payload_truncated", payload_truncated)?;
    d.set_item("payload_original_sha256", payload_sha256)?;
    d.set_item("headers", headers)?;
    d.set_item("failure_reason", reason)?;
    d.set_item("failure_code", code)?;
    d.set_item("failure_stage", stage)?;
    d.set_item("failure_retryable", retryable)?;
    d.set_item("failure_detail", detail)?;
    d.set_item("failure_attempts", attempts)?;
    d.set_item("first_failed_at", first_failed_at)?;
    d.set_item("last_failed_at", last_failed_at)?;
    d.set_item("connector_key", connector_key)?;
    d.set_item("connector_name", connector_name)?;
    d.set_item("connector_kind", connector_kind)?;
    d.set_item("connector_plugin_version", plugin_version)?;
    d.set_item("connector_runtime_instance_id", runtime_instance_id)?;
    d.set_item("written_at", written_at)?;
    d.set_item("replay_count", replay_count)?;
    Ok(d)
}
