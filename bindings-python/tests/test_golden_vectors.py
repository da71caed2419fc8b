"""Every golden vector decodes to exactly what Google's protobuf package
decodes, field by field, and re-encodes to its own bytes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import ModuleType

import pytest

import iggy_dlq
from conftest import expected_dict, parse, vector, vector_names

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def test_there_are_vectors() -> None:
    assert len(vector_names()) >= 7


@pytest.mark.parametrize("name", vector_names())
def test_vector_decodes_as_google_protobuf_does(envelope_pb2: ModuleType, name: str) -> None:
    data = vector(name)
    envelope = iggy_dlq.decode(data)
    assert envelope.to_dict() == expected_dict(envelope_pb2, parse(envelope_pb2, data))


@pytest.mark.parametrize("name", vector_names())
def test_attributes_agree_with_to_dict(name: str) -> None:
    envelope = iggy_dlq.decode(vector(name))
    d = envelope.to_dict()
    assert envelope.origin == ("sink" if d["sink"] is not None else "source")
    if envelope.sink is not None:
        assert envelope.sink.to_dict() == d["sink"]
        assert envelope.source is None
    else:
        assert envelope.source is not None
        assert envelope.source.to_dict() == d["source"]
    assert envelope.payload == d["payload"]
    assert envelope.payload_schema == d["payload_schema"]
    assert envelope.payload_integrity.to_dict() == d["payload_integrity"]
    assert [h.to_dict() for h in envelope.headers_typed] == d["headers"]
    assert envelope.headers == {h["key"]: h["value"] for h in d["headers"]}
    assert envelope.failure.to_dict() == d["failure"]
    assert envelope.connector.to_dict() == d["connector"]
    assert envelope.written_at_micros == d["written_at_micros"]
    assert envelope.written_at == EPOCH + timedelta(microseconds=d["written_at_micros"])
    assert envelope.replay_count == d["replay_count"]


@pytest.mark.parametrize("name", vector_names())
def test_vector_reencodes_to_its_bytes(name: str) -> None:
    data = vector(name)
    assert iggy_dlq.decode(data).encode() == data


def test_header_values_have_the_python_type_of_their_kind() -> None:
    headers = iggy_dlq.decode(vector("every_header_kind")).headers
    assert headers["raw"] == b"\x00\xff\x10"
    assert headers["string"] == "text value"
    assert headers["bool"] is True
    assert headers["int8"] == -128
    assert headers["int64"] == -(2**63)
    assert headers["int128"] == -(2**127)
    assert headers["uint64"] == 2**64 - 1
    assert headers["uint128"] == 2**128 - 1
    assert headers["float32"] == 1.5 and isinstance(headers["float32"], float)
    assert headers["float64"] == -0.125
    # Keys are typed too: a uint64 key is an int, a raw key is bytes.
    assert headers[7] == "numeric key"
    assert headers[b"\x01\x02"] is False
    kinds = {h.key: (h.key_kind, h.value_kind) for h in iggy_dlq.decode(vector("every_header_kind")).headers_typed}
    assert kinds[7] == ("UINT64", "STRING")
    assert kinds["uint128"] == ("STRING", "UINT128")


def test_a_message_id_above_2_to_the_64_is_kept_whole() -> None:
    sink = iggy_dlq.decode(vector("large_message_id_retried")).sink
    assert sink is not None
    assert sink.message_id == (2**64 - 1) * 2**64 + 18446744073709546955
    assert sink.message_id > 2**64


def test_times_are_utc_datetimes_next_to_their_microseconds() -> None:
    envelope = iggy_dlq.decode(vector("large_message_id_retried"))
    failure = envelope.failure
    assert failure.first_failed_at is not None and failure.first_failed_at.tzinfo is timezone.utc
    assert failure.first_failed_at == EPOCH + timedelta(microseconds=failure.first_failed_at_micros)
    assert failure.last_failed_at == EPOCH + timedelta(microseconds=failure.last_failed_at_micros)
    sink = envelope.sink
    assert sink is not None
    assert sink.origin_timestamp == EPOCH + timedelta(microseconds=1787313597500000)
    assert envelope.written_at == datetime(2026, 8, 21, 12, 0, tzinfo=timezone.utc)


def test_enums_have_readable_names() -> None:
    envelope = iggy_dlq.decode(vector("sink_malformed_json"))
    assert envelope.failure.code == "MALFORMED_PAYLOAD"
    assert envelope.failure.stage == "CONNECTOR_PROCESS"
    assert envelope.connector.kind == "SINK"
    assert envelope.payload_schema == "JSON"


def test_a_source_origin() -> None:
    envelope = iggy_dlq.decode(vector("source_conversion_failed"))
    source = envelope.source
    assert envelope.sink is None and source is not None
    assert (source.system, source.resource) == ("file", "/var/spool/items.csv")
    assert source.position == b"line:42"
    assert source.record_key == b"sku-00042"
    assert (source.target_stream, source.target_topic) == ("inventory", "items")
