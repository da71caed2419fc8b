"""Decode speed of iggy_dlq against Google's protobuf package (upb backend).

Decodes the same 100,000 envelopes (the golden vectors, round robin) with
both, to objects and to an Arrow table, and prints the times and ratios.
The protobuf module is generated from the committed .proto now, with the
protoc of grpcio-tools. A benchmark, not a test:

    .venv/bin/python bindings-python/benches/bench_decode.py [N]
"""

from __future__ import annotations

import gc
import importlib
import importlib.metadata
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
from google.protobuf import json_format
from google.protobuf.internal import api_implementation
from grpc_tools import protoc

import iggy_dlq

ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = ROOT / "proto"
REPEATS = 5


def envelope_pb2(out: Path) -> Any:
    rc = protoc.main(
        [
            "protoc",
            f"--proto_path={PROTO_ROOT}",
            f"--python_out={out}",
            str(PROTO_ROOT / "iggy" / "dlq" / "v1" / "envelope.proto"),
        ]
    )
    if rc != 0:
        raise SystemExit("protoc failed on proto/iggy/dlq/v1/envelope.proto")
    sys.path.insert(0, str(out))
    return importlib.import_module("iggy.dlq.v1.envelope_pb2")


def best_of(fn: Callable[[], object]) -> float:
    """Median of REPEATS runs, in seconds, with the collector out of the way."""
    times = []
    for _ in range(REPEATS):
        gc.collect()
        gc.disable()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        gc.enable()
    return statistics.median(times)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    vectors = [p.read_bytes() for p in sorted((ROOT / "tests" / "vectors").glob("*.bin"))]
    data = [vectors[i % len(vectors)] for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        pb2 = envelope_pb2(Path(tmp))

    def pb_parse(d: bytes) -> Any:
        message = pb2.DlqEnvelope()
        message.ParseFromString(d)
        return message

    def touch_iggy(envelopes: list[iggy_dlq.DlqEnvelope]) -> None:
        for e in envelopes:
            e.failure.code
            e.connector.key
            e.payload
            e.headers
            e.written_at_micros

    def touch_pb(messages: list[Any]) -> None:
        for m in messages:
            pb2.ErrorCode.Name(m.failure.code)
            m.connector.key
            m.payload
            {h.key.value: h.value.value for h in m.headers}
            m.written_at_micros

    def pb_to_arrow() -> Any:
        rows = [json_format.MessageToDict(pb_parse(d), preserving_proto_field_name=True) for d in data]
        return pa.Table.from_pylist(rows)

    cases: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
        (
            "decode to objects",
            lambda: iggy_dlq.decode_many(data),
            lambda: [pb_parse(d) for d in data],
        ),
        (
            "decode one by one",
            lambda: [iggy_dlq.decode(d) for d in data],
            lambda: [pb_parse(d) for d in data],
        ),
        (
            "decode + read 5 fields",
            lambda: touch_iggy(iggy_dlq.decode_many(data)),
            lambda: touch_pb([pb_parse(d) for d in data]),
        ),
        (
            "decode to Arrow table",
            lambda: iggy_dlq.to_arrow(iggy_dlq.decode_many(data)),
            pb_to_arrow,
        ),
    ]

    print(f"{n:,} envelopes ({len(vectors)} golden vectors, round robin, "
          f"{sum(map(len, data)) / n:.0f} bytes on average)")
    print(f"protobuf {importlib.metadata.version('protobuf')} backend "
          f"{api_implementation.Type()}, pyarrow {pa.__version__}, "
          f"Python {sys.version.split()[0]}; median of {REPEATS} runs")
    print()
    print(f"{'':24} {'iggy_dlq':>10} {'protobuf':>10} {'speed-up':>9}")
    for name, ours, theirs in cases:
        t_ours = best_of(ours)
        t_theirs = best_of(theirs)
        print(f"{name:24} {t_ours * 1e3:8.1f}ms {t_theirs * 1e3:8.1f}ms {t_theirs / t_ours:8.2f}x")


if __name__ == "__main__":
    main()
