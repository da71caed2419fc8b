//! The dead letters of a DLQ topic on an Iggy server (`iggy://...`), read
//! through the runtime's client module `iggy_dlq_runtime::iggy_client`, the
//! one place of the project that uses the `iggy` crate.
//!
//! The extension holds one tokio runtime (one worker thread, started on
//! first use) for every reader; each network wait runs on it with the GIL
//! released.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use iggy_dlq_runtime::iggy_client::{
    ConnectionSettings, IggyClientError, IggyConnection, IggyFailureKind, OutgoingMessage, Polled,
};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use tokio::runtime::Runtime;

use crate::envelope::DlqEnvelope;
use crate::errors::{decode_error, raise};

/// How many messages one poll asks a partition for, at most.
const CHUNK: u32 = 500;
/// How long connecting and logging in may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request may take once connected.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Consumer offsets are not stored, and a reader does not reconnect: a lost
/// server ends the iteration with an error instead of hanging in retries.
const CONNECT_RETRIES: u32 = 0;

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// The extension's tokio runtime.
fn runtime() -> PyResult<&'static Runtime> {
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("iggy-dlq-io")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start the tokio runtime: {e}")))
}

/// A failure of a request, or its timeout.
enum Failed {
    Client(IggyClientError),
    TimedOut(String, Duration),
}

/// Runs `future` on the runtime, without the GIL, for at most `limit`.
fn wait<T: Send>(
    py: Python<'_>,
    what: String,
    limit: Duration,
    future: impl Future<Output = Result<T, IggyClientError>> + Send,
) -> PyResult<Result<T, Failed>> {
    let runtime = runtime()?;
    Ok(py.detach(|| {
        runtime.block_on(async {
            match tokio::time::timeout(limit, future).await {
                Ok(result) => result.map_err(Failed::Client),
                Err(_) => Err(Failed::TimedOut(what, limit)),
            }
        })
    }))
}

/// The Python exception for `failed`, its message after `prefix`.
fn server_error(py: Python<'_>, prefix: &str, failed: Failed) -> PyErr {
    match failed {
        Failed::Client(error) => {
            let class = match error.kind() {
                IggyFailureKind::Unreachable | IggyFailureKind::Unauthenticated => {
                    "IggyConnectionError"
                }
                IggyFailureKind::NotFound => "IggyNotFoundError",
                _ => "IggyServerError",
            };
            raise(py, class, format!("{prefix}{error}"))
        }
        Failed::TimedOut(what, limit) => raise(
            py,
            "IggyConnectionError",
            format!("{prefix}{what}: no answer within {} s", limit.as_secs()),
        ),
    }
}

/// Where a partition is read next.
#[derive(Clone, Copy)]
enum Position {
    /// From this offset.
    Offset(u64),
    /// From the first message whose server timestamp is this (microseconds
    /// since the epoch) or later.
    Since(u64),
}

/// One partition being read.
struct Cursor {
    partition_id: u32,
    position: Position,
    /// No more messages, and not following.
    done: bool,
}

/// A message polled and decoded, not yet handed out.
struct Pending {
    partition_id: u32,
    offset: u64,
    envelope: Result<iggy_dlq_envelope::DlqEnvelope, iggy_dlq_envelope::Error>,
}

/// Iterates over `(offset, DlqEnvelope, partition_id)` for the messages of
/// a DLQ topic on an Iggy server.
///
/// Every partition (or the one asked for) is read in offset order; the
/// partitions take turns, one chunk each. `follow` keeps polling for new
/// messages, every `poll_interval` seconds, until `close()` or a signal
/// (KeyboardInterrupt) between two polls. A message that is no valid
/// envelope raises `DecodeError` naming its partition and offset; the reader
/// stays after it, so the next `next()` goes on with the following one.
#[pyclass(module = "iggy_dlq")]
pub struct IggyTopicReader {
    address: String,
    stream: String,
    topic: String,
    connection: Option<IggyConnection>,
    cursors: Vec<Cursor>,
    pending: VecDeque<Pending>,
    remaining: Option<u64>,
    follow: bool,
    poll_interval: Duration,
}

