//! The native part of the `iggy_dlq` Python module, `iggy_dlq._native`.
//!
//! Decoding is done by [`iggy_dlq_envelope`], the same crate the SDK and the
//! runtime use, so Python sees exactly the envelopes they write: there is no
//! second copy of the schema here. This crate only turns the generated types
//! into Python objects:
//!
//! - [`DlqEnvelope`] and the classes of its parts ([`SinkOrigin`],
//!   [`SourceOrigin`], [`PayloadIntegrity`], [`Header`], [`Failure`],
//!   [`Connector`]), read-only, with Python values of the right type;
//! - [`decode`] and [`decode_many`];
//! - [`DlqFileReader`], the records of a DLQ file (`file://PATH`);
//! - [`IggyTopicReader`], the messages of a DLQ topic on an Iggy server
//!   (`iggy://...`), read with the runtime's Iggy client
//!   (`iggy_dlq_runtime::iggy_client`) on a tokio runtime of the extension;
//! - [`columns`], the envelopes as columns, which `iggy_dlq.to_arrow` turns
//!   into a `pyarrow.Table`.
//!
//! Errors are raised as the exception classes of `iggy_dlq._errors`
//! (`DecodeError`, `InvalidEnvelopeError`, `FileFormatError`,
//! `IggyConnectionError`, ...), with the message of the Rust error.
//!
//! The module is built by maturin from `bindings-python/pyproject.toml`; its
//! tests are in Python, in `bindings-python/tests`.

#![warn(missing_docs)]

mod convert;
mod envelope;
mod errors;
mod file;
mod iggy;

use pyo3::prelude::*;

pub use envelope::{
    Connector, DlqEnvelope, Failure, Header, PayloadIntegrity, SinkOrigin, SourceOrigin, columns,
    decode, decode_many,
};
pub use file::DlqFileReader;
pub use iggy::{IggyTopicReader, produce_for_tests};

/// The module `iggy_dlq._native`.
#[pymodule]
#[pyo3(name = "_native")]
fn native_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<DlqEnvelope>()?;
    m.add_class::<SinkOrigin>()?;
    m.add_class::<SourceOrigin>()?;
    m.add_class::<PayloadIntegrity>()?;
    m.add_class::<Header>()?;
    m.add_class::<Failure>()?;
    m.add_class::<Connector>()?;
    m.add_class::<DlqFileReader>()?;
    m.add_class::<IggyTopicReader>()?;
    m.add_function(wrap_pyfunction!(decode, m)?)?;
    m.add_function(wrap_pyfunction!(decode_many, m)?)?;
    m.add_function(wrap_pyfunction!(columns, m)?)?;
    // Private: set as an attribute, so that it stays out of `__all__`.
    m.setattr(
        "_produce_for_tests",
        wrap_pyfunction!(produce_for_tests, m)?,
    )?;
    m.add(
        "DEFAULT_MAX_ENVELOPE_LEN",
        iggy_dlq_envelope::DEFAULT_MAX_ENVELOPE_LEN,
    )?;
    m.add("ENVELOPE_TYPE_NAME", iggy_dlq_envelope::ENVELOPE_TYPE_NAME)?;
    m.add(
        "REPLAY_COUNT_HEADER",
        iggy_dlq_envelope::REPLAY_COUNT_HEADER,
    )?;
    Ok(())
}
