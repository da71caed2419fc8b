//! The traits a connector implements.

use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::abi::{
    BatchResult, ConnectorState, MessagesMetadata, ProducedMessages, RawMessage, TopicMetadata,
};
use crate::{DlqWriter, Result};

/// A sink: consumes batches of Iggy messages and writes them to a target.
///
/// Export it with [`sink_connector!`](crate::sink_connector). The methods
/// are synchronous and calls for one instance never overlap; a connector
/// that needs async I/O runs its own executor. Panics are caught and become
/// error statuses.
pub trait Sink: Sized + Send + 'static {
    /// The plugin config, deserialized from the JSON the runtime passes to
    /// `open`.
    type Config: DeserializeOwned;

    /// Opens instance `id`.
    ///
    /// # Errors
    ///
    /// When the connector cannot start; `open` then returns status 1.
    fn open(id: u32, config: Self::Config) -> Result<Self>;

    /// Consumes one batch. Write what succeeds to the target (in one batch
    /// write), and hand each message that fails to `dlq`; see
    /// [`DlqWriter::partition`].
    ///
    /// # Errors
    ///
    /// When the batch as a whole failed; `consume` then returns status 1.
    fn consume(
        &mut self,
        topic: &TopicMetadata,
        metadata: &MessagesMetadata,
        messages: Vec<RawMessage>,
        dlq: &DlqWriter,
    ) -> Result<()>;

    /// Closes the instance; the DLQ still works during this call.
    ///
    /// # Errors
    ///
    /// When cleanup failed; `close` then returns status 1.
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

/// A source: reads records from an external system and produces them as
/// Iggy messages.
///
/// Export it with [`source_connector!`](crate::source_connector). After
/// `iggy_source_handle_v2` the SDK polls it on a thread of its own and hands
/// each non-empty batch to the runtime; one batch is in flight at a time, and
/// the next poll waits for the runtime's [`BatchResult`] (or 30 s, then
/// Nack). Stage position changes in [`poll`](Self::poll) and commit them in
/// [`on_batch_result`](Self::on_batch_result).
pub trait Source: Sized + Send + 'static {
    /// The plugin config, deserialized from the JSON the runtime passes to
    /// `open`.
    type Config: DeserializeOwned;

    /// Opens instance `id`, resuming from `state` if the runtime saved one.
    ///
    /// # Errors
    ///
    /// When the connector cannot start; `open` then returns status 1.
    fn open(id: u32, config: Self::Config, state: Option<ConnectorState>) -> Result<Self>;

    /// Produces the next batch. Records that cannot be converted go to
    /// `dlq` (see [`DlqWriter::send_record`]). A batch with no messages and
    /// no state is not sent; the SDK waits
    /// [`idle_interval`](Self::idle_interval) and polls again. Should return
    /// within a bounded time: `close` waits for it.
    ///
    /// # Errors
    ///
    /// When polling failed; the SDK logs it and polls again after the idle
    /// interval.
    fn poll(&mut self, dlq: &DlqWriter) -> Result<ProducedMessages>;

    /// The runtime's answer to the last batch: commit the staged position on
    /// Ack, roll it back on Nack.
    ///
    /// # Errors
    ///
    /// An error stops polling.
    fn on_batch_result(&mut self, result: BatchResult) -> Result<()> {
        let _ = result;
        Ok(())
    }

    /// How long to wait after a poll that produced nothing.
    fn idle_interval(&self) -> Duration {
        Duration::from_millis(100)
    }

    /// Closes the instance; the DLQ still works during this call.
    ///
    /// # Errors
    ///
    /// When cleanup failed; `close` then returns status 1.
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}
