"""Large payloads decode, and decoding many envelopes does not leak."""

from __future__ import annotations

import gc
import hashlib
import os
from types import ModuleType

import iggy_dlq
from conftest import parse, vector

MIB = 1024 * 1024


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def test_a_16_mib_payload_decodes(envelope_pb2: ModuleType) -> None:
    payload = os.urandom(16 * MIB)
    message = parse(envelope_pb2, vector("sink_malformed_json"))
    message.payload = payload
    message.payload_integrity.original_length = len(payload)
    data = message.SerializeToString()
    envelope = iggy_dlq.decode(data)
    assert len(envelope.payload) == 16 * MIB
    assert hashlib.sha256(envelope.payload).digest() == hashlib.sha256(payload).digest()
    assert envelope.payload_integrity.original_length == 16 * MIB
    del data, message
    # The envelope keeps what it needs after its input is gone.
    assert envelope.payload == payload


def test_memory_does_not_grow_over_100_000_decodes() -> None:
    data = vector("every_header_kind")

    def round_of(n: int) -> None:
        for _ in range(n):
            envelope = iggy_dlq.decode(data)
            envelope.payload
            envelope.headers
            envelope.to_dict()
            repr(envelope)

    round_of(2_000)  # warm caches and allocator pools
    gc.collect()
    before = rss_bytes()
    round_of(100_000)
    gc.collect()
    growth = rss_bytes() - before
    # A leak of even one small object per decode would be well above this.
    assert growth < 8 * MIB, f"RSS grew by {growth / MIB:.1f} MiB over 100,000 decodes"


def test_memory_does_not_grow_over_many_large_decodes(envelope_pb2: ModuleType) -> None:
    message = parse(envelope_pb2, vector("sink_malformed_json"))
    message.payload = b"x" * MIB
    message.payload_integrity.original_length = MIB
    data = message.SerializeToString()
    gc.collect()
    before = rss_bytes()
    for _ in range(200):
        # 200 MiB of payloads through the decoder in all; none may stay.
        envelope = iggy_dlq.decode(bytes(data))
        assert len(envelope.payload) == MIB
        del envelope
    gc.collect()
    growth = rss_bytes() - before
    assert growth < 32 * MIB, f"RSS grew by {growth / MIB:.1f} MiB"
