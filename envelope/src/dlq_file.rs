//! The DLQ file format: the embedded default DLQ target (`file://PATH`) and
//! the runtime's spool while the Iggy server is unreachable.
//!
//! A file is an 8-byte magic, `IGGYDLQ1`, followed by records. Each record is
//!
//! ```text
//! u32 little-endian  length of the data
//! u32 little-endian  CRC-32C of the data
//! [u8; length]       the data: one encoded DlqEnvelope, the same bytes as
//!                    the Iggy message it is or becomes
//! ```
//!
//! Records are only ever appended. A crash can leave the last record torn (a
//! short header, short data, or data whose checksum does not match and that
//! reaches the end of the file); [`RecordReader`] reports it as
//! [`ReadOutcome::TornTail`] and everything before it is intact. A bad record
//! followed by more data is corruption, not a crash, and is an error.
//!
//! # Example
//!
//! ```
//! use iggy_dlq_envelope::dlq_file::{self, ReadOutcome, RecordReader};
//!
//! let mut file = Vec::new();
//! dlq_file::write_magic(&mut file).unwrap();
//! dlq_file::write_record(&mut file, b"first").unwrap();
//! dlq_file::write_record(&mut file, b"second").unwrap();
//! file.extend_from_slice(&[9, 0, 0]); // a torn third record
//!
//! let mut reader = RecordReader::new(&file[..]).unwrap();
//! assert_eq!(&reader.next_record().unwrap().unwrap().data[..], b"first");
//! assert_eq!(&reader.next_record().unwrap().unwrap().data[..], b"second");
//! assert!(reader.next_record().unwrap().is_none());
//! assert!(matches!(reader.outcome(), Some(ReadOutcome::TornTail { .. })));
//! ```

use std::io::{self, Read, Write};

use bytes::Bytes;

/// The first eight bytes of every DLQ file.
pub const MAGIC: &[u8; 8] = b"IGGYDLQ1";

/// Bytes before each record's data: length and CRC-32C.
pub const RECORD_HEADER_LEN: usize = 8;

/// The largest record a reader accepts (matches
/// [`DEFAULT_MAX_ENVELOPE_LEN`](crate::DEFAULT_MAX_ENVELOPE_LEN)); a longer
/// length field is corruption.
pub const MAX_RECORD_LEN: usize = crate::DEFAULT_MAX_ENVELOPE_LEN;

/// Why a DLQ file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// Reading failed.
    #[error("cannot read dlq file: {0}")]
    Io(#[from] io::Error),
    /// The file does not start with [`MAGIC`].
    #[error("not a dlq file: it does not start with the magic `IGGYDLQ1`")]
    BadMagic,
    /// A record other than the last is damaged.
    #[error("dlq file is corrupt at byte {offset}: {what}")]
    Corrupt {
        /// File offset of the damaged record.
        offset: u64,
        /// What is wrong with it.
        what: &'static str,
    },
    /// A record is longer than [`MAX_RECORD_LEN`].
    #[error("dlq file record at byte {offset} claims {len} bytes, more than {MAX_RECORD_LEN}")]
    RecordTooLarge {
        /// File offset of the record.
        offset: u64,
        /// Its claimed length.
        len: u64,
    },
}

/// Writes the file magic; call once on a new, empty file.
///
/// # Errors
///
/// What the writer returns.
pub fn write_magic(out: &mut impl Write) -> io::Result<()> {
    out.write_all(MAGIC)
}

/// Appends one record in a single write, so that a crash tears at most this
/// record.
///
/// # Errors
///
/// What the writer returns; [`io::ErrorKind::InvalidInput`] for data longer
/// than [`MAX_RECORD_LEN`].
pub fn write_record(out: &mut impl Write, data: &[u8]) -> io::Result<()> {
    if data.len() > MAX_RECORD_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "dlq record of {} bytes exceeds {MAX_RECORD_LEN}",
                data.len()
            ),
        ));
    }
    let mut buf = Vec::with_capacity(RECORD_HEADER_LEN + data.len());
    encode_record(data, &mut buf);
    out.write_all(&buf)
}

