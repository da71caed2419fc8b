"""Shared fixtures and helpers of the iggy_dlq tests.

The tests run against the installed wheel (tests/run.sh builds and installs
it). Google's protobuf package, with code generated from the committed
.proto during the run, is the independent reference decoder.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors"

sys.path.insert(0, str(ROOT / "tests" / "python"))
from envelope_schema import compile_envelope_pb2  # noqa: E402


def vector_names() -> list[str]:
    return sorted(p.stem for p in VECTORS.glob("*.bin"))


def vector(name: str) -> bytes:
    return (VECTORS / f"{name}.bin").read_bytes()


@pytest.fixture(scope="session")
def envelope_pb2(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """`iggy/dlq/v1/envelope_pb2.py`, generated now from the committed .proto."""
    return compile_envelope_pb2(tmp_path_factory.mktemp("pb2"))


# Iggy's encoding of header values, written out here from the schema's
# comments so that the check does not reuse the Rust code it checks.
_FIXED = {
    "BOOL": "<?",
    "INT8": "<b",
    "INT16": "<h",
    "INT32": "<i",
    "INT64": "<q",
    "UINT8": "<B",
    "UINT16": "<H",
    "UINT32": "<I",
    "UINT64": "<Q",
    "FLOAT32": "<f",
    "FLOAT64": "<d",
}


def iggy_value(kind: str, raw: bytes) -> Any:
    if kind == "RAW":
        return raw
    if kind == "STRING":
        return raw.decode("utf-8")
    if kind == "INT128":
        return int.from_bytes(raw, "little", signed=True)
    if kind == "UINT128":
        return int.from_bytes(raw, "little", signed=False)
    (value,) = struct.unpack(_FIXED[kind], raw)
    return value


def _name(enum: Any, prefix: str, value: int) -> str:
    # Enums are open: a value this schema does not know (a newer
    # producer's) is kept, and iggy_dlq names it UNKNOWN(n).
    if value not in enum.values():
        return f"UNKNOWN({value})"
    return str(enum.Name(value)).removeprefix(prefix)


def expected_dict(pb2: ModuleType, message: Any) -> dict[str, Any]:
    """What `DlqEnvelope.to_dict()` must be for a message that Google's
    protobuf decoded: the same fields, in iggy_dlq's conventions."""
    sink = source = None
    if message.WhichOneof("origin") == "sink":
        s = message.sink
        sink = {
            "stream": s.stream,
            "stream_id": s.stream_id if s.HasField("stream_id") else None,
            "topic": s.topic,
            "topic_id": s.topic_id if s.HasField("topic_id") else None,
            "partition_id": s.partition_id,
            "offset": s.offset,
            "message_id": (s.message_id.high << 64) | s.message_id.low,
            "checksum": s.checksum,
            "timestamp_micros": s.timestamp_micros,
            "origin_timestamp_micros": s.origin_timestamp_micros,
            "consumer_group": s.consumer_group,
        }
    else:
        r = message.source
        source = {
            "system": r.system,
            "resource": r.resource,
            "position": r.position,
            "record_key": r.record_key if r.HasField("record_key") else None,
            "target_stream": r.target_stream,
            "target_topic": r.target_topic,
        }
    headers = []
    for h in message.headers:
        key_kind = _name(pb2.HeaderKind, "HEADER_KIND_", h.key.kind)
        value_kind = _name(pb2.HeaderKind, "HEADER_KIND_", h.value.kind)
        headers.append(
            {
                "key": iggy_value(key_kind, h.key.value),
                "key_kind": key_kind,
                "value": iggy_value(value_kind, h.value.value),
                "value_kind": value_kind,
            }
        )
    f = message.failure
    c = message.connector
    return {
        "sink": sink,
        "source": source,
        "payload": message.payload,
        "payload_schema": _name(pb2.PayloadSchema, "PAYLOAD_SCHEMA_", message.payload_schema),
        "payload_integrity": {
            "original_length": message.payload_integrity.original_length,
            "truncated": message.payload_integrity.truncated,
            "original_sha256": message.payload_integrity.original_sha256,
        },
        "headers": headers,
        "failure": {
            "reason": f.reason,
            "code": _name(pb2.ErrorCode, "ERROR_CODE_", f.code),
            "stage": _name(pb2.FailureStage, "FAILURE_STAGE_", f.stage),
            "retryable": f.retryable,
            "detail": list(f.detail),
            "attempts": f.attempts,
            "first_failed_at_micros": f.first_failed_at_micros,
            "last_failed_at_micros": f.last_failed_at_micros,
        },
        "connector": {
            "key": c.key,
            "name": c.name,
            "kind": _name(pb2.ConnectorKind, "CONNECTOR_KIND_", c.kind),
            "plugin_version": c.plugin_version,
            "runtime_instance_id": c.runtime_instance_id,
        },
        "written_at_micros": message.written_at_micros,
        "replay_count": message.replay_count,
    }


def parse(pb2: ModuleType, data: bytes) -> Any:
    message = pb2.DlqEnvelope()
    message.ParseFromString(data)
    return message


# CRC-32C (Castagnoli), reflected, for writing DLQ files by hand.
def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def dlq_record(data: bytes) -> bytes:
    """One DLQ file record: u32 LE length, u32 LE CRC-32C, the data."""
    return struct.pack("<II", len(data), crc32c(data)) + data


def dlq_file(records: list[bytes]) -> bytes:
    return b"IGGYDLQ1" + b"".join(dlq_record(r) for r in records)
