"""The shape of the API: errors, equality, repr, inputs, the payload copy."""

from __future__ import annotations

from types import ModuleType

import pytest

import iggy_dlq
from conftest import parse, vector


def test_errors_form_a_hierarchy() -> None:
    assert issubclass(iggy_dlq.DecodeError, ValueError)
    assert issubclass(iggy_dlq.DecodeError, iggy_dlq.IggyDlqError)
    assert issubclass(iggy_dlq.InvalidEnvelopeError, iggy_dlq.DecodeError)
    assert issubclass(iggy_dlq.FileFormatError, iggy_dlq.IggyDlqError)


def test_garbage_is_a_decode_error_that_says_why() -> None:
    with pytest.raises(iggy_dlq.DecodeError, match="not an encoded dlq envelope"):
        iggy_dlq.decode(b"\xff\xff\xff")
    with pytest.raises(iggy_dlq.DecodeError, match="empty input"):
        iggy_dlq.decode(b"")


def test_a_protobuf_that_breaks_a_rule_is_an_invalid_envelope() -> None:
    # Field 10 (replay_count) = 1: well-formed protobuf, but no origin.
    with pytest.raises(iggy_dlq.InvalidEnvelopeError, match="no origin"):
        iggy_dlq.decode(b"\x50\x01")


def test_decode_many_decodes_in_order_and_names_the_failing_item() -> None:
    names = ["sink_malformed_json", "source_conversion_failed", "every_header_kind"]
    envelopes = iggy_dlq.decode_many(vector(n) for n in names)
    assert envelopes == [iggy_dlq.decode(vector(n)) for n in names]
    with pytest.raises(iggy_dlq.DecodeError, match="^item 1: "):
        iggy_dlq.decode_many([vector(names[0]), b"\xff"])
    assert iggy_dlq.decode_many([]) == []


def test_bytes_like_inputs_decode_and_others_are_type_errors() -> None:
    data = vector("sink_malformed_json")
    expected = iggy_dlq.decode(data)
    assert iggy_dlq.decode(bytearray(data)) == expected
    assert iggy_dlq.decode(memoryview(data)) == expected
    with pytest.raises(TypeError, match="expected bytes"):
        iggy_dlq.decode("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expected bytes"):
        iggy_dlq.decode(5)  # type: ignore[arg-type]


def test_equality_is_by_content() -> None:
    a = iggy_dlq.decode(vector("sink_malformed_json"))
    b = iggy_dlq.decode(vector("sink_malformed_json"))
    c = iggy_dlq.decode(vector("every_header_kind"))
    assert a == b and a is not b
    assert a != c
    assert a != "not an envelope"
    assert a.failure == b.failure and a.sink == b.sink
    with pytest.raises(TypeError):
        hash(a)


def test_repr_says_what_failed_where() -> None:
    text = repr(iggy_dlq.decode(vector("sink_malformed_json")))
    assert text.startswith("<DlqEnvelope sink orders/created partition 3 offset 918273")
    assert "MALFORMED_PAYLOAD at CONNECTOR_PROCESS" in text
    assert "orders-to-postgres" in text
    assert "2026-08-21T12:00:00+00:00" in text
    assert "(truncated)" in repr(iggy_dlq.decode(vector("truncated_payload")))
    header = iggy_dlq.decode(vector("every_header_kind")).headers_typed[0]
    assert repr(header) == r"Header(key='raw', key_kind='STRING', value=b'\x00\xff\x10', value_kind='RAW')"
    failure = iggy_dlq.decode(vector("sink_malformed_json")).failure
    assert repr(failure).startswith("Failure(code='MALFORMED_PAYLOAD', stage='CONNECTOR_PROCESS', ")


def test_the_payload_is_one_bytes_object() -> None:
    envelope = iggy_dlq.decode(vector("truncated_payload"))
    assert envelope.payload is envelope.payload
    assert envelope.to_dict()["payload"] is envelope.payload


def test_envelopes_are_read_only() -> None:
    envelope = iggy_dlq.decode(vector("sink_malformed_json"))
    with pytest.raises(AttributeError):
        envelope.replay_count = 3  # type: ignore[misc]


def test_the_public_names_are_exported() -> None:
    for name in iggy_dlq.__all__:
        assert hasattr(iggy_dlq, name), name
    assert iggy_dlq.ENVELOPE_TYPE_NAME == "iggy.dlq.v1.DlqEnvelope"
    assert iggy_dlq.REPLAY_COUNT_HEADER == "iggy-dlq-replay-count"


def test_enum_values_of_a_newer_producer_are_kept_as_unknown(envelope_pb2: ModuleType) -> None:
    message = parse(envelope_pb2, vector("sink_malformed_json"))
    message.failure.code = 99
    message.payload_schema = 42
    envelope = iggy_dlq.decode(message.SerializeToString())
    assert envelope.failure.code == "UNKNOWN(99)"
    assert envelope.payload_schema == "UNKNOWN(42)"
