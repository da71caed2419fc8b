"""Google's protobuf package, from code generated from the .proto now,
decodes every golden vector to exactly the committed canonical JSON and
re-encodes it to the same bytes: the vectors are a contract that any
protobuf implementation meets, not only prost."""

from __future__ import annotations

import json
from types import ModuleType

import pytest
from google.protobuf import json_format, unknown_fields

from conftest import VECTORS, vector_names


def test_there_are_vectors() -> None:
    assert len(vector_names()) >= 7


@pytest.mark.parametrize("name", vector_names())
def test_vector_decodes_to_its_json(envelope_pb2: ModuleType, name: str) -> None:
    data = (VECTORS / f"{name}.bin").read_bytes()
    expected = json.loads((VECTORS / f"{name}.json").read_text())
    message = envelope_pb2.DlqEnvelope()
    message.ParseFromString(data)
    assert json_format.MessageToDict(message) == expected


@pytest.mark.parametrize("name", vector_names())
def test_vector_reencodes_to_its_bytes(envelope_pb2: ModuleType, name: str) -> None:
    data = (VECTORS / f"{name}.bin").read_bytes()
    message = envelope_pb2.DlqEnvelope()
    message.ParseFromString(data)
    assert message.SerializeToString(deterministic=True) == data


@pytest.mark.parametrize("name", vector_names())
def test_vector_json_parses_to_its_bytes(envelope_pb2: ModuleType, name: str) -> None:
    text = (VECTORS / f"{name}.json").read_text()
    message = json_format.Parse(text, envelope_pb2.DlqEnvelope())
    assert message.SerializeToString(deterministic=True) == (VECTORS / f"{name}.bin").read_bytes()


def test_no_vector_carries_unknown_fields(envelope_pb2: ModuleType) -> None:
    for name in vector_names():
        message = envelope_pb2.DlqEnvelope()
        message.ParseFromString((VECTORS / f"{name}.bin").read_bytes())
        assert len(unknown_fields.UnknownFieldSet(message)) == 0, name
