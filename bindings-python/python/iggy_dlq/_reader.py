"""read(): the dead letters of a DLQ target, with their DLQ offsets."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, NamedTuple

from ._errors import TornTailWarning
from ._native import DlqEnvelope, DlqFileReader, IggyTopicReader

__all__ = ["DlqReader", "DlqRecord", "read"]

if TYPE_CHECKING:
    from typing_extensions import disjoint_base
else:
    # Only type checkers need the mark; typing_extensions is no dependency.
    def disjoint_base(cls: type) -> type:
        return cls

_IGGY_SCHEMES = ("iggy://", "iggy+tcp://", "iggy+quic://", "iggy+http://")


class _OffsetAndEnvelope(NamedTuple):
    offset: int
    envelope: DlqEnvelope


# A tuple subclass with an instance __dict__ (for `partition`) cannot share
# a layout with another base, which type checkers should know (PEP 800).
@disjoint_base
class DlqRecord(_OffsetAndEnvelope):
    """One dead letter and its offset in the DLQ: for a DLQ file, the
    record's position in the file, from 0; for an Iggy topic, the message's
    offset in its partition.

    A record is the pair `(offset, envelope)`; `partition` (the Iggy
    partition id, from 0, or None for a DLQ file) is an attribute beside
    the pair, so that `offset, envelope = record` works for every source.
    Equality compares the pair.
    """

    partition: int | None

    def __new__(
        cls, offset: int, envelope: DlqEnvelope, partition: int | None = None
    ) -> DlqRecord:
        record = super().__new__(cls, offset, envelope)
        record.partition = partition
        return record

    def __repr__(self) -> str:
        where = "" if self.partition is None else f", partition={self.partition}"
        return f"DlqRecord(offset={self.offset}{where}, envelope={self.envelope!r})"


class DlqReader(Iterator[DlqRecord]):
    """Iterates over the records of a DLQ target; returned by `read()`.

    For a DLQ file, a torn last record (a crash while it was written) ends
    the iteration with a `TornTailWarning`, and `torn_tail` then holds
    `(valid_len, torn_bytes)`.

    For an Iggy topic, `close()` (or leaving a `with` block) ends the
    iteration and disconnects; that is how a `follow=True` reader stops,
    besides KeyboardInterrupt.
    """

    def __init__(self, native: DlqFileReader | IggyTopicReader) -> None:
        self._native = native
        self._warned = False

    @property
    def source(self) -> str:
        """The file being read, or `iggy://HOST:PORT/STREAM/TOPIC` (without
        credentials) for an Iggy topic."""
        native = self._native
        if isinstance(native, IggyTopicReader):
            return f"iggy://{native.address}/{native.stream}/{native.topic}"
        return native.path

    @property
    def torn_tail(self) -> tuple[int, int] | None:
        """`(valid_len, torn_bytes)` after a torn last record, else None
        (always None for an Iggy topic)."""
        native = self._native
        if isinstance(native, IggyTopicReader):
            return None
        return native.torn_tail

    def close(self) -> None:
        """Ends the iteration; for an Iggy topic, also disconnects."""
        native = self._native
        if isinstance(native, IggyTopicReader):
            native.close()

    def __enter__(self) -> DlqReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __iter__(self) -> DlqReader:
        return self

    def __next__(self) -> DlqRecord:
        native = self._native
        if isinstance(native, IggyTopicReader):
            offset, envelope, partition = next(native)
            return DlqRecord(offset, envelope, partition)
        try:
            offset, envelope = next(native)
        except StopIteration:
            torn = native.torn_tail
            if torn is not None and not self._warned:
                self._warned = True
                valid_len, torn_bytes = torn
                warnings.warn(
                    f"{native.path}: skipped a torn last record of {torn_bytes} bytes "
                    f"after byte {valid_len} (a write cut short); the records before it are intact",
                    TornTailWarning,
                    stacklevel=2,
                )
            raise
        return DlqRecord(offset, envelope)

    def __repr__(self) -> str:
        return f"DlqReader({self.source!r})"


def _micros(since: datetime) -> int:
    if since.tzinfo is None or since.utcoffset() is None:
        raise ValueError(
            "since must be a timezone-aware datetime, e.g. datetime.now(timezone.utc) - "
            "timedelta(hours=1); a naive one would be ambiguous"
        )
    micros = round(since.timestamp() * 1_000_000)
    return max(micros, 0)


def read(
    source: str | os.PathLike[str],
    *,
    offset: int = 0,
    limit: int | None = None,
    stream: str | None = None,
    topic: str | None = None,
    since: datetime | None = None,
    follow: bool = False,
    partition: int | None = None,
) -> DlqReader:
    """The dead letters of a DLQ target, in order, with their offsets.

    `source` is one of:

    - a DLQ file, as `file://PATH` or a plain path: the embedded DLQ target
      of the runtime. Records are read from `offset` on (0 is the first).
    - an Iggy DLQ topic, `iggy://user:password@host:port` (or
      `iggy://TOKEN@host:port`, a personal access token; `iggy+tcp://` is
      the same), with `stream` and `topic`. Every partition is read (or only
      `partition`, a zero-based id), each in offset order, the partitions
      taking turns chunk by chunk; each record's `partition` says which.
      Reading starts at `offset` in each partition, or, with `since` (a
      timezone-aware datetime), at each partition's first message that the
      server stored at that time or later. `follow=True` then waits for new
      dead letters, polling every half second, until the reader is closed
      or KeyboardInterrupt. The server is reached and the topic looked up
      by `read()` itself, with the GIL released while it waits.

    At most `limit` records are read in all (all of them when None).

    Raises `FileNotFoundError` (or another `OSError`) when the file cannot be
    read, `FileFormatError` for a file that is not a DLQ file or is damaged
    before its end; `IggyConnectionError` when the server cannot be reached
    or refuses the credentials, `IggyNotFoundError` for an unknown stream,
    topic or partition, `IggyServerError` for another failure of the server.
    A record that is no valid envelope raises `DecodeError` naming its
    offset (and partition); an Iggy reader stays after it, so the next
    `next()` goes on with the following message, while a file reader ends.
    """
    if offset < 0:
        raise ValueError(f"offset must be 0 or more, not {offset}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be 0 or more (or None for all), not {limit}")
    text = os.fspath(source)
    if text.startswith(_IGGY_SCHEMES):
        scheme = text.split("://", 1)[0]
        if scheme not in ("iggy", "iggy+tcp"):
            raise ValueError(
                f"{scheme}:// is not supported: iggy_dlq talks to Iggy over TCP "
                "(iggy://user:password@host:port)"
            )
        if stream is None or topic is None:
            raise ValueError("reading an Iggy DLQ topic needs stream= and topic=")
        if since is not None and offset != 0:
            raise ValueError("give either offset or since, not both")
        if partition is not None and partition < 0:
            raise ValueError(f"partition must be 0 or more (ids start at 0), not {partition}")
        address = "iggy://" + text.split("://", 1)[1]
        return DlqReader(
            IggyTopicReader(
                address,
                stream,
                topic,
                offset=offset,
                since_micros=None if since is None else _micros(since),
                limit=limit,
                follow=follow,
                partition=partition,
            )
        )
    if stream is not None or topic is not None or since is not None or follow:
        raise ValueError("stream, topic, since and follow apply to iggy:// sources only")
    if partition is not None:
        raise ValueError("partition applies to iggy:// sources only")
    if text.startswith("file://"):
        text = text.removeprefix("file://")
    elif "://" in text:
        scheme = text.split("://", 1)[0]
        raise ValueError(
            f"unknown DLQ source scheme {scheme!r}: expected file://PATH, a path, or iggy://"
        )
    return DlqReader(DlqFileReader(text, offset, limit))
