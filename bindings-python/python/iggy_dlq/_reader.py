"""read(): the dead letters of a DLQ target, with their DLQ offsets."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from datetime import datetime
from typing import NamedTuple

from ._errors import TornTailWarning
from ._native import DlqEnvelope, DlqFileReader

__all__ = ["DlqReader", "DlqRecord", "read"]

_IGGY_SCHEMES = ("iggy://", "iggy+tcp://", "iggy+quic://", "iggy+http://")


class DlqRecord(NamedTuple):
    """One dead letter and its offset in the DLQ (for a DLQ file, the
    record's position in the file, from 0)."""

    offset: int
    envelope: DlqEnvelope


class DlqReader(Iterator[DlqRecord]):
    """Iterates over the records of a DLQ target; returned by `read()`.

    For a DLQ file, a torn last record (a crash while it was written) ends
    the iteration with a `TornTailWarning`, and `torn_tail` then holds
    `(valid_len, torn_bytes)`.
    """

    def __init__(self, native: DlqFileReader) -> None:
        self._native = native
        self._warned = False

    @property
    def source(self) -> str:
        """The file being read."""
        return self._native.path

    @property
    def torn_tail(self) -> tuple[int, int] | None:
        """`(valid_len, torn_bytes)` after a torn last record, else None."""
        return self._native.torn_tail

    def __iter__(self) -> DlqReader:
        return self

    def __next__(self) -> DlqRecord:
        try:
            offset, envelope = next(self._native)
        except StopIteration:
            torn = self._native.torn_tail
            if torn is not None and not self._warned:
                self._warned = True
                valid_len, torn_bytes = torn
                warnings.warn(
                    f"{self._native.path}: skipped a torn last record of {torn_bytes} bytes "
                    f"after byte {valid_len} (a write cut short); the records before it are intact",
                    TornTailWarning,
                    stacklevel=2,
                )
            raise
        return DlqRecord(offset, envelope)

    def __repr__(self) -> str:
        return f"DlqReader({self._native.path!r})"


def read(
    source: str | os.PathLike[str],
    *,
    offset: int = 0,
    limit: int | None = None,
    stream: str | None = None,
    topic: str | None = None,
    since: datetime | None = None,
    follow: bool = False,
) -> DlqReader:
    """The dead letters of a DLQ target, in order, with their offsets.

    `source` is a DLQ file, as `file://PATH` or a plain path: the embedded
    DLQ target of the runtime. Records are read from `offset` on (0 is the
    first), at most `limit` of them (all when None).

    An Iggy DLQ topic, `iggy://user:password@host:port` with `stream` and
    `topic` (and `since` to start from a time, `follow` to wait for new dead
    letters), is part of the API but not of this build: such a source raises
    `NotImplementedError`.

    Raises `FileNotFoundError` (or another `OSError`) when the file cannot be
    read, `FileFormatError` for a file that is not a DLQ file or is damaged
    before its end, `DecodeError` for a record that is no valid envelope.
    """
    if offset < 0:
        raise ValueError(f"offset must be 0 or more, not {offset}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be 0 or more (or None for all), not {limit}")
    text = os.fspath(source)
    if text.startswith(_IGGY_SCHEMES):
        raise NotImplementedError(
            "reading a DLQ topic from an Iggy server (iggy://...) is not in this build of "
            "iggy_dlq yet; read a DLQ file (file://PATH) instead"
        )
    if stream is not None or topic is not None or since is not None or follow:
        raise ValueError("stream, topic, since and follow apply to iggy:// sources only")
    if text.startswith("file://"):
        text = text.removeprefix("file://")
    elif "://" in text:
        scheme = text.split("://", 1)[0]
        raise ValueError(
            f"unknown DLQ source scheme {scheme!r}: expected file://PATH, a path, or iggy://"
        )
    return DlqReader(DlqFileReader(text, offset, limit))
