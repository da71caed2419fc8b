"""Random, truncated and bit-flipped inputs raise DecodeError: never another
exception, never a crash of the interpreter, never a hang. Whatever does
decode, Google's protobuf decodes to the same envelope."""

from __future__ import annotations

import math
import os
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import iggy_dlq
from conftest import expected_dict, parse, vector, vector_names

# No deadline: a slow machine is not a failure; a hang still is (the run's
# own timeout), and the example counts keep the run short. Under CI the
# examples are the same on every run; elsewhere they are new each time.
ROBUST = settings(
    max_examples=int(os.environ.get("IGGY_DLQ_FUZZ_EXAMPLES", "400")),
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

VECTORS = [vector(n) for n in vector_names()]


def decode_or_decode_error(data: bytes) -> iggy_dlq.DlqEnvelope | None:
    try:
        return iggy_dlq.decode(data)
    except iggy_dlq.DecodeError as err:
        assert str(err), "a DecodeError says what was wrong"
        return None


def nan_safe(value: Any) -> Any:
    """`value` with every float NaN replaced by a marker, as NaN != NaN."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, dict):
        return {k: nan_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [nan_safe(v) for v in value]
    return value


def agrees_with_protobuf(pb2: ModuleType, data: bytes, envelope: iggy_dlq.DlqEnvelope) -> None:
    # A flipped bit can turn a float header into NaN.
    assert nan_safe(envelope.to_dict()) == nan_safe(expected_dict(pb2, parse(pb2, data)))


@ROBUST
@given(st.binary(max_size=2048))
def test_random_bytes_raise_decode_error(envelope_pb2: ModuleType, data: bytes) -> None:
    envelope = decode_or_decode_error(data)
    if envelope is not None:
        agrees_with_protobuf(envelope_pb2, data, envelope)


@pytest.mark.parametrize("name", vector_names())
def test_every_truncation_of_a_vector_fails_cleanly(envelope_pb2: ModuleType, name: str) -> None:
    data = vector(name)
    failures = 0
    for cut in range(len(data)):
        envelope = decode_or_decode_error(data[:cut])
        if envelope is None:
            failures += 1
        else:
            # A cut exactly between fields can leave a valid envelope (one
            # that lacks the optional fields after the cut).
            agrees_with_protobuf(envelope_pb2, data[:cut], envelope)
    assert failures >= len(data) - 8


@ROBUST
@given(st.sampled_from(VECTORS), st.lists(st.integers(min_value=0), min_size=1, max_size=4))
def test_bit_flips_raise_decode_error_or_decode_as_protobuf_does(
    envelope_pb2: ModuleType, data: bytes, bits: list[int]
) -> None:
    flipped = bytearray(data)
    for bit in bits:
        bit %= 8 * len(flipped)
        flipped[bit // 8] ^= 1 << (bit % 8)
    envelope = decode_or_decode_error(bytes(flipped))
    if envelope is not None:
        agrees_with_protobuf(envelope_pb2, bytes(flipped), envelope)


@ROBUST
@given(st.lists(st.sampled_from(VECTORS + [b"", b"\xff", b"\x50\x01"]), max_size=8))
def test_decode_many_raises_decode_error_or_decodes_all(items: list[bytes]) -> None:
    try:
        envelopes = iggy_dlq.decode_many(items)
    except iggy_dlq.DecodeError as err:
        assert str(err).startswith("item ")
    else:
        assert len(envelopes) == len(items)
