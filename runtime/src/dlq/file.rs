//! Durable DLQ files: the embedded file target and the outage spool.
//!
//! Both use the format of [`iggy_dlq_envelope::dlq_file`]. Every append is
//! one `write` of whole records followed by `fdatasync`, so that an
//! acknowledged dead letter survives a crash and a crash tears at most the
//! records of the append under way, which are not acknowledged.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use iggy_dlq_envelope::dlq_file::{self, FileError, MAGIC, ReadOutcome, RecordReader};

/// Why a DLQ file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DlqFileError {
    /// An I/O operation on the file failed.
    #[error("dlq file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// The file exists but is not a valid DLQ file.
    #[error("dlq file {path}: {source}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: FileError,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> DlqFileError + '_ {
    move |source| DlqFileError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What opening an existing file found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    /// Whole records in the file.
    pub records: u64,
    /// Bytes of a torn last record that were cut off.
    pub torn_bytes: u64,
}

/// An append-only DLQ file.
#[derive(Debug)]
pub struct DlqFileWriter {
    path: PathBuf,
    file: File,
    len: u64,
    records: u64,
    buf: Vec<u8>,
}

impl DlqFileWriter {
    /// Opens `path`, creating it (and its directory) when missing. An
    /// existing file is checked record by record; a torn last record is cut
    /// off so that appends continue after the last whole record.
    ///
    /// # Errors
    ///
    /// When the file cannot be created or read, or holds something other
    /// than a DLQ file, or is corrupt before its last record.
    pub fn open(path: impl Into<PathBuf>) -> Result<(Self, Recovery), DlqFileError> {
        let path = path.into();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let existing = file.metadata().map_err(io_err(&path))?.len();
        if existing == 0 {
            file.write_all(MAGIC).map_err(io_err(&path))?;
            file.sync_data().map_err(io_err(&path))?;
            sync_dir(&path)?;
            let writer = DlqFileWriter {
                path,
                file,
                len: MAGIC.len() as u64,
                records: 0,
                buf: Vec::new(),
            };
            return Ok((
                writer,
                Recovery {
                    records: 0,
                    torn_bytes: 0,
                },
            ));
        }
        let (records, valid_len, torn_bytes) = scan(&path, &mut file)?;
        if torn_bytes > 0 {
            file.set_len(valid_len).map_err(io_err(&path))?;
            file.sync_data().map_err(io_err(&path))?;
        }
        file.seek(SeekFrom::End(0)).map_err(io_err(&path))?;
        let writer = DlqFileWriter {
            path,
            file,
            len: valid_len,
            records,
            buf: Vec::new(),
        };
        Ok((
            writer,
            Recovery {
                records,
                torn_bytes,
            },
        ))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Length of the file in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file holds no records.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Records in the file.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Appends `records` in one write and syncs them to disk; when this
    /// returns `Ok`, they survive a crash.
    ///
    /// # Errors
    ///
    /// When writing or syncing fails; the records must then be treated as
    /// not written.
    pub fn append<'a>(
        &mut self,
        records: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), DlqFileError> {
        self.buf.clear();
        let mut count = 0;
        for record in records {
            if record.len() > dlq_file::MAX_RECORD_LEN {
                return Err(DlqFileError::Io {
                    path: self.path.clone(),
                    source: io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("record of {} bytes is too large", record.len()),
                    ),
                });
            }
            dlq_file::encode_record(record, &mut self.buf);
            count += 1;
        }
        if count == 0 {
            return Ok(());
        }
        let result = self
            .file
            .write_all(&self.buf)
            .and_then(|()| self.file.sync_data());
        if let Err(source) = result {
            // Cut a partial write off, so that later appends stay readable.
            let _ = self.file.set_len(self.len);
            return Err(DlqFileError::Io {
                path: self.path.clone(),
                source,
            });
        }
        self.len += self.buf.len() as u64;
        self.records += count;
        Ok(())
    }

    /// Empties the file (keeps the magic) and syncs.
    ///
    /// # Errors
    ///
    /// When truncating or syncing fails.
    pub fn reset(&mut self) -> Result<(), DlqFileError> {
        self.file
            .set_len(MAGIC.len() as u64)
            .and_then(|()| self.file.sync_data())
            .map_err(io_err(&self.path))?;
        self.len = MAGIC.len() as u64;
        self.records = 0;
        Ok(())
    }
}

