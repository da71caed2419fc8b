//! The iggy-dlq runtime.
#![warn(missing_docs)]

pub mod app;
pub mod callbacks;
pub mod config;
pub mod demo;
pub mod dlq;
pub mod iggy_client;
pub mod metrics;
pub mod metrics_server;
pub mod plugin;
pub mod replay;
pub mod sink;
pub mod source;
