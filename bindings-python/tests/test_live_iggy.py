"""read() of a DLQ topic on a real Iggy server.

Runs against the server at IGGY_TEST_ADDRESS (`iggy://host:port`, with
IGGY_TEST_USERNAME and IGGY_TEST_PASSWORD, iggy/iggy when unset), or starts
the server binary IGGY_SERVER_BIN on a free loopback port with an empty data
directory for this run. Without either, every test here is skipped with that
reason (`pytest -rs` prints it), never silently green.

The dead letters are the golden vectors, written to fresh topics through the
runtime's Iggy client (the private `_native._produce_for_tests`).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import iggy_dlq
from iggy_dlq import _native
from conftest import vector, vector_names

VECTORS = [vector(n) for n in vector_names()]


@dataclass(frozen=True)
class Server:
    host_port: str
    username: str
    password: str

    @property
    def address(self) -> str:
        return f"iggy://{self.username}:{self.password}@{self.host_port}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"iggy-server exited with {process.returncode}; its log:\n{log.read_text()[-4000:]}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"iggy-server did not listen on 127.0.0.1:{port} within 30 s")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if "IGGY_TEST_ADDRESS" in os.environ:
        host_port = os.environ["IGGY_TEST_ADDRESS"].removeprefix("iggy://").rsplit("@", 1)[-1]
        yield Server(
            host_port,
            os.environ.get("IGGY_TEST_USERNAME", "iggy"),
            os.environ.get("IGGY_TEST_PASSWORD", "iggy"),
        )
        return
    binary = os.environ.get("IGGY_SERVER_BIN")
    if not binary:
        pytest.skip(
            "no Iggy server: set IGGY_TEST_ADDRESS (iggy://host:port) or IGGY_SERVER_BIN "
            "(an iggy-server binary to start) to run the tests against a real one"
        )
    if not os.access(binary, os.X_OK):
        pytest.fail(f"IGGY_SERVER_BIN={binary} is not an executable file")
    home = tmp_path_factory.mktemp("iggy-server")
    port = _free_port()
    password = secrets.token_urlsafe(16)
    env = dict(
        os.environ,
        IGGY_SYSTEM_PATH=str(home / "data"),
        IGGY_TCP_ADDRESS=f"127.0.0.1:{port}",
        IGGY_HTTP_ENABLED="false",
        IGGY_QUIC_ENABLED="false",
        IGGY_WEBSOCKET_ENABLED="false",
        IGGY_ROOT_USERNAME="iggy",
        IGGY_ROOT_PASSWORD=password,
    )
    log = home / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary], cwd=home, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_for_port(port, process, log)
        yield Server(f"127.0.0.1:{port}", "iggy", password)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _fresh_topic(
    server: Server, messages: list[tuple[int, bytes]], partitions: int = 1
) -> tuple[str, str]:
    stream, topic = f"dlq-{uuid.uuid4().hex[:12]}", "orders-dlq"
    _native._produce_for_tests(server.address, stream, topic, partitions, messages)
    return stream, topic


def test_read_yields_the_written_envelopes_in_order_with_their_offsets(server: Server) -> None:
    stream, topic = _fresh_topic(server, [(0, v) for v in VECTORS])
    with iggy_dlq.read(server.address, stream=stream, topic=topic) as reader:
        records = list(reader)
    assert [r.offset for r in records] == list(range(len(VECTORS)))
    assert [r.partition for r in records] == [0] * len(VECTORS)
    assert [r.envelope for r in records] == [iggy_dlq.decode(v) for v in VECTORS]
    assert [r.envelope.encode() for r in records] == VECTORS
    offset, envelope = records[3]  # a record is still the pair
    assert (offset, envelope.encode()) == (3, VECTORS[3])


def test_offset_and_limit_select_messages(server: Server) -> None:
    stream, topic = _fresh_topic(server, [(0, v) for v in VECTORS])
    records = list(iggy_dlq.read(server.address, stream=stream, topic=topic, offset=2, limit=3))
    assert [r.offset for r in records] == [2, 3, 4]
    assert [r.envelope.encode() for r in records] == VECTORS[2:5]
    assert list(iggy_dlq.read(server.address, stream=stream, topic=topic, limit=0)) == []
    past_the_end = iggy_dlq.read(server.address, stream=stream, topic=topic, offset=len(VECTORS))
    assert list(past_the_end) == []


def test_more_messages_than_one_chunk_are_all_read(server: Server) -> None:
    many = [(0, VECTORS[i % len(VECTORS)]) for i in range(1234)]
    stream, topic = _fresh_topic(server, many)
    records = list(iggy_dlq.read(server.address, stream=stream, topic=topic))
    assert [r.offset for r in records] == list(range(1234))
    assert [r.envelope.encode() for r in records] == [m for _, m in many]


def test_every_partition_is_read_in_offset_order_or_only_one(server: Server) -> None:
    # Partition ids are zero-based: 0, 1, 2.
    written = [(i % 3, v) for i, v in enumerate(VECTORS)]
    stream, topic = _fresh_topic(server, written, partitions=3)
    records = list(iggy_dlq.read(server.address, stream=stream, topic=topic))
    assert len(records) == len(VECTORS)
    for p in range(3):
        mine = [r for r in records if r.partition == p]
        expected = [v for q, v in written if q == p]
        assert [r.offset for r in mine] == list(range(len(expected)))
        assert [r.envelope.encode() for r in mine] == expected
    only_1 = list(iggy_dlq.read(server.address, stream=stream, topic=topic, partition=1))
    assert [r.envelope.encode() for r in only_1] == [v for q, v in written if q == 1]
    assert {r.partition for r in only_1} == {1}
    with pytest.raises(iggy_dlq.IggyNotFoundError, match="has no partition 3"):
        iggy_dlq.read(server.address, stream=stream, topic=topic, partition=3)


def test_since_starts_at_the_first_message_stored_at_that_time(server: Server) -> None:
    stream, topic = _fresh_topic(server, [(0, v) for v in VECTORS[:3]])
    time.sleep(0.05)
    since = datetime.now(timezone.utc)
    time.sleep(0.05)
    _native._produce_for_tests(server.address, stream, topic, 1, [(0, v) for v in VECTORS[3:6]])
    records = list(iggy_dlq.read(server.address, stream=stream, topic=topic, since=since))
    assert [r.offset for r in records] == [3, 4, 5]
    assert [r.envelope.encode() for r in records] == VECTORS[3:6]
    everything = since - timedelta(days=1)
    assert len(list(iggy_dlq.read(server.address, stream=stream, topic=topic, since=everything))) == 6
    with pytest.raises(ValueError, match="timezone-aware"):
        iggy_dlq.read(server.address, stream=stream, topic=topic, since=datetime.now())


def test_follow_waits_for_new_dead_letters_until_closed(server: Server) -> None:
    stream, topic = _fresh_topic(server, [(0, VECTORS[0])])
    reader = iggy_dlq.read(server.address, stream=stream, topic=topic, follow=True)
    assert next(reader).envelope.encode() == VECTORS[0]
    late = threading.Timer(
        0.5,
        _native._produce_for_tests,
        (server.address, stream, topic, 1, [(0, VECTORS[1]), (0, VECTORS[2])]),
    )
    late.start()
    try:
        started = time.monotonic()
        assert next(reader).envelope.encode() == VECTORS[1]
        assert time.monotonic() - started >= 0.3  # it waited for the late write
        assert next(reader).offset == 2
    finally:
        late.join()
    reader.close()
    assert next(reader, None) is None


def test_follow_stops_on_keyboard_interrupt(server: Server) -> None:
    stream, topic = _fresh_topic(server, [(0, VECTORS[0])])
    reader = iggy_dlq.read(server.address, stream=stream, topic=topic, follow=True, offset=1)
    interrupt = threading.Timer(0.5, signal.raise_signal, (signal.SIGINT,))
    interrupt.start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        next(reader)
    interrupt.join()
    assert time.monotonic() - started < 5
    reader.close()


def test_an_undecodable_message_raises_decode_error_with_its_offset(server: Server) -> None:
    stream, topic = _fresh_topic(server, [(0, VECTORS[0]), (0, b"\xff\xff"), (0, VECTORS[1])])
    reader = iggy_dlq.read(server.address, stream=stream, topic=topic)
    assert next(reader).offset == 0
    with pytest.raises(iggy_dlq.DecodeError, match="partition 0 offset 1: "):
        next(reader)
    # The reader stays after it.
    record = next(reader)
    assert (record.offset, record.envelope.encode()) == (2, VECTORS[1])


def test_an_unknown_stream_or_topic_is_named(server: Server) -> None:
    with pytest.raises(iggy_dlq.IggyNotFoundError, match="stream `no-such-stream`") as err:
        iggy_dlq.read(server.address, stream="no-such-stream", topic="orders-dlq")
    assert server.host_port in str(err.value)
    stream, _ = _fresh_topic(server, [(0, VECTORS[0])])
    with pytest.raises(iggy_dlq.IggyNotFoundError, match=f"topic `{stream}/nope`"):
        iggy_dlq.read(server.address, stream=stream, topic="nope")


def test_a_wrong_password_is_a_connection_error_soon_without_the_password(
    server: Server,
) -> None:
    wrong = f"wrong-{secrets.token_hex(8)}"
    started = time.monotonic()
    with pytest.raises(iggy_dlq.IggyConnectionError) as err:
        iggy_dlq.read(f"iggy://{server.username}:{wrong}@{server.host_port}", stream="s", topic="t")
    assert time.monotonic() - started < 10
    assert server.host_port in str(err.value)
    assert wrong not in str(err.value)
    assert isinstance(err.value, iggy_dlq.IggyDlqError)


def test_an_unreachable_server_is_a_connection_error_soon() -> None:
    port = _free_port()  # nothing listens there
    started = time.monotonic()
    with pytest.raises(iggy_dlq.IggyConnectionError, match=f"127.0.0.1:{port}") as err:
        iggy_dlq.read(f"iggy://iggy:s3cret-pw@127.0.0.1:{port}", stream="s", topic="t")
    assert time.monotonic() - started < 10
    assert "s3cret-pw" not in str(err.value)


def test_credentials_stay_out_of_reprs(server: Server) -> None:
    stream, topic = _fresh_topic(server, [(0, VECTORS[0])])
    reader = iggy_dlq.read(server.address, stream=stream, topic=topic)
    for text in (repr(reader), reader.source, repr(reader._native)):
        # No user:password@ part (a short password like "iggy" would also
        # match the scheme, hence the whole pair).
        assert f"{server.username}:{server.password}" not in text
        assert "@" not in text
        assert server.host_port in text
    assert reader.source == f"iggy://{server.host_port}/{stream}/{topic}"
    reader.close()