fn scan(path: &Path, file: &mut File) -> Result<(u64, u64, u64), DlqFileError> {
    file.seek(SeekFrom::Start(0)).map_err(io_err(path))?;
    let format = |source| DlqFileError::Format {
        path: path.to_owned(),
        source,
    };
    let mut reader = RecordReader::new(BufReader::new(&mut *file)).map_err(format)?;
    let mut records = 0;
    while reader.next_record().map_err(format)?.is_some() {
        records += 1;
    }
    Ok(match reader.outcome() {
        Some(ReadOutcome::TornTail {
            valid_len,
            torn_bytes,
        }) => (records, valid_len, torn_bytes),
        Some(ReadOutcome::Clean { end }) => (records, end, 0),
        None => unreachable!("the reader reports an outcome once it returned None"),
    })
}

fn sync_dir(path: &Path) -> Result<(), DlqFileError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(dir))?;
    }
    Ok(())
}

/// Reads records of the file at `path` from file offset `from`, at most
/// `max` of them; returns them with the offset after the last one.
///
/// # Errors
///
/// When the file cannot be read or is corrupt.
pub fn read_records(path: &Path, from: u64, max: usize) -> Result<(Vec<Bytes>, u64), DlqFileError> {
    let mut file = File::open(path).map_err(io_err(path))?;
    let format = |source| DlqFileError::Format {
        path: path.to_owned(),
        source,
    };
    // Check the magic, then continue from the requested offset.
    RecordReader::new(&mut file).map_err(format)?;
    let start = from.max(MAGIC.len() as u64);
    file.seek(SeekFrom::Start(start)).map_err(io_err(path))?;
    let mut reader = RecordReader::resume(BufReader::new(file), start, 0);
    let mut out = Vec::new();
    while out.len() < max {
        match reader.next_record().map_err(format)? {
            Some(record) => out.push(record.data),
            None => break,
        }
    }
    let offset = reader.position();
    Ok((out, offset))
}

/// The outage spool of one DLQ: a DLQ file plus a cursor file that says how
/// far it was drained to Iggy.
///
/// Draining is at least once: a crash between a send to Iggy and the cursor
/// update sends those records again after the restart.
#[derive(Debug)]
pub struct Spool {
    writer: DlqFileWriter,
    cursor_path: PathBuf,
    cursor: u64,
}

impl Spool {
    /// Opens (or creates) the spool at `path` and its cursor `path.cursor`.
    ///
    /// # Errors
    ///
    /// As [`DlqFileWriter::open`], or when the cursor cannot be read.
    pub fn open(path: impl Into<PathBuf>) -> Result<(Self, Recovery), DlqFileError> {
        let path = path.into();
        let (writer, recovery) = DlqFileWriter::open(&path)?;
        let cursor_path = path.with_extension("cursor");
        let cursor = match std::fs::read(&cursor_path) {
            Ok(bytes) if bytes.len() == 8 => {
                u64::from_le_bytes(bytes.try_into().expect("checked length"))
            }
            Ok(_) => MAGIC.len() as u64,
            Err(e) if e.kind() == io::ErrorKind::NotFound => MAGIC.len() as u64,
            Err(e) => return Err(io_err(&cursor_path)(e)),
        };
        // A cursor past the end means the spool was emptied after the last
        // cursor write: nothing is left to drain.
        let cursor = cursor.clamp(MAGIC.len() as u64, writer.len());
        Ok((
            Spool {
                writer,
                cursor_path,
                cursor,
            },
            recovery,
        ))
    }

    /// The spool file's path.
    pub fn path(&self) -> &Path {
        self.writer.path()
    }

    /// Whether every spooled record was drained.
    pub fn is_drained(&self) -> bool {
        self.cursor >= self.writer.len()
    }

