//! # Add a DLQ to your connector
//!
//! An Iggy connector built with this SDK hands every message it fails on,
//! and only those, to a [`DlqWriter`]; the runtime injects the writer's
//! [`DlqCallback`](abi::DlqCallback) after `open` and produces each dead
//! letter, a [`DlqEnvelope`](iggy_dlq_envelope::DlqEnvelope), to the DLQ topic
//! of your choosing. Successes go to the target in one batch write:
//!
//! ```no_run
//! use iggy_dlq_sdk::abi::{MessagesMetadata, RawMessage, TopicMetadata};
//! use iggy_dlq_sdk::{DlqWriter, Error, Result, Sink, sink_connector};
//!
//! #[derive(serde::Deserialize)]
//! struct Config {
//!     path: String,
//! }
//!
//! struct JsonSink {
//!     path: String,
//! }
//!
//! impl Sink for JsonSink {
//!     type Config = Config;
//!
//!     fn open(_id: u32, config: Config) -> Result<Self> {
//!         Ok(JsonSink { path: config.path })
//!     }
//!
//!     fn consume(
//!         &mut self,
//!         topic: &TopicMetadata,
//!         metadata: &MessagesMetadata,
//!         messages: Vec<RawMessage>,
//!         dlq: &DlqWriter,
//!     ) -> Result<()> {
//!         // Each message that is not JSON is dead-lettered with its reason.
//!         let batch = dlq.partition(topic, metadata, &messages, |message| {
//!             serde_json::from_slice::<serde_json::Value>(&message.payload)
//!                 .map_err(|e| e.to_string())
//!         });
//!         let mut lines = String::new();
//!         for value in &batch.succeeded {
//!             lines.push_str(&value.to_string());
//!             lines.push('\n');
//!         }
//!         // ... one batch write of `lines` to `self.path` ...
//!         # let _ = &self.path;
//!         Ok(())
//!     }
//! }
//!
//! // The plugin's entry points, iggy_sink_open .. iggy_sink_set_dlq_callback.
//! sink_connector!(JsonSink);
//! # fn main() {}
//! ```
//!
//! One failed message by hand is `dlq.send(&topic, partition_id, &message,
//! "reason")`, or [`DlqWriter::send_failure`] with a full
//! [`Failure`] (error code, stage, retryable,
//! attempts, detail). A source dead-letters a record it cannot convert with
//! [`DlqWriter::send_record`] and a
//! [`SourceOrigin`].
//!
//! # The plugin ABI
//!
//! [`sink_connector!`] and [`source_connector!`] export exactly the symbols
//! of Apache Iggy's connector runtime, so a plugin built with this SDK loads
//! there unchanged, plus the optional `iggy_sink_set_dlq_callback` /
//! `iggy_source_set_dlq_callback` that a DLQ-aware runtime calls after a
//! successful `open`. [`abi`] holds the wire types and status codes a runtime
//! needs; [`ffi`] is the only place raw pointers are touched.
//!
//! A runtime that is not DLQ-aware never sets the callback: every send then
//! returns [`Error::NotConfigured`], is counted in
//! [`DlqWriter::lost_count`] and logged once per instance.
//!
//! The connector's identity in each envelope is its plugin package version
//! and, from the plugin config, the optional top-level strings
//! `connector_key` and `connector_name` (defaulting to the package name).

#![warn(missing_docs)]

pub mod abi;
mod connector;
mod dlq;
mod error;
pub mod ffi;

pub use connector::{Sink, Source};
pub use dlq::{DlqWriter, IntoFailure, Partitioned};
pub use error::{Error, Result};
pub use iggy_dlq_envelope;
pub use iggy_dlq_envelope::{ErrorCode, Failure, FailureStage, SourceOrigin};

