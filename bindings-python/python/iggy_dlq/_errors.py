"""The exceptions and warnings of iggy_dlq.

The native module raises these classes; their messages are those of the
Rust crates `iggy-dlq-envelope` and `iggy-dlq-runtime`, which say what was
wrong. Messages about an Iggy server name its `host:port`, never a password
or a token.
"""

from __future__ import annotations

__all__ = [
    "DecodeError",
    "FileFormatError",
    "IggyConnectionError",
    "IggyDlqError",
    "IggyNotFoundError",
    "IggyServerError",
    "InvalidEnvelopeError",
    "TornTailWarning",
]


class IggyDlqError(Exception):
    """Base class of every error iggy_dlq raises."""


class DecodeError(IggyDlqError, ValueError):
    """The bytes are not an encoded DLQ envelope: empty, larger than the
    decoder's limit, or not a protobuf `iggy.dlq.v1.DlqEnvelope`."""


class InvalidEnvelopeError(DecodeError):
    """The bytes decode, but the envelope breaks a rule of the schema (no
    origin, no failure, a header whose bytes do not fit its kind, ...)."""


class FileFormatError(IggyDlqError, ValueError):
    """A DLQ file does not start with the magic `IGGYDLQ1`, or a record
    before its end is damaged."""


class IggyServerError(IggyDlqError):
    """Reading a DLQ topic from an Iggy server failed; the message names
    the server (`host:port`) and what was being done."""


class IggyConnectionError(IggyServerError):
    """The Iggy server cannot be reached, refused the credentials, did not
    answer in time, or the connection was lost."""


class IggyNotFoundError(IggyServerError):
    """The stream, the topic or the partition does not exist on the Iggy
    server."""


class TornTailWarning(UserWarning):
    """A DLQ file ended in a torn record (a crash while it was written); the
    records before it were read, the torn one was skipped."""