    /// Bytes not yet drained.
    pub fn pending_bytes(&self) -> u64 {
        self.writer.len() - self.cursor
    }

    /// Appends records durably.
    ///
    /// # Errors
    ///
    /// As [`DlqFileWriter::append`].
    pub fn append<'a>(
        &mut self,
        records: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), DlqFileError> {
        self.writer.append(records)
    }

    /// The next records to drain, at most `max`, and the cursor after them.
    ///
    /// # Errors
    ///
    /// When the spool cannot be read.
    pub fn peek(&self, max: usize) -> Result<(Vec<Bytes>, u64), DlqFileError> {
        read_records(self.writer.path(), self.cursor, max)
    }

    /// Records that everything before `cursor` reached Iggy; empties the
    /// spool once it is fully drained.
    ///
    /// # Errors
    ///
    /// When the cursor cannot be written.
    pub fn advance(&mut self, cursor: u64) -> Result<(), DlqFileError> {
        self.cursor = cursor;
        if self.is_drained() {
            // Truncate first: a crash before the cursor write leaves a
            // cursor past the end, which open() reads as drained.
            self.writer.reset()?;
            self.cursor = MAGIC.len() as u64;
        }
        let tmp = self.cursor_path.with_extension("cursor.tmp");
        std::fs::write(&tmp, self.cursor.to_le_bytes())
            .and_then(|()| File::open(&tmp)?.sync_all())
            .and_then(|()| std::fs::rename(&tmp, &self.cursor_path))
            .map_err(io_err(&self.cursor_path))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dlq/orders.dlq");
        let (mut w, rec) = DlqFileWriter::open(&path).unwrap();
        assert_eq!(rec.records, 0);
        w.append([&b"one"[..], &b"two"[..]]).unwrap();
        drop(w);
        let (w, rec) = DlqFileWriter::open(&path).unwrap();
        assert_eq!(
            rec,
            Recovery {
                records: 2,
                torn_bytes: 0
            }
        );
        assert_eq!(w.records(), 2);
    }

    #[test]
    fn a_torn_tail_is_cut_and_appends_continue_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.dlq");
        let (mut w, _) = DlqFileWriter::open(&path).unwrap();
        w.append([&b"kept"[..]]).unwrap();
        drop(w);
        // A crash in the middle of the next append.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[20, 0, 0, 0, 1, 2, 3, 4, b'x']).unwrap();
        drop(f);
        let (mut w, rec) = DlqFileWriter::open(&path).unwrap();
        assert_eq!(
            rec,
            Recovery {
                records: 1,
                torn_bytes: 9
            }
        );
        w.append([&b"after"[..]]).unwrap();
        let (records, _) = read_records(&path, 0, 10).unwrap();
        assert_eq!(
            records,
            vec![Bytes::from_static(b"kept"), Bytes::from_static(b"after")]
        );
    }

    #[test]
    fn a_foreign_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not-a-dlq");
        std::fs::write(&path, b"hello world").unwrap();
        assert!(matches!(
            DlqFileWriter::open(&path),
            Err(DlqFileError::Format { .. })
        ));
    }

    #[test]
    fn the_spool_drains_in_order_and_remembers_its_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.spool");
        let (mut spool, _) = Spool::open(&path).unwrap();
        assert!(spool.is_drained());
        spool.append([&b"a"[..], &b"b"[..], &b"c"[..]]).unwrap();
        let (first, cursor) = spool.peek(2).unwrap();
        assert_eq!(
            first,
            vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")]
        );
        spool.advance(cursor).unwrap();
        drop(spool);

        // After a restart, only what was not drained comes back.
        let (mut spool, rec) = Spool::open(&path).unwrap();
        assert_eq!(rec.records, 3);
        let (rest, cursor) = spool.peek(10).unwrap();
        assert_eq!(rest, vec![Bytes::from_static(b"c")]);
        spool.advance(cursor).unwrap();
        assert!(spool.is_drained());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), MAGIC.len() as u64);
        drop(spool);
        let (spool, _) = Spool::open(&path).unwrap();
        assert!(spool.is_drained());
    }
}