/// Connects with `address` (`iggy://user:password@host:port`). Errors name
/// the server, never the credentials.
fn connect(py: Python<'_>, address: &str) -> PyResult<(ConnectionSettings, IggyConnection)> {
    let settings = ConnectionSettings::from_connection_string(address).map_err(|e| {
        PyValueError::new_err(format!(
            "not an Iggy address (iggy://user:password@host:port): {e}"
        ))
    })?;
    // The client's message names the address.
    let connection = wait(
        py,
        format!("cannot connect to Iggy at {}", settings.address),
        CONNECT_TIMEOUT,
        IggyConnection::connect_with_retries(&settings, CONNECT_RETRIES),
    )?
    .map_err(|failed| server_error(py, "", failed))?;
    Ok((settings, connection))
}

impl IggyTopicReader {
    fn prefix(&self) -> String {
        format!("Iggy at {}: ", self.address)
    }

    fn end(&mut self, py: Python<'_>) {
        self.pending.clear();
        self.cursors.clear();
        if let Some(connection) = self.connection.take()
            && let Ok(runtime) = runtime()
        {
            py.detach(|| runtime.block_on(connection.close()));
        }
    }

    /// Polls one chunk of every partition not done; how many messages came.
    fn poll_round(&mut self, py: Python<'_>) -> PyResult<usize> {
        let Some(connection) = self.connection.as_ref() else {
            return Ok(0);
        };
        let count = self
            .remaining
            .map_or(CHUNK, |r| u32::try_from(r).unwrap_or(CHUNK).min(CHUNK));
        let prefix = self.prefix();
        let (stream, topic, follow) = (self.stream.as_str(), self.topic.as_str(), self.follow);
        let cursors = &mut self.cursors;
        let pending = &mut self.pending;
        let round = async {
            let mut got = 0;
            for cursor in cursors.iter_mut().filter(|c| !c.done) {
                let polled: Polled = match cursor.position {
                    Position::Offset(offset) => {
                        connection
                            .poll_from(stream, topic, cursor.partition_id, offset, count)
                            .await?
                    }
                    Position::Since(micros) => {
                        connection
                            .poll_since(stream, topic, cursor.partition_id, micros, count)
                            .await?
                    }
                };
                match polled.messages.last() {
                    Some(last) => cursor.position = Position::Offset(last.offset + 1),
                    None if !follow => cursor.done = true,
                    None => {}
                }
                got += polled.messages.len();
                // Decoding here, off the GIL too.
                pending.extend(polled.messages.into_iter().map(|m| Pending {
                    partition_id: cursor.partition_id,
                    offset: m.offset,
                    envelope: iggy_dlq_envelope::decode(m.payload),
                }));
            }
            Ok(got)
        };
        wait(py, "polling".into(), REQUEST_TIMEOUT, round)?
            .map_err(|failed| server_error(py, &prefix, failed))
    }
}

