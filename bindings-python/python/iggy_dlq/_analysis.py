"""Analysis: dead letters as an Arrow table, a pandas frame, or a summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from ._native import DlqEnvelope, columns
from ._reader import DlqRecord

if TYPE_CHECKING:
    # Neither ships type information; the optional extra need not be there.
    import pandas as _pd  # type: ignore[import-untyped, unused-ignore]
    import pyarrow as _pa  # type: ignore[import-untyped, unused-ignore]

__all__ = ["Summary", "summary", "to_arrow", "to_pandas"]

_INSTALL_HINT = "pip install 'iggy-dlq[arrow]'"

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _import_pyarrow() -> Any:
    try:
        import pyarrow
    except ImportError as err:
        raise ImportError(
            f"iggy_dlq.to_arrow() and to_pandas() need pyarrow: {_INSTALL_HINT}"
        ) from err
    return pyarrow


def _envelopes_and_offsets(
    items: Iterable[DlqEnvelope | DlqRecord],
) -> tuple[list[DlqEnvelope], list[int] | None]:
    envelopes: list[DlqEnvelope] = []
    offsets: list[int] = []
    for item in items:
        if isinstance(item, DlqRecord):
            offsets.append(item.offset)
            envelopes.append(item.envelope)
        elif isinstance(item, DlqEnvelope):
            envelopes.append(item)
        else:
            raise TypeError(f"expected DlqEnvelope or DlqRecord, got {type(item).__name__}")
    if offsets and len(offsets) != len(envelopes):
        raise TypeError("mix of DlqRecord and DlqEnvelope: pass one kind only")
    return envelopes, (offsets or None)


def _schema(pa: Any, with_offset: bool) -> Any:
    ts = pa.timestamp("us", tz="UTC")
    header = pa.struct(
        [
            ("key", pa.string()),
            ("key_kind", pa.string()),
            ("value", pa.string()),
            ("value_kind", pa.string()),
        ]
    )
    fields = [("dlq_offset", pa.uint64())] if with_offset else []
    fields += [
        ("origin", pa.string()),
        ("stream", pa.string()),
        ("topic", pa.string()),
        ("sink_partition_id", pa.uint32()),
        ("sink_offset", pa.uint64()),
        ("sink_message_id", pa.string()),
        ("sink_timestamp", ts),
        ("sink_origin_timestamp", ts),
        ("sink_consumer_group", pa.string()),
        ("source_system", pa.string()),
        ("source_resource", pa.string()),
        ("source_position", pa.binary()),
        ("source_record_key", pa.binary()),
        ("payload", pa.large_binary()),
        ("payload_schema", pa.string()),
        ("payload_original_length", pa.uint64()),
        ("payload_truncated", pa.bool_()),
        ("payload_original_sha256", pa.binary()),
        ("headers", pa.list_(header)),
        ("failure_reason", pa.string()),
        ("failure_code", pa.string()),
        ("failure_stage", pa.string()),
        ("failure_retryable", pa.bool_()),
        ("failure_detail", pa.list_(pa.string())),
        ("failure_attempts", pa.uint32()),
        ("first_failed_at", ts),
        ("last_failed_at", ts),
        ("connector_key", pa.string()),
        ("connector_name", pa.string()),
        ("connector_kind", pa.string()),
        ("connector_plugin_version", pa.string()),
        ("connector_runtime_instance_id", pa.string()),
        ("written_at", ts),
        ("replay_count", pa.uint32()),
    ]
    return pa.schema(fields)


def to_arrow(envelopes: Iterable[DlqEnvelope | DlqRecord]) -> _pa.Table:
    """The dead letters as a `pyarrow.Table`, one row each.

    Takes envelopes, or the records `read()` yields (then the first column
    is `dlq_offset`). The origin is flattened: `origin` is `"sink"` or
    `"source"`, `stream`/`topic` are where a sink's message came
    from or where a source's record was going, and the `sink_*`/`source_*`
    columns are null where they do not apply. Message ids (unsigned 128-bit)
    are decimal strings, times are UTC timestamps (null when not known),
    header keys and values are text with their kinds.

    Needs pyarrow: `pip install 'iggy-dlq[arrow]'`.
    """
    pa = _import_pyarrow()
    items, offsets = _envelopes_and_offsets(envelopes)
    data: dict[str, Any] = columns(items)
    if offsets is not None:
        data = {"dlq_offset": offsets, **data}
    schema = _schema(pa, offsets is not None)
    arrays = [pa.array(data[f.name], type=f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def to_pandas(envelopes: Iterable[DlqEnvelope | DlqRecord]) -> _pd.DataFrame:
    """The dead letters as a `pandas.DataFrame`: `to_arrow(...).to_pandas()`.

    Needs pyarrow and pandas: `pip install 'iggy-dlq[arrow]'`.
    """
    try:
        import pandas  # noqa: F401
    except ImportError as err:
        raise ImportError(f"iggy_dlq.to_pandas() needs pandas: {_INSTALL_HINT}") from err
    return to_arrow(envelopes).to_pandas()


def _datetime(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


@dataclass(frozen=True)
class Summary:
    """Counts of dead letters by failure code, stage, connector and origin
    topic (`"stream/topic"`: where a sink's message came from, or where a
    source's record was going), most frequent first, and the time of the
    oldest and the newest failure (None when there is none)."""

    total: int = 0
    by_code: dict[str, int] = field(default_factory=dict)
    by_stage: dict[str, int] = field(default_factory=dict)
    by_connector: dict[str, int] = field(default_factory=dict)
    by_topic: dict[str, int] = field(default_factory=dict)
    oldest_failure: datetime | None = None
    newest_failure: datetime | None = None

    def __str__(self) -> str:
        lines = [f"{self.total} dead letters"]
        if self.oldest_failure is not None and self.newest_failure is not None:
            lines.append(
                f"failures from {self.oldest_failure.isoformat()} "
                f"to {self.newest_failure.isoformat()}"
            )
        for title, counts in (
            ("by code", self.by_code),
            ("by stage", self.by_stage),
            ("by connector", self.by_connector),
            ("by topic", self.by_topic),
        ):
            if counts:
                lines.append(f"{title}:")
                width = max(len(k) for k in counts)
                lines += [f"  {k:<{width}}  {n}" for k, n in counts.items()]
        return "\n".join(lines)


def summary(envelopes: Iterable[DlqEnvelope | DlqRecord]) -> Summary:
    """Counts by code, stage, connector and origin topic, and the oldest and
    newest failure, of the dead letters given (envelopes or records)."""
    items, _ = _envelopes_and_offsets(envelopes)
    by_code: Counter[str] = Counter()
    by_stage: Counter[str] = Counter()
    by_connector: Counter[str] = Counter()
    by_topic: Counter[str] = Counter()
    oldest: int | None = None
    newest: int | None = None
    for envelope in items:
        failure = envelope.failure
        by_code[failure.code] += 1
        by_stage[failure.stage] += 1
        by_connector[envelope.connector.key] += 1
        sink = envelope.sink
        if sink is not None:
            by_topic[f"{sink.stream}/{sink.topic}"] += 1
        else:
            source = envelope.source
            assert source is not None
            by_topic[f"{source.target_stream}/{source.target_topic}"] += 1
        first = failure.first_failed_at_micros or failure.last_failed_at_micros
        last = failure.last_failed_at_micros or failure.first_failed_at_micros
        if first and (oldest is None or first < oldest):
            oldest = first
        if last and (newest is None or last > newest):
            newest = last
    return Summary(
        total=len(items),
        by_code=dict(by_code.most_common()),
        by_stage=dict(by_stage.most_common()),
        by_connector=dict(by_connector.most_common()),
        by_topic=dict(by_topic.most_common()),
        oldest_failure=None if oldest is None else _datetime(oldest),
        newest_failure=None if newest is None else _datetime(newest),
    )
