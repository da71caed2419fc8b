//! The iggy-dlq runtime.
#![warn(missing_docs)]

pub mod callbacks;
pub mod config;
pub mod dlq;
pub mod iggy_client;
pub mod metrics;
pub mod plugin;
pub mod sink;
pub mod source;