#[pymethods]
impl IggyTopicReader {
    #[new]
    #[pyo3(signature = (
        address, stream, topic, *, offset = 0, since_micros = None, limit = None,
        follow = false, partition = None, poll_interval = 0.5
    ))]
    #[allow(clippy::too_many_arguments)] // the keyword arguments of iggy_dlq.read
    fn new(
        py: Python<'_>,
        address: &str,
        stream: String,
        topic: String,
        offset: u64,
        since_micros: Option<u64>,
        limit: Option<u64>,
        follow: bool,
        partition: Option<u32>,
        poll_interval: f64,
    ) -> PyResult<Self> {
        let poll_interval = Duration::try_from_secs_f64(poll_interval)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                PyValueError::new_err(format!(
                    "poll_interval must be a positive number of seconds, not {poll_interval}"
                ))
            })?;
        let (settings, connection) = connect(py, address)?;
        let prefix = format!("Iggy at {}: ", settings.address);
        let info = wait(
            py,
            "looking up the topic".into(),
            REQUEST_TIMEOUT,
            connection.ensure_topic(&stream, &topic, 1, false),
        )?
        .map_err(|failed| server_error(py, &prefix, failed))?;
        // Partition ids are zero-based in this protocol version.
        let partition_ids: Vec<u32> = match partition {
            None => (0..info.partitions).collect(),
            Some(id) if id < info.partitions => vec![id],
            Some(id) => {
                return Err(raise(
                    py,
                    "IggyNotFoundError",
                    format!(
                        "{prefix}topic `{stream}/{topic}` has no partition {id}: its {} \
                         partitions are numbered from 0",
                        info.partitions
                    ),
                ));
            }
        };
        let position = since_micros.map_or(Position::Offset(offset), Position::Since);
        Ok(IggyTopicReader {
            address: settings.address,
            stream,
            topic,
            connection: Some(connection),
            cursors: partition_ids
                .into_iter()
                .map(|partition_id| Cursor {
                    partition_id,
                    position,
                    done: false,
                })
                .collect(),
            pending: VecDeque::new(),
            remaining: limit,
            follow,
            poll_interval,
        })
    }

    /// The server's `host:port`.
    #[getter]
    fn address(&self) -> &str {
        &self.address
    }

    /// The DLQ stream.
    #[getter]
    fn stream(&self) -> &str {
        &self.stream
    }

    /// The DLQ topic.
    #[getter]
    fn topic(&self) -> &str {
        &self.topic
    }

    /// The partition ids being read (empty once the reader ended).
    #[getter]
    fn partitions(&self) -> Vec<u32> {
        self.cursors.iter().map(|c| c.partition_id).collect()
    }

    /// Ends the iteration and disconnects; idempotent.
    fn close(&mut self, py: Python<'_>) {
        self.end(py);
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<Option<(u64, DlqEnvelope, u32)>> {
        loop {
            if self.remaining == Some(0) {
                self.end(py);
                return Ok(None);
            }
            if let Some(next) = self.pending.pop_front() {
                if let Some(remaining) = self.remaining.as_mut() {
                    *remaining -= 1;
                }
                return match next.envelope {
                    Ok(envelope) => Ok(Some((
                        next.offset,
                        DlqEnvelope::new(envelope),
                        next.partition_id,
                    ))),
                    Err(err) => {
                        let err = decode_error(py, &err);
                        let message = format!(
                            "{}/{} partition {} offset {}: {}",
                            self.stream,
                            self.topic,
                            next.partition_id,
                            next.offset,
                            err.value(py)
                        );
                        Err(PyErr::from_type(err.get_type(py), message))
                    }
                };
            }
            if self.connection.is_none() {
                return Ok(None);
            }
            let got = match self.poll_round(py) {
                Ok(got) => got,
                Err(err) => {
                    self.end(py);
                    return Err(err);
                }
            };
            if got == 0 {
                if self.cursors.iter().all(|c| c.done) {
                    self.end(py);
                    return Ok(None);
                }
                let interval = self.poll_interval;
                py.detach(|| std::thread::sleep(interval));
                // Ctrl-C (or another signal handler's exception) ends a
                // follow between two polls.
                py.check_signals()?;
            }
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "IggyTopicReader({:?}, stream={:?}, topic={:?})",
            self.address, self.stream, self.topic
        )
    }
}

/// Writes `messages` (`(partition_id, bytes)`) to `stream`/`topic`,
/// creating both, the topic with `partitions` partitions, when missing.
/// Only for the tests of `iggy_dlq`, which need a DLQ topic with known
/// content; not part of the API.
#[pyfunction]
#[pyo3(name = "_produce_for_tests")]
pub fn produce_for_tests(
    py: Python<'_>,
    address: &str,
    stream: &str,
    topic: &str,
    partitions: u32,
    messages: Vec<(u32, Vec<u8>)>,
) -> PyResult<()> {
    let (settings, connection) = connect(py, address)?;
    let prefix = format!("Iggy at {}: ", settings.address);
    let produce = async {
        connection
            .ensure_topic(stream, topic, partitions, true)
            .await?;
        // One request per run of messages to the same partition, in order.
        let mut start = 0;
        while start < messages.len() {
            let partition_id = messages[start].0;
            let end = messages[start..]
                .iter()
                .position(|(p, _)| *p != partition_id)
                .map_or(messages.len(), |n| start + n);
            let batch: Vec<OutgoingMessage> = messages[start..end]
                .iter()
                .map(|(_, payload)| OutgoingMessage {
                    id: None,
                    payload: Bytes::copy_from_slice(payload),
                    headers: None,
                })
                .collect();
            connection
                .send_to_partition(stream, topic, partition_id, &batch)
                .await?;
            start = end;
        }
        connection.close().await;
        Ok(())
    };
    wait(py, "producing".into(), REQUEST_TIMEOUT, produce)?
        .map_err(|failed| server_error(py, &prefix, failed))
}