/// Appends one record's bytes (header and data) to `buf`.
pub fn encode_record(data: &[u8], buf: &mut Vec<u8>) {
    // MAX_RECORD_LEN < u32::MAX, and callers that skip write_record get a
    // record a reader refuses, not a wrapped length.
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&crc32c::crc32c(data).to_le_bytes());
    buf.extend_from_slice(data);
}

/// One record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Position of the record among the file's records, from 0: the DLQ
    /// offset of the file target.
    pub index: u64,
    /// File offset of the record's header.
    pub file_offset: u64,
    /// The record's data.
    pub data: Bytes,
}

/// How a read of the whole file ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Every byte belonged to a whole record.
    Clean {
        /// Length of the file: where the next record goes.
        end: u64,
    },
    /// The last record is torn; the file's good part ends at `valid_len`,
    /// and a writer continues there after truncating the file to it.
    TornTail {
        /// Length of the intact part of the file.
        valid_len: u64,
        /// Bytes of the torn record.
        torn_bytes: u64,
    },
}

/// Reads the records of a DLQ file in order.
#[derive(Debug)]
pub struct RecordReader<R> {
    inner: R,
    offset: u64,
    index: u64,
    outcome: Option<ReadOutcome>,
    failed: bool,
}

impl<R: Read> RecordReader<R> {
    /// Checks the magic and positions at the first record.
    ///
    /// # Errors
    ///
    /// [`FileError::BadMagic`] for a file that is not a DLQ file (an empty
    /// or shorter-than-magic file included), or a read error.
    pub fn new(mut inner: R) -> Result<Self, FileError> {
        let mut magic = [0u8; 8];
        let got = read_full(&mut inner, &mut magic)?;
        if got != MAGIC.len() || &magic != MAGIC {
            return Err(FileError::BadMagic);
        }
        Ok(RecordReader {
            inner,
            offset: MAGIC.len() as u64,
            index: 0,
            outcome: None,
            failed: false,
        })
    }

    /// A reader positioned at the record that starts at `file_offset` and is
    /// record number `index`, the magic having been checked before (for
    /// example by an earlier reader). `inner` must be positioned there.
    pub fn resume(inner: R, file_offset: u64, index: u64) -> Self {
        RecordReader {
            inner,
            offset: file_offset,
            index,
            outcome: None,
            failed: false,
        }
    }

    /// File offset of the next record.
    pub fn position(&self) -> u64 {
        self.offset
    }

    /// How the file ended, once [`next_record`](Self::next_record) has
    /// returned `None`.
    pub fn outcome(&self) -> Option<ReadOutcome> {
        self.outcome
    }

    /// The next record, or `None` at the end of the file (whole or torn).
    ///
    /// # Errors
    ///
    /// [`FileError::Corrupt`] when a damaged record is followed by more data,
    /// [`FileError::RecordTooLarge`], or a read error.
    pub fn next_record(&mut self) -> Result<Option<Record>, FileError> {
        if self.outcome.is_some() || self.failed {
            return Ok(None);
        }
        let start = self.offset;
        let mut header = [0u8; RECORD_HEADER_LEN];
        let got = read_full(&mut self.inner, &mut header)?;
        if got == 0 {
            self.outcome = Some(ReadOutcome::Clean { end: start });
            return Ok(None);
        }
        if got < RECORD_HEADER_LEN {
            return self.torn(start, got as u64);
        }
        let len = u64::from(u32::from_le_bytes([
            header[0], header[1], header[2], header[3],
        ]));
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len > MAX_RECORD_LEN as u64 {
            // A torn header can hold any length: only the tail may be torn.
            if self.at_eof()? {
                return self.torn(start, got as u64);
            }
            self.failed = true;
            return Err(FileError::RecordTooLarge { offset: start, len });
        }
        let mut data = vec![0u8; len as usize];
        let got_data = read_full(&mut self.inner, &mut data)?;
        if got_data < data.len() {
            return self.torn(start, (RECORD_HEADER_LEN + got_data) as u64);
        }
        if crc32c::crc32c(&data) != crc {
            if self.at_eof()? {
                return self.torn(start, RECORD_HEADER_LEN as u64 + len);
            }
            self.failed = true;
            return Err(FileError::Corrupt {
                offset: start,
                what: "checksum mismatch in a record that is not the last",
            });
        }
        self.offset = start + RECORD_HEADER_LEN as u64 + len;
        let record = Record {
            index: self.index,
            file_offset: start,
            data: Bytes::from(data),
        };
        self.index += 1;
        Ok(Some(record))
    }

