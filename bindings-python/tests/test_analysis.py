"""to_arrow, to_pandas and summary."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pytest

import iggy_dlq
from conftest import dlq_file, vector, vector_names

ENVELOPES = [iggy_dlq.decode(vector(n)) for n in vector_names()]


def test_to_arrow_has_one_row_per_envelope_with_typed_columns() -> None:
    table = iggy_dlq.to_arrow(ENVELOPES)
    assert table.num_rows == len(ENVELOPES)
    assert table.schema.field("written_at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("payload").type == pa.large_binary()
    rows = table.to_pylist()
    for envelope, row in zip(ENVELOPES, rows):
        assert row["origin"] == envelope.origin
        assert row["payload"] == envelope.payload
        assert row["failure_code"] == envelope.failure.code
        assert row["failure_stage"] == envelope.failure.stage
        assert row["failure_detail"] == envelope.failure.detail
        assert row["connector_key"] == envelope.connector.key
        assert row["written_at"] == envelope.written_at
        assert row["replay_count"] == envelope.replay_count
        if envelope.sink is not None:
            assert (row["stream"], row["topic"]) == (envelope.sink.stream, envelope.sink.topic)
            assert row["sink_message_id"] == str(envelope.sink.message_id)
            assert row["sink_offset"] == envelope.sink.offset
            assert row["source_system"] is None
        else:
            assert envelope.source is not None
            assert row["stream"] == envelope.source.target_stream
            assert row["source_position"] == envelope.source.position
            assert row["sink_offset"] is None
        assert [(h["key_kind"], h["value_kind"]) for h in row["headers"]] == [
            (h.key_kind, h.value_kind) for h in envelope.headers_typed
        ]


def test_to_arrow_of_records_carries_their_dlq_offsets(tmp_path: Path) -> None:
    path = tmp_path / "a.dlq"
    path.write_bytes(dlq_file([vector(n) for n in vector_names()]))
    table = iggy_dlq.to_arrow(iggy_dlq.read(path, offset=1))
    assert table.column_names[0] == "dlq_offset"
    assert table.column("dlq_offset").to_pylist() == list(range(1, len(ENVELOPES)))


def test_header_text_in_arrow() -> None:
    table = iggy_dlq.to_arrow([iggy_dlq.decode(vector("every_header_kind"))])
    headers = {h["key"]: h for h in table.column("headers").to_pylist()[0]}
    assert headers["uint128"]["value"] == str(2**128 - 1)
    assert headers["raw"]["value"] == "00ff10"
    assert headers["7"]["key_kind"] == "UINT64"
    assert headers["bool"]["value"] == "True"


def test_to_pandas() -> None:
    frame = iggy_dlq.to_pandas(ENVELOPES)
    assert len(frame) == len(ENVELOPES)
    assert frame["failure_code"].value_counts()["TOO_LARGE"] == 2
    assert str(frame["written_at"].dt.tz) == "UTC"


def test_summary_counts_and_times() -> None:
    s = iggy_dlq.summary(ENVELOPES)
    assert s.total == len(ENVELOPES)
    assert s.by_code["TOO_LARGE"] == 2 and sum(s.by_code.values()) == s.total
    assert list(s.by_code)[0] == "TOO_LARGE"  # most frequent first
    assert s.by_stage["CONNECTOR_WRITE"] == 3
    assert s.by_connector == {"orders-to-postgres": 6, "items-from-csv": 1}
    assert s.by_topic == {"orders/created": 6, "inventory/items": 1}
    assert s.oldest_failure == datetime(2026, 8, 21, 11, 59, tzinfo=timezone.utc)
    assert s.newest_failure == datetime(2026, 8, 21, 12, 0, tzinfo=timezone.utc)
    assert "7 dead letters" in str(s) and "TOO_LARGE" in str(s)
    empty = iggy_dlq.summary([])
    assert (empty.total, empty.oldest_failure, empty.newest_failure) == (0, None, None)


def test_without_pyarrow_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(ImportError, match=r"pip install 'iggy-dlq\[arrow\]'"):
        iggy_dlq.to_arrow(ENVELOPES)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"pip install 'iggy-dlq\[arrow\]'"):
        iggy_dlq.to_pandas(ENVELOPES)


def test_other_objects_are_refused() -> None:
    with pytest.raises(TypeError, match="expected DlqEnvelope or DlqRecord"):
        iggy_dlq.to_arrow([b"raw bytes"])  # type: ignore[list-item]