/// Exports a [`Sink`] type as a plugin: `iggy_sink_open`, `iggy_sink_consume`,
/// `iggy_sink_close`, `iggy_sink_version` and `iggy_sink_set_dlq_callback`.
///
/// `sink_connector!(MySink, dlq = false)` leaves out
/// `iggy_sink_set_dlq_callback`, for a plugin that must look DLQ-unaware to
/// the runtime. Use it once per plugin crate.
#[macro_export]
macro_rules! sink_connector {
    (@base $ty:ty) => {
        static __IGGY_DLQ_SINK_HOST: $crate::ffi::SinkHost<$ty> =
            $crate::ffi::SinkHost::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"));

        /// # Safety
        ///
        /// `config_ptr` must be null or point to `config_len` readable bytes.
        #[unsafe(no_mangle)]
        unsafe extern "C" fn iggy_sink_open(
            id: u32,
            config_ptr: *const u8,
            config_len: usize,
            log_callback: ::core::option::Option<$crate::abi::LogCallback>,
        ) -> i32 {
            // SAFETY: the caller upholds the contract, which is SinkHost::open's.
            unsafe { __IGGY_DLQ_SINK_HOST.open(id, config_ptr, config_len, log_callback) }
        }

        /// # Safety
        ///
        /// Each pointer must be null or point to its length in readable bytes.
        #[unsafe(no_mangle)]
        unsafe extern "C" fn iggy_sink_consume(
            id: u32,
            topic_meta_ptr: *const u8,
            topic_meta_len: usize,
            messages_meta_ptr: *const u8,
            messages_meta_len: usize,
            messages_ptr: *const u8,
            messages_len: usize,
        ) -> i32 {
            // SAFETY: the caller upholds the contract, which is SinkHost::consume's.
            unsafe {
                __IGGY_DLQ_SINK_HOST.consume(
                    id,
                    topic_meta_ptr,
                    topic_meta_len,
                    messages_meta_ptr,
                    messages_meta_len,
                    messages_ptr,
                    messages_len,
                )
            }
        }

        #[unsafe(no_mangle)]
        extern "C" fn iggy_sink_close(id: u32) -> i32 {
            __IGGY_DLQ_SINK_HOST.close(id)
        }

        #[unsafe(no_mangle)]
        extern "C" fn iggy_sink_version() -> *const ::core::ffi::c_char {
            concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
        }
    };
    ($ty:ty, dlq = false) => {
        $crate::sink_connector!(@base $ty);
    };
    ($ty:ty) => {
        $crate::sink_connector!(@base $ty);

        #[unsafe(no_mangle)]
        extern "C" fn iggy_sink_set_dlq_callback(
            id: u32,
            dlq_callback: ::core::option::Option<$crate::abi::DlqCallback>,
        ) -> i32 {
            __IGGY_DLQ_SINK_HOST.set_dlq_callback(id, dlq_callback)
        }
    };
}

/// Exports a [`Source`] type as a plugin: `iggy_source_open`,
/// `iggy_source_handle_v2`, `iggy_source_batch_result`, `iggy_source_close`,
/// `iggy_source_version` and `iggy_source_set_dlq_callback`.
///
/// `source_connector!(MySource, dlq = false)` leaves out
/// `iggy_source_set_dlq_callback`. Use it once per plugin crate.
#[macro_export]
macro_rules! source_connector {
    (@base $ty:ty) => {
        static __IGGY_DLQ_SOURCE_HOST: $crate::ffi::SourceHost<$ty> =
            $crate::ffi::SourceHost::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"));

        /// # Safety
        ///
        /// `config_ptr` must be null or point to `config_len` readable bytes,
        /// `state_ptr` null or point to `state_len` readable bytes.
        #[unsafe(no_mangle)]
        unsafe extern "C" fn iggy_source_open(
            id: u32,
            config_ptr: *const u8,
            config_len: usize,
            state_ptr: *const u8,
            state_len: usize,
            log_callback: ::core::option::Option<$crate::abi::LogCallback>,
        ) -> i32 {
            // SAFETY: the caller upholds the contract, which is SourceHost::open's.
            unsafe {
                __IGGY_DLQ_SOURCE_HOST.open(
                    id,
                    config_ptr,
                    config_len,
                    state_ptr,
                    state_len,
                    log_callback,
                )
            }
        }

        #[unsafe(no_mangle)]
        extern "C" fn iggy_source_handle_v2(
            id: u32,
            callback: ::core::option::Option<$crate::abi::SendCallback>,
        ) -> i32 {
            __IGGY_DLQ_SOURCE_HOST.handle(id, callback)
        }

        #[unsafe(no_mangle)]
        extern "C" fn iggy_source_batch_result(id: u32, batch_id: u64, result: u8) -> i32 {
            __IGGY_DLQ_SOURCE_HOST.batch_result(id, batch_id, result)
        }

        #[unsafe(no_mangle)]
        extern "C" fn iggy_source_close(id: u32) -> i32 {
            __IGGY_DLQ_SOURCE_HOST.close(id)
        }

        #[unsafe(no_mangle)]
        extern "C" fn iggy_source_version() -> *const ::core::ffi::c_char {
            concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
        }
    };
    ($ty:ty, dlq = false) => {
        $crate::source_connector!(@base $ty);
    };
    ($ty:ty) => {
        $crate::source_connector!(@base $ty);

        #[unsafe(no_mangle)]
        extern "C" fn iggy_source_set_dlq_callback(
            id: u32,
            dlq_callback: ::core::option::Option<$crate::abi::DlqCallback>,
        ) -> i32 {
            __IGGY_DLQ_SOURCE_HOST.set_dlq_callback(id, dlq_callback)
        }
    };
}
