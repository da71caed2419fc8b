//! The records of a DLQ file, the embedded DLQ target `file://PATH`.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use iggy_dlq_envelope::dlq_file::{FileError, ReadOutcome, RecordReader};
use pyo3::prelude::*;

use crate::envelope::DlqEnvelope;
use crate::errors::{decode_error, file_error};

/// What a step of the reader found, computed without the GIL.
// One value per step, moved once and never stored: boxing would only add an
// allocation.
#[allow(clippy::large_enum_variant)]
enum Step {
    Record(
        u64,
        Result<iggy_dlq_envelope::DlqEnvelope, iggy_dlq_envelope::Error>,
    ),
    End,
    Failed(FileError),
}

/// Iterates over `(offset, DlqEnvelope)` for the records of a DLQ file, in
/// order, from record `offset` on and at most `limit` of them.
///
/// The offset of a record is its position among the file's records, from 0:
/// the DLQ offset of the file target. A torn last record (a crash while it
/// was written) ends the iteration; `torn_tail` then says where and how
/// long. A damaged record before the end raises `FileFormatError`; a record
/// that is not a valid envelope raises `DecodeError` naming its offset.
#[pyclass(module = "iggy_dlq")]
pub struct DlqFileReader {
    path: String,
    reader: Option<RecordReader<BufReader<File>>>,
    skip: u64,
    remaining: Option<u64>,
    torn_tail: Option<(u64, u64)>,
}

#[pymethods]
impl DlqFileReader {
    #[new]
    #[pyo3(signature = (path, offset = 0, limit = None))]
    fn new(py: Python<'_>, path: PathBuf, offset: u64, limit: Option<u64>) -> PyResult<Self> {
        let shown = path.display().to_string();
        let opened = py.detach(|| {
            let file = File::open(&path).map_err(FileError::from)?;
            RecordReader::new(BufReader::with_capacity(1 << 16, file))
        });
        let reader = opened.map_err(|err| file_error(py, &shown, err))?;
        Ok(DlqFileReader {
            path: shown,
            reader: Some(reader),
            skip: offset,
            remaining: limit,
            torn_tail: None,
        })
    }

    /// The file's path.
    #[getter]
    fn path(&self) -> &str {
        &self.path
    }

    /// `(valid_len, torn_bytes)` once the iteration ended on a torn last
    /// record: the file's intact part is `valid_len` bytes long, and the
    /// torn record's `torn_bytes` bytes follow it. `None` otherwise.
    #[getter]
    fn torn_tail(&self) -> Option<(u64, u64)> {
        self.torn_tail
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<Option<(u64, DlqEnvelope)>> {
        if self.remaining == Some(0) {
            self.reader = None;
        }
        let Some(reader) = self.reader.as_mut() else {
            return Ok(None);
        };
        let skip = &mut self.skip;
        let step = py.detach(|| {
            loop {
                match reader.next_record() {
                    Ok(Some(record)) if record.index < *skip => continue,
                    Ok(Some(record)) => {
                        *skip = 0;
                        break Step::Record(record.index, iggy_dlq_envelope::decode(record.data));
                    }
                    Ok(None) => break Step::End,
                    Err(err) => break Step::Failed(err),
                }
            }
        });
        match step {
            Step::Record(index, Ok(envelope)) => {
                if let Some(remaining) = self.remaining.as_mut() {
                    *remaining -= 1;
                }
                Ok(Some((index, DlqEnvelope::new(envelope))))
            }
            Step::Record(index, Err(err)) => {
                self.reader = None;
                let err = decode_error(py, &err);
                let message = format!("{}: record {index}: {}", self.path, err.value(py));
                Err(PyErr::from_type(err.get_type(py), message))
            }
            Step::End => {
                if let Some(ReadOutcome::TornTail {
                    valid_len,
                    torn_bytes,
                }) = self.reader.as_ref().and_then(RecordReader::outcome)
                {
                    self.torn_tail = Some((valid_len, torn_bytes));
                }
                self.reader = None;
                Ok(None)
            }
            Step::Failed(err) => {
                self.reader = None;
                Err(file_error(py, &self.path, err))
            }
        }
    }

    fn __repr__(&self) -> String {
        format!("DlqFileReader({:?})", self.path)
    }
}