    fn torn(&mut self, start: u64, torn_bytes: u64) -> Result<Option<Record>, FileError> {
        let rest = io::copy(&mut self.inner, &mut io::sink())?;
        self.outcome = Some(ReadOutcome::TornTail {
            valid_len: start,
            torn_bytes: torn_bytes + rest,
        });
        Ok(None)
    }

    /// Whether the reader is at the end of the file. Consumes a byte when
    /// it is not; the caller then reports an error and reads no further.
    fn at_eof(&mut self) -> Result<bool, FileError> {
        let mut probe = [0u8; 1];
        Ok(read_full(&mut self.inner, &mut probe)? == 0)
    }
}

impl<R: Read> Iterator for RecordReader<R> {
    type Item = Result<Record, FileError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}

fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_of(records: &[&[u8]]) -> Vec<u8> {
        let mut file = Vec::new();
        write_magic(&mut file).unwrap();
        for r in records {
            write_record(&mut file, r).unwrap();
        }
        file
    }

    fn read_all(file: &[u8]) -> (Vec<Vec<u8>>, ReadOutcome) {
        let mut reader = RecordReader::new(file).unwrap();
        let mut out = Vec::new();
        while let Some(r) = reader.next_record().unwrap() {
            out.push(r.data.to_vec());
        }
        (out, reader.outcome().unwrap())
    }

    #[test]
    fn records_come_back_in_order_with_their_indexes() {
        let file = file_of(&[b"a", b"", b"ccc"]);
        let records: Vec<_> = RecordReader::new(&file[..])
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(records.len(), 3);
        assert_eq!(records[2].index, 2);
        assert_eq!(&records[2].data[..], b"ccc");
        assert_eq!(
            read_all(&file).1,
            ReadOutcome::Clean {
                end: file.len() as u64
            }
        );
    }

    #[test]
    fn every_torn_tail_keeps_all_records_before_it() {
        let whole = file_of(&[b"first record", b"second record"]);
        let two_start = file_of(&[b"first record"]).len();
        for cut in two_start..whole.len() {
            let (records, outcome) = read_all(&whole[..cut]);
            assert_eq!(records, vec![b"first record".to_vec()], "cut at {cut}");
            match outcome {
                ReadOutcome::TornTail {
                    valid_len,
                    torn_bytes,
                } => {
                    assert_eq!(valid_len, two_start as u64);
                    assert_eq!(valid_len + torn_bytes, cut as u64);
                }
                ReadOutcome::Clean { end } => assert_eq!(cut, two_start, "clean at {end}"),
            }
        }
    }

    #[test]
    fn a_zero_filled_tail_is_torn_not_corrupt() {
        let mut file = file_of(&[b"ok"]);
        let valid = file.len() as u64;
        file.extend_from_slice(&[0xAB, 0, 0, 0, 0, 0, 0, 0]);
        file.extend_from_slice(&[0; 0xAB]);
        let (records, outcome) = read_all(&file);
        assert_eq!(records.len(), 1);
        assert!(matches!(outcome, ReadOutcome::TornTail { valid_len, .. } if valid_len == valid));
    }

    #[test]
    fn damage_before_the_tail_is_corruption() {
        let mut file = file_of(&[b"first", b"second"]);
        file[MAGIC.len() + RECORD_HEADER_LEN] ^= 0xff;
        let mut reader = RecordReader::new(&file[..]).unwrap();
        assert!(matches!(
            reader.next_record(),
            Err(FileError::Corrupt { offset: 8, .. })
        ));
    }

    #[test]
    fn a_file_without_magic_is_refused() {
        assert!(matches!(
            RecordReader::new(&b""[..]),
            Err(FileError::BadMagic)
        ));
        assert!(matches!(
            RecordReader::new(&b"IGGYDLQ2...."[..]),
            Err(FileError::BadMagic)
        ));
    }
}
