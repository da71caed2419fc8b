//! The dead-letter path of the runtime: from the plugin's callback to a
//! confirmed write in the DLQ topic or file.
//!
//! ```text
//! plugin ──DlqCallback──▶ DlqRoute::submit ──bounded queue──▶ producer task ──▶ Iggy DLQ topic
//!          (checks, fits,       (blocks when full:                │  (batches, retries)
//!           tracks the batch)    back-pressure)                   └──▶ spool file while Iggy is down
//! ```
//!
//! Each dead letter carries the [`BatchTracker`] of the batch that produced
//! it. The sink runner commits a batch's offset only after its tracker says
//! every dead letter is confirmed: acknowledged by Iggy, or synced to the
//! local spool or file target.

mod file;
mod producer;
mod route;

pub use file::{DlqFileError, DlqFileWriter, Recovery, Spool, read_records};
pub use producer::{
    Destination, DlqProducer, DlqProducerConfig, DlqTransport, ProducerReport, TransportError,
};
pub use route::{BatchTracker, DeadLetter, DlqRoute, DlqStatus, RouteConfig};
