"""read() of a DLQ file (the embedded DLQ target, `file://PATH`): records in
order with their offsets, a torn last record skipped, damage refused."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

import iggy_dlq
from conftest import dlq_file, dlq_record, vector, vector_names

RECORDS = [vector(n) for n in vector_names()]


@pytest.fixture
def dlq_path(tmp_path: Path) -> Path:
    path = tmp_path / "orders.dlq"
    path.write_bytes(dlq_file(RECORDS))
    return path


def test_read_yields_what_was_written_in_order_with_offsets(dlq_path: Path) -> None:
    records = list(iggy_dlq.read(dlq_path))
    assert [r.offset for r in records] == list(range(len(RECORDS)))
    assert [r.envelope for r in records] == [iggy_dlq.decode(d) for d in RECORDS]
    assert [r.envelope.encode() for r in records] == RECORDS
    offset, envelope = records[0]
    assert (offset, envelope) == (records[0].offset, records[0].envelope)


def test_a_file_url_and_a_plain_path_read_the_same(dlq_path: Path) -> None:
    assert list(iggy_dlq.read(f"file://{dlq_path}")) == list(iggy_dlq.read(str(dlq_path)))


def test_offset_and_limit_select_records(dlq_path: Path) -> None:
    records = list(iggy_dlq.read(dlq_path, offset=2, limit=3))
    assert [r.offset for r in records] == [2, 3, 4]
    assert [r.envelope.encode() for r in records] == RECORDS[2:5]
    assert list(iggy_dlq.read(dlq_path, limit=0)) == []
    assert list(iggy_dlq.read(dlq_path, offset=len(RECORDS))) == []
    with pytest.raises(ValueError, match="offset"):
        iggy_dlq.read(dlq_path, offset=-1)


def test_a_torn_last_record_is_skipped_with_a_warning(tmp_path: Path) -> None:
    whole = dlq_file(RECORDS[:3])
    last = dlq_record(RECORDS[3])
    path = tmp_path / "torn.dlq"
    for cut in (1, 7, 8, len(last) // 2, len(last) - 1):
        path.write_bytes(whole + last[:cut])
        reader = iggy_dlq.read(path)
        with pytest.warns(iggy_dlq.TornTailWarning, match="torn last record"):
            records = list(reader)
        assert [r.envelope.encode() for r in records] == RECORDS[:3]
        assert reader.torn_tail == (len(whole), cut)
        assert next(reader, None) is None  # warned once, not again


def test_a_clean_file_has_no_torn_tail(dlq_path: Path) -> None:
    reader = iggy_dlq.read(dlq_path)
    assert len(list(reader)) == len(RECORDS)
    assert reader.torn_tail is None


def test_a_corrupt_middle_record_is_a_file_format_error(tmp_path: Path) -> None:
    data = bytearray(dlq_file(RECORDS[:3]))
    first_len = len(dlq_record(RECORDS[0]))
    damaged = 8 + first_len + 8 + 5  # a data byte of the second record
    data[damaged] ^= 0xFF
    path = tmp_path / "corrupt.dlq"
    path.write_bytes(bytes(data))
    reader = iggy_dlq.read(path)
    first = next(reader)
    assert first.envelope.encode() == RECORDS[0]
    with pytest.raises(iggy_dlq.FileFormatError, match=f"corrupt at byte {8 + first_len}"):
        next(reader)


def test_a_file_that_is_no_dlq_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "not.dlq"
    path.write_bytes(b"IGGYDLQ2" + dlq_record(RECORDS[0]))
    with pytest.raises(iggy_dlq.FileFormatError, match="magic"):
        iggy_dlq.read(path)
    with pytest.raises(FileNotFoundError):
        iggy_dlq.read(tmp_path / "missing.dlq")


def test_a_record_that_is_no_envelope_names_its_offset(tmp_path: Path) -> None:
    path = tmp_path / "bad-record.dlq"
    path.write_bytes(dlq_file([RECORDS[0], b"\xff\xff", RECORDS[1]]))
    reader = iggy_dlq.read(path)
    next(reader)
    with pytest.raises(iggy_dlq.DecodeError, match="record 1: input"):
        next(reader)


def test_the_crc_of_these_records_is_what_the_rust_reader_checks() -> None:
    # The CRC-32C check value of "123456789".
    assert struct.unpack("<I", dlq_record(b"123456789")[4:8])[0] == 0xE3069283


def test_an_iggy_source_needs_a_stream_and_a_topic() -> None:
    # Refused before any connection is tried.
    with pytest.raises(ValueError, match="needs stream= and topic="):
        iggy_dlq.read("iggy://iggy:iggy@127.0.0.1:8090", topic="orders")
    with pytest.raises(ValueError, match="iggy\\+quic:// is not supported"):
        iggy_dlq.read("iggy+quic://iggy:iggy@127.0.0.1:8090", stream="dlq", topic="orders")


def test_partition_is_refused_for_a_file(dlq_path: Path) -> None:
    with pytest.raises(ValueError, match="iggy:// sources only"):
        iggy_dlq.read(dlq_path, partition=0)


def test_file_records_have_no_partition(dlq_path: Path) -> None:
    record = next(iggy_dlq.read(dlq_path))
    assert record.partition is None
    assert repr(record).startswith("DlqRecord(offset=0, envelope=")


def test_an_unknown_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown DLQ source scheme 'http'"):
        iggy_dlq.read("http://example/dlq")


def test_iggy_only_options_are_refused_for_a_file(dlq_path: Path) -> None:
    with pytest.raises(ValueError, match="iggy:// sources only"):
        iggy_dlq.read(dlq_path, follow=True)
