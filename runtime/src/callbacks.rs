//! The functions the runtime hands to plugins: the log callback, the DLQ
//! callback and the source send callback.
//!
//! Plugins call them with their instance id; the runtime finds the
//! instance's route in a process-wide registry. Every callback checks its
//! pointer/length pairs, copies what it needs before returning, and never
//! lets a panic unwind into the plugin.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use iggy_dlq_sdk::abi::DlqStatus;

use crate::dlq::DlqRoute;

/// A source batch as the plugin handed it over.
#[derive(Debug)]
pub struct SourceBatch {
    /// The plugin's batch id, to answer with `iggy_source_batch_result`.
    pub batch_id: u64,
    /// Postcard of `ProducedMessages`.
    pub bytes: Vec<u8>,
}

#[derive(Default)]
struct Registry {
    routes: HashMap<u32, Arc<DlqRoute>>,
    sources: HashMap<u32, flume::Sender<SourceBatch>>,
}

fn registry() -> &'static RwLock<Registry> {
    static REGISTRY: OnceLock<RwLock<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// A plugin instance id no other instance in this process has.
pub fn next_plugin_id() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Routes DLQ callbacks of instance `id` to `route`.
pub fn register_route(id: u32, route: Arc<DlqRoute>) {
    registry()
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .routes
        .insert(id, route);
}

/// Routes source batches of instance `id` to `tx`.
pub fn register_source(id: u32, tx: flume::Sender<SourceBatch>) {
    registry()
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .sources
        .insert(id, tx);
}

/// Forgets instance `id`: later callbacks with it are refused.
pub fn unregister(id: u32) {
    let mut registry = registry().write().unwrap_or_else(|e| e.into_inner());
    if let Some(route) = registry.routes.remove(&id) {
        route.close();
    }
    registry.sources.remove(&id);
}

/// # Safety
///
/// When `len > 0`, `ptr` must point to `len` readable bytes for the call.
unsafe fn slice<'a>(ptr: *const u8, len: usize) -> Option<&'a [u8]> {
    if len == 0 {
        return Some(&[]);
    }
    if ptr.is_null() || len > isize::MAX as usize {
        return None;
    }
    // SAFETY: non-null, length within isize::MAX, and readable for the call
    // per the caller's contract (the plugin's, per the ABI).
    Some(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// The runtime's `DlqCallback`: see `iggy_dlq_sdk::abi::DlqCallback` for the
/// contract.
// The ABI types these callbacks as safe `extern "C" fn`s; every pointer
// is checked by `slice` before it is read.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub extern "C" fn dlq_callback(
    plugin_id: u32,
    envelope_ptr: *const u8,
    envelope_len: usize,
) -> i32 {
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the ABI makes the plugin keep the bytes valid during the
        // call; `slice` refuses null pointers with a length.
        let Some(bytes) = (unsafe { slice(envelope_ptr, envelope_len) }) else {
            return DlqStatus::BadArguments;
        };
        if bytes.is_empty() {
            return DlqStatus::InvalidEnvelope;
        }
        let route = registry()
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .routes
            .get(&plugin_id)
            .cloned();
        match route {
            Some(route) => route.submit(bytes),
            None => DlqStatus::BadArguments,
        }
    }));
    result.unwrap_or(DlqStatus::Unavailable).code()
}

/// The runtime's `SendCallback` for sources: copies the batch and hands it
/// to the source's runner, waiting while the previous batch is in flight.
// The ABI types these callbacks as safe `extern "C" fn`s; every pointer
// is checked by `slice` before it is read.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub extern "C" fn source_send_callback(
    plugin_id: u32,
    batch_id: u64,
    messages_ptr: *const u8,
    messages_len: usize,
) -> i32 {
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: as for `dlq_callback`.
        let Some(bytes) = (unsafe { slice(messages_ptr, messages_len) }) else {
            return -1;
        };
        let tx = registry()
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .sources
            .get(&plugin_id)
            .cloned();
        let Some(tx) = tx else { return -1 };
        match tx.send(SourceBatch {
            batch_id,
            bytes: bytes.to_vec(),
        }) {
            Ok(()) => 0,
            Err(_) => 1,
        }
    }));
    result.unwrap_or(1)
}

/// The runtime's `LogCallback`: turns each call into a `tracing` event with
/// target `plugin`.
// The ABI types these callbacks as safe `extern "C" fn`s; every pointer
// is checked by `slice` before it is read.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub extern "C" fn log_callback(
    level: u8,
    target_ptr: *const u8,
    target_len: usize,
    message_ptr: *const u8,
    message_len: usize,
) {
    let _ = catch_unwind(|| {
        // SAFETY: as for `dlq_callback`.
        let (Some(target), Some(message)) = (unsafe { slice(target_ptr, target_len) }, unsafe {
            slice(message_ptr, message_len)
        }) else {
            return;
        };
        let target = String::from_utf8_lossy(target);
        let message = String::from_utf8_lossy(message);
        match level {
            0 => tracing::trace!(target: "plugin", plugin_target = %target, "{message}"),
            1 => tracing::debug!(target: "plugin", plugin_target = %target, "{message}"),
            2 => tracing::info!(target: "plugin", plugin_target = %target, "{message}"),
            3 => tracing::warn!(target: "plugin", plugin_target = %target, "{message}"),
            _ => tracing::error!(target: "plugin", plugin_target = %target, "{message}"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_pointers_and_unknown_ids_are_refused() {
        assert_eq!(
            dlq_callback(u32::MAX, std::ptr::null(), 10),
            DlqStatus::BadArguments.code()
        );
        assert_eq!(
            dlq_callback(u32::MAX, b"x".as_ptr(), 1),
            DlqStatus::BadArguments.code()
        );
        assert_eq!(
            dlq_callback(u32::MAX, std::ptr::null(), 0),
            DlqStatus::InvalidEnvelope.code()
        );
        assert_eq!(source_send_callback(u32::MAX, 1, std::ptr::null(), 5), -1);
        assert_eq!(source_send_callback(u32::MAX, 1, b"x".as_ptr(), 1), -1);
        log_callback(2, std::ptr::null(), 3, std::ptr::null(), 3);
    }
}
