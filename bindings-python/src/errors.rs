//! Rust errors as the Python exceptions of `iggy_dlq._errors`.
//!
//! The exception classes are defined in Python, where `DecodeError` can be
//! both an `IggyDlqError` and a `ValueError`; they are looked up once.

use iggy_dlq_envelope::Error as EnvelopeError;
use iggy_dlq_envelope::dlq_file::FileError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

static ERRORS_MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// The exception class `name` of `iggy_dlq._errors`.
fn class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyType>> {
    let module =
        ERRORS_MODULE.get_or_try_init(py, || py.import("iggy_dlq._errors").map(Bound::unbind))?;
    Ok(module.bind(py).getattr(name)?.cast_into::<PyType>()?)
}

/// A Python exception of class `name` with `message`; when the class cannot
/// be found, the error saying so.
pub(crate) fn raise(py: Python<'_>, name: &str, message: String) -> PyErr {
    match class(py, name) {
        Ok(cls) => PyErr::from_type(cls, message),
        Err(err) => err,
    }
}

/// `InvalidEnvelopeError` for an envelope that breaks a rule of the schema,
/// `DecodeError` for everything else.
pub(crate) fn decode_error(py: Python<'_>, error: &EnvelopeError) -> PyErr {
    let name = match error {
        EnvelopeError::Invalid(_) => "InvalidEnvelopeError",
        _ => "DecodeError",
    };
    raise(py, name, error.to_string())
}

/// `OSError` (of the matching subclass) for a failed read, `FileFormatError`
/// for a file that is not a DLQ file or is corrupt.
pub(crate) fn file_error(py: Python<'_>, path: &str, error: FileError) -> PyErr {
    match error {
        FileError::Io(io) => {
            let err = PyErr::from(io);
            // Name the file, as open() does.
            let _ = err.value(py).setattr("filename", path);
            err
        }
        other => raise(py, "FileFormatError", format!("{path}: {other}")),
    }
}
