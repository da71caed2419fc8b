"""The envelope schema compiled for Google's Python protobuf package, the
independent reference decoder of both Python test suites (tests/python and
bindings-python/tests)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = ROOT / "proto"


def compile_envelope_pb2(out: Path) -> ModuleType:
    """Generates `iggy/dlq/v1/envelope_pb2.py` into `out` from the committed
    .proto, with the protoc that ships in grpcio-tools, and imports it."""
    from grpc_tools import protoc

    rc = protoc.main(
        [
            "protoc",
            f"--proto_path={PROTO_ROOT}",
            f"--python_out={out}",
            str(PROTO_ROOT / "iggy" / "dlq" / "v1" / "envelope.proto"),
        ]
    )
    assert rc == 0, "protoc failed on proto/iggy/dlq/v1/envelope.proto"
    sys.path.insert(0, str(out))
    try:
        return importlib.import_module("iggy.dlq.v1.envelope_pb2")
    finally:
        sys.path.remove(str(out))
