"""Shared fixtures: the workspace paths and the envelope schema compiled for
Google's Python protobuf package during the test run."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors"
PROTO_ROOT = ROOT / "proto"


def vector_names() -> list[str]:
    return sorted(p.stem for p in VECTORS.glob("*.bin"))


@pytest.fixture(scope="session")
def envelope_pb2(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """`iggy/dlq/v1/envelope_pb2.py`, generated now from the committed .proto
    by the protoc that ships in grpcio-tools."""
    from grpc_tools import protoc

    out = tmp_path_factory.mktemp("pb2")
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
