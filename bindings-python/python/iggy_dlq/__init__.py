"""Decode and study the dead letters of iggy-dlq, the dead-letter queue of
Apache Iggy connectors.

Each dead letter is one `DlqEnvelope` (schema `iggy.dlq.v1`): the failed
message byte for byte, where it came from, why it failed and which connector
failed it. Decoding is done by the project's Rust crate `iggy-dlq-envelope`,
the same code the connectors' runtime uses.

    >>> import iggy_dlq
    >>> for offset, envelope in iggy_dlq.read("file:///var/lib/iggy-dlq/orders.dlq"):
    ...     print(offset, envelope.failure.code, envelope.payload[:40])  # doctest: +SKIP
    >>> print(iggy_dlq.summary(iggy_dlq.read("orders.dlq")))           # doctest: +SKIP
    >>> table = iggy_dlq.to_arrow(iggy_dlq.read("orders.dlq"))         # doctest: +SKIP

A DLQ topic on an Iggy server is read the same way:

    >>> for record in iggy_dlq.read("iggy://iggy:secret@127.0.0.1:8090",
    ...                             stream="dlq", topic="orders"):
    ...     print(record.partition, record.offset, record.envelope.failure.reason)  # doctest: +SKIP
"""

from __future__ import annotations

from ._analysis import Summary, summary, to_arrow, to_pandas
from ._errors import (
    DecodeError,
    FileFormatError,
    IggyConnectionError,
    IggyDlqError,
    IggyNotFoundError,
    IggyServerError,
    InvalidEnvelopeError,
    TornTailWarning,
)
from ._native import (
    DEFAULT_MAX_ENVELOPE_LEN,
    ENVELOPE_TYPE_NAME,
    REPLAY_COUNT_HEADER,
    Connector,
    DlqEnvelope,
    DlqFileReader,
    Failure,
    Header,
    IggyTopicReader,
    PayloadIntegrity,
    SinkOrigin,
    SourceOrigin,
    decode,
    decode_many,
)
from ._reader import DlqReader, DlqRecord, read

__all__ = [
    "DEFAULT_MAX_ENVELOPE_LEN",
    "ENVELOPE_TYPE_NAME",
    "REPLAY_COUNT_HEADER",
    "Connector",
    "DecodeError",
    "DlqEnvelope",
    "DlqFileReader",
    "DlqReader",
    "DlqRecord",
    "Failure",
    "FileFormatError",
    "Header",
    "IggyConnectionError",
    "IggyDlqError",
    "IggyNotFoundError",
    "IggyServerError",
    "IggyTopicReader",
    "InvalidEnvelopeError",
    "PayloadIntegrity",
    "SinkOrigin",
    "SourceOrigin",
    "Summary",
    "TornTailWarning",
    "decode",
    "decode_many",
    "read",
    "summary",
    "to_arrow",
    "to_pandas",
]
