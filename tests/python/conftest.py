"""Shared fixtures: the workspace paths and the envelope schema compiled for
Google's Python protobuf package during the test run."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from envelope_schema import compile_envelope_pb2

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors"


def vector_names() -> list[str]:
    return sorted(p.stem for p in VECTORS.glob("*.bin"))


@pytest.fixture(scope="session")
def envelope_pb2(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """`iggy/dlq/v1/envelope_pb2.py`, generated now from the committed .proto."""
    return compile_envelope_pb2(tmp_path_factory.mktemp("pb2"))
