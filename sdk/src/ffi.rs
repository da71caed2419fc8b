//! The FFI surface: what the export macros call, and every raw pointer the
//! SDK touches.
//!
//! Each export checks its arguments before it dereferences anything (a null
//! pointer with a non-zero length, a length over the `MAX_*_LEN` limits of
//! [`abi`], an unknown or closed id all return
//! [`STATUS_INVALID_CALL`]), runs the connector under `catch_unwind` (a panic
//! returns [`STATUS_CONNECTOR_ERROR`]), and runs itself under `catch_unwind`
//! too, so no panic ever unwinds into the runtime.
//!
//! The hosts here are public only for the macros; connectors do not use them.

use std::any::Any;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use iggy_dlq_envelope::Connector;
use serde::de::DeserializeOwned;
use tracing::field::{Field, Visit};
use tracing::{error, info, warn};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

use crate::abi::{
    self, BatchResult, ConnectorState, DlqCallback, LogCallback, MAX_CONFIG_LEN, MAX_MESSAGES_LEN,
    MAX_METADATA_LEN, MAX_STATE_LEN, MessagesMetadata, RawMessages, STATUS_CONNECTOR_ERROR,
    STATUS_INVALID_CALL, STATUS_OK, SendCallback, TopicMetadata,
};
use crate::{DlqWriter, Error, Result, Sink, Source};

/// How long a source waits for `iggy_source_batch_result` before it treats
/// the batch as a Nack (as upstream does).
pub const BATCH_RESULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The first pause after a Nack; doubled on each Nack in a row.
pub const NACK_RETRY_DELAY: Duration = Duration::from_millis(100);
/// The longest pause after a Nack.
pub const MAX_NACK_RETRY_DELAY: Duration = Duration::from_secs(5);
/// After this many Nacks in a row the source stops polling.
pub const MAX_CONSECUTIVE_NACKS: u32 = 5;

/// Calls the runtime's DLQ callback with bytes that stay borrowed (and so
/// valid) for the whole call.
pub(crate) fn call_dlq_callback(callback: DlqCallback, plugin_id: u32, bytes: &[u8]) -> i32 {
    callback(plugin_id, bytes.as_ptr(), bytes.len())
}

/// Borrows `len` bytes at `ptr`: `Some(&[])` for a zero length (whatever the
/// pointer), `None` for a null pointer with a non-zero length or a length
/// over `max`.
///
/// # Safety
///
/// When `len` is not 0 and `ptr` is not null, `ptr` must point to `len`
/// initialized bytes that stay valid and unmodified for `'a`.
unsafe fn borrow_bytes<'a>(ptr: *const u8, len: usize, max: usize) -> Option<&'a [u8]> {
    if len == 0 {
        return Some(&[]);
    }
    if ptr.is_null() || len > max || len > isize::MAX as usize {
        return None;
    }
    // SAFETY: `ptr` is not null and, by this function's contract, points to
    // `len` valid bytes for `'a`; `len` is at most `isize::MAX`.
    Some(unsafe { std::slice::from_raw_parts(ptr, len) })
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// Runs SDK code behind an export; a panic becomes `STATUS_INVALID_CALL`.
fn guard(export: &str, id: u32, body: impl FnOnce() -> i32) -> i32 {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|payload| {
        error!(
            "{export}({id}) panicked: {}",
            panic_message(payload.as_ref())
        );
        STATUS_INVALID_CALL
    })
}

/// Runs connector code; a panic becomes [`Error::Panicked`].
fn run_connector<T>(body: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(body))
        .unwrap_or_else(|payload| Err(Error::Panicked(panic_message(payload.as_ref()))))
}

/// Closes `connector` (taken out of its slot; `None` when it is gone
/// already), then `dlq` for good: the connector may still dead-letter while
/// it closes. `kind` names it in the log.
fn close_connector<C>(
    kind: &str,
    id: u32,
    connector: Option<C>,
    dlq: &DlqWriter,
    close: impl FnOnce(&mut C) -> Result<()>,
) -> i32 {
    let result = match connector {
        Some(mut connector) => run_connector(|| close(&mut connector)),
        None => Ok(()),
    };
    dlq.close();
    match result {
        Ok(()) => {
            info!("{kind} {id} closed");
            STATUS_OK
        }
        Err(err) => {
            error!("{kind} {id} failed to close: {err}");
            STATUS_CONNECTOR_ERROR
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

static LOG_CALLBACK: OnceLock<LogCallback> = OnceLock::new();

/// Routes this plugin's `tracing` events to the runtime's [`LogCallback`],
/// as upstream does: the first callback handed to any `open` wins, at the
/// level in `RUST_LOG` when it is a plain level, else INFO.
fn init_logging(callback: Option<LogCallback>) {
    let Some(callback) = callback else { return };
    if LOG_CALLBACK.set(callback).is_ok() {
        let level = std::env::var("RUST_LOG")
            .ok()
            .and_then(|value| value.parse::<LevelFilter>().ok())
            .unwrap_or(LevelFilter::INFO);
        let subscriber = tracing_subscriber::registry()
            .with(level)
            .with(CallbackLayer);
        // Fails only when the plugin set its own subscriber: keep that one.
        let _ = tracing::subscriber::set_global_default(subscriber);
    }
}

struct CallbackLayer;

impl<S: tracing::Subscriber> Layer<S> for CallbackLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let Some(callback) = LOG_CALLBACK.get() else {
            return;
        };
        let level = match *event.metadata().level() {
            tracing::Level::TRACE => 0,
            tracing::Level::DEBUG => 1,
            tracing::Level::INFO => 2,
            tracing::Level::WARN => 3,
            tracing::Level::ERROR => 4,
        };
        let mut message = MessageVisitor::default();
        event.record(&mut message);
        let target = event.metadata().target();
        callback(
            level,
            target.as_ptr(),
            target.len(),
            message.0.as_ptr(),
            message.0.len(),
        );
    }
}

/// The `message` field first, then every other field as ` name=value`.
#[derive(Default)]
struct MessageVisitor(String);

impl Visit for MessageVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_debug(field, &format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        if field.name() == "message" {
            let rest = std::mem::take(&mut self.0);
            let _ = write!(self.0, "{value:?}{rest}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

/// Parses the JSON plugin config into the connector's type and the
/// connector identity: optional top-level strings `connector_key` and
/// `connector_name`, defaulting to the plugin's package name.
fn parse_config<C: DeserializeOwned>(bytes: &[u8], package: &str) -> Result<(C, String, String)> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| Error::Config(format!("config is not UTF-8: {e}")))?;
    let text = if text.trim().is_empty() { "null" } else { text };
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| Error::Config(format!("config is not JSON: {e}")))?;
    let field = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    let key = field("connector_key").unwrap_or_else(|| package.to_owned());
    let name = field("connector_name").unwrap_or_else(|| key.clone());
    let config = serde_json::from_value(value).map_err(|e| Error::Config(e.to_string()))?;
    Ok((config, key, name))
}

type Instances<T> = RwLock<BTreeMap<u32, Arc<T>>>;

fn get<T>(instances: &Instances<T>, id: u32) -> Option<Arc<T>> {
    instances
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&id)
        .cloned()
}

fn remove<T>(instances: &Instances<T>, id: u32) -> Option<Arc<T>> {
    instances
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&id)
}

/// Reserves `id`; `false` when it is already open (or opening).
fn reserve<T>(instances: &Instances<T>, id: u32, instance: Arc<T>) -> bool {
    let mut map = instances.write().unwrap_or_else(PoisonError::into_inner);
    if map.contains_key(&id) {
        return false;
    }
    map.insert(id, instance);
    true
}

fn set_dlq(writer: Option<&DlqWriter>, id: u32, callback: Option<DlqCallback>) -> i32 {
    let (Some(writer), Some(callback)) = (writer, callback) else {
        error!("set_dlq_callback({id}): unknown id or null callback");
        return STATUS_INVALID_CALL;
    };
    if writer.set_callback(callback) {
        info!("connector {id}: dlq wired");
        STATUS_OK
    } else {
        STATUS_INVALID_CALL
    }
}

/// All instances of one sink type in a plugin; made by
/// [`sink_connector!`](crate::sink_connector).
#[doc(hidden)]
#[derive(Debug)]
pub struct SinkHost<S> {
    package: &'static str,
    version: &'static str,
    instances: Instances<SinkInstance<S>>,
}

#[derive(Debug)]
struct SinkInstance<S> {
    sink: Mutex<Option<S>>,
    dlq: DlqWriter,
}

impl<S: Sink> SinkHost<S> {
    /// A host for the plugin package `package` at `version`.
    pub const fn new(package: &'static str, version: &'static str) -> Self {
        SinkHost {
            package,
            version,
            instances: RwLock::new(BTreeMap::new()),
        }
    }

    /// `iggy_sink_open`.
    ///
    /// # Safety
    ///
    /// `config_ptr` must be null or point to `config_len` bytes valid for the
    /// whole call.
    pub unsafe fn open(
        &self,
        id: u32,
        config_ptr: *const u8,
        config_len: usize,
        log_callback: Option<LogCallback>,
    ) -> i32 {
        guard("iggy_sink_open", id, || {
            init_logging(log_callback);
            // SAFETY: forwarded from this function's contract.
            let Some(config) = (unsafe { borrow_bytes(config_ptr, config_len, MAX_CONFIG_LEN) })
            else {
                error!("iggy_sink_open({id}): null config pointer or config too long");
                return STATUS_INVALID_CALL;
            };
            let (config, key, name) = match parse_config::<S::Config>(config, self.package) {
                Ok(parsed) => parsed,
                Err(err) => {
                    error!("iggy_sink_open({id}): {err}");
                    return STATUS_INVALID_CALL;
                }
            };
            let dlq = DlqWriter::new(id, Connector::sink(key, name, self.version));
            let instance = Arc::new(SinkInstance {
                sink: Mutex::new(None),
                dlq,
            });
            if !reserve(&self.instances, id, Arc::clone(&instance)) {
                error!("iggy_sink_open({id}): id is already open");
                return STATUS_INVALID_CALL;
            }
            let mut slot = lock(&instance.sink);
            match run_connector(|| S::open(id, config)) {
                Ok(sink) => {
                    *slot = Some(sink);
                    info!("sink {id} opened");
                    STATUS_OK
                }
                Err(err) => {
                    drop(slot);
                    remove(&self.instances, id);
                    instance.dlq.close();
                    error!("sink {id} failed to open: {err}");
                    STATUS_CONNECTOR_ERROR
                }
            }
        })
    }

    /// `iggy_sink_consume`.
    ///
    /// # Safety
    ///
    /// Each pointer must be null or point to its length in bytes, valid for
    /// the whole call.
    #[allow(clippy::too_many_arguments)] // the ABI's signature
    pub unsafe fn consume(
        &self,
        id: u32,
        topic_meta_ptr: *const u8,
        topic_meta_len: usize,
        messages_meta_ptr: *const u8,
        messages_meta_len: usize,
        messages_ptr: *const u8,
        messages_len: usize,
    ) -> i32 {
        guard("iggy_sink_consume", id, || {
            let Some(instance) = get(&self.instances, id) else {
                error!("iggy_sink_consume({id}): unknown or closed id");
                return STATUS_INVALID_CALL;
            };
            // SAFETY: forwarded from this function's contract.
            let topic = unsafe { borrow_bytes(topic_meta_ptr, topic_meta_len, MAX_METADATA_LEN) };
            // SAFETY: as above.
            let meta =
                unsafe { borrow_bytes(messages_meta_ptr, messages_meta_len, MAX_METADATA_LEN) };
            // SAFETY: as above.
            let messages = unsafe { borrow_bytes(messages_ptr, messages_len, MAX_MESSAGES_LEN) };
            let (Some(topic), Some(meta), Some(messages)) = (topic, meta, messages) else {
                error!("iggy_sink_consume({id}): null pointer or length over the limit");
                return STATUS_INVALID_CALL;
            };
            let decoded =
                abi::from_bytes::<TopicMetadata>("topic metadata", topic).and_then(|topic| {
                    let meta = abi::from_bytes::<MessagesMetadata>("messages metadata", meta)?;
                    let messages = abi::from_bytes::<RawMessages>("messages", messages)?;
                    Ok((topic, meta, messages))
                });
            let (topic, meta, messages) = match decoded {
                Ok(decoded) => decoded,
                Err(err) => {
                    error!("iggy_sink_consume({id}): {err}");
                    return STATUS_INVALID_CALL;
                }
            };
            let mut slot = lock(&instance.sink);
            let Some(sink) = slot.as_mut() else {
                error!("iggy_sink_consume({id}): sink is closed");
                return STATUS_INVALID_CALL;
            };
            instance.dlq.begin_batch(meta.schema);
            match run_connector(|| sink.consume(&topic, &meta, messages.messages, &instance.dlq)) {
                Ok(()) => STATUS_OK,
                Err(err) => {
                    error!("sink {id} failed to consume a batch: {err}");
                    STATUS_CONNECTOR_ERROR
                }
            }
        })
    }

    /// `iggy_sink_close`: closes the connector (which may still dead-letter
    /// while closing), then the DLQ writer for good.
    pub fn close(&self, id: u32) -> i32 {
        guard("iggy_sink_close", id, || {
            let Some(instance) = remove(&self.instances, id) else {
                error!("iggy_sink_close({id}): unknown or closed id");
                return STATUS_INVALID_CALL;
            };
            let sink = lock(&instance.sink).take();
            close_connector("sink", id, sink, &instance.dlq, |sink: &mut S| sink.close())
        })
    }

    /// `iggy_sink_set_dlq_callback`.
    pub fn set_dlq_callback(&self, id: u32, callback: Option<DlqCallback>) -> i32 {
        guard("iggy_sink_set_dlq_callback", id, || {
            let instance = get(&self.instances, id);
            set_dlq(instance.as_ref().map(|i| &i.dlq), id, callback)
        })
    }
}

/// All instances of one source type in a plugin; made by
/// [`source_connector!`](crate::source_connector).
#[doc(hidden)]
#[derive(Debug)]
pub struct SourceHost<S> {
    package: &'static str,
    version: &'static str,
    instances: Instances<SourceInstance<S>>,
}

#[derive(Debug)]
struct SourceInstance<S> {
    id: u32,
    source: Mutex<Option<S>>,
    dlq: DlqWriter,
    flow: Mutex<Flow>,
    wake: Condvar,
    worker: Mutex<Option<JoinHandle<()>>>,
    consecutive_nacks: AtomicU32,
}

/// The one batch in flight between the polling thread and the runtime.
#[derive(Debug, Default)]
struct Flow {
    shutdown: bool,
    pending: Option<u64>,
    completed: Option<(u64, Completion)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Completion {
    Applied(BatchResult),
    Stop,
}

impl<S: Source> SourceHost<S> {
    /// A host for the plugin package `package` at `version`.
    pub const fn new(package: &'static str, version: &'static str) -> Self {
        SourceHost {
            package,
            version,
            instances: RwLock::new(BTreeMap::new()),
        }
    }

    /// `iggy_source_open`.
    ///
    /// # Safety
    ///
    /// `config_ptr` must be null or point to `config_len` bytes, and
    /// `state_ptr` null (no saved state) or point to `state_len` bytes, both
    /// valid for the whole call.
    pub unsafe fn open(
        &self,
        id: u32,
        config_ptr: *const u8,
        config_len: usize,
        state_ptr: *const u8,
        state_len: usize,
        log_callback: Option<LogCallback>,
    ) -> i32 {
        guard("iggy_source_open", id, || {
            init_logging(log_callback);
            // SAFETY: forwarded from this function's contract.
            let Some(config) = (unsafe { borrow_bytes(config_ptr, config_len, MAX_CONFIG_LEN) })
            else {
                error!("iggy_source_open({id}): null config pointer or config too long");
                return STATUS_INVALID_CALL;
            };
            let state = if state_ptr.is_null() {
                None
            } else {
                // SAFETY: forwarded from this function's contract.
                match unsafe { borrow_bytes(state_ptr, state_len, MAX_STATE_LEN) } {
                    Some(state) => Some(ConnectorState(state.to_vec())),
                    None => {
                        error!("iggy_source_open({id}): saved state too long");
                        return STATUS_INVALID_CALL;
                    }
                }
            };
            let (config, key, name) = match parse_config::<S::Config>(config, self.package) {
                Ok(parsed) => parsed,
                Err(err) => {
                    error!("iggy_source_open({id}): {err}");
                    return STATUS_INVALID_CALL;
                }
            };
            let instance = Arc::new(SourceInstance {
                id,
                source: Mutex::new(None),
                dlq: DlqWriter::new(id, Connector::source(key, name, self.version)),
                flow: Mutex::new(Flow::default()),
                wake: Condvar::new(),
                worker: Mutex::new(None),
                consecutive_nacks: AtomicU32::new(0),
            });
            if !reserve(&self.instances, id, Arc::clone(&instance)) {
                error!("iggy_source_open({id}): id is already open");
                return STATUS_INVALID_CALL;
            }
            let mut slot = lock(&instance.source);
            match run_connector(|| S::open(id, config, state)) {
                Ok(source) => {
                    *slot = Some(source);
                    info!("source {id} opened");
                    STATUS_OK
                }
                Err(err) => {
                    drop(slot);
                    remove(&self.instances, id);
                    instance.dlq.close();
                    error!("source {id} failed to open: {err}");
                    STATUS_CONNECTOR_ERROR
                }
            }
        })
    }

    /// `iggy_source_handle_v2`: starts the polling thread, once per open.
    pub fn handle(&self, id: u32, callback: Option<SendCallback>) -> i32 {
        guard("iggy_source_handle_v2", id, || {
            let (Some(instance), Some(callback)) = (get(&self.instances, id), callback) else {
                error!("iggy_source_handle_v2({id}): unknown id or null callback");
                return STATUS_INVALID_CALL;
            };
            let mut worker = lock(&instance.worker);
            if worker.is_some() {
                error!("iggy_source_handle_v2({id}): source is already being handled");
                return STATUS_INVALID_CALL;
            }
            let polling = Arc::clone(&instance);
            let spawned = std::thread::Builder::new()
                .name(format!("iggy-source-{id}"))
                .spawn(move || polling.run(callback));
            match spawned {
                Ok(handle) => {
                    *worker = Some(handle);
                    STATUS_OK
                }
                Err(err) => {
                    error!("iggy_source_handle_v2({id}): cannot start the polling thread: {err}");
                    STATUS_CONNECTOR_ERROR
                }
            }
        })
    }

    /// `iggy_source_batch_result`: applies the runtime's answer to the batch
    /// in flight (the source's `on_batch_result` runs in the caller's
    /// thread), then lets the polling thread go on.
    pub fn batch_result(&self, id: u32, batch_id: u64, result: u8) -> i32 {
        guard("iggy_source_batch_result", id, || {
            let Some(instance) = get(&self.instances, id) else {
                error!("iggy_source_batch_result({id}): unknown or closed id");
                return STATUS_INVALID_CALL;
            };
            let (result, invalid) = match BatchResult::from_code(result) {
                Some(result) => (result, false),
                None => {
                    error!(
                        "iggy_source_batch_result({id}): invalid result {result}, taken as Nack"
                    );
                    (BatchResult::Nack, true)
                }
            };
            {
                let mut flow = lock(&instance.flow);
                if flow.pending != Some(batch_id) {
                    error!(
                        "iggy_source_batch_result({id}): batch {batch_id} is not in flight (expected {:?})",
                        flow.pending
                    );
                    return STATUS_INVALID_CALL;
                }
                flow.pending = None;
            }
            let completion = instance.apply(result);
            lock(&instance.flow).completed = Some((batch_id, completion));
            instance.wake.notify_all();
            if invalid || completion == Completion::Stop {
                STATUS_INVALID_CALL
            } else {
                STATUS_OK
            }
        })
    }

    /// `iggy_source_close`: stops and joins the polling thread (waiting for a
    /// `poll` in progress), closes the connector, then the DLQ writer.
    pub fn close(&self, id: u32) -> i32 {
        guard("iggy_source_close", id, || {
            let Some(instance) = remove(&self.instances, id) else {
                error!("iggy_source_close({id}): unknown or closed id");
                return STATUS_INVALID_CALL;
            };
            lock(&instance.flow).shutdown = true;
            instance.wake.notify_all();
            if let Some(worker) = lock(&instance.worker).take()
                && worker.thread().id() != std::thread::current().id()
            {
                let _ = worker.join();
            }
            let source = lock(&instance.source).take();
            close_connector("source", id, source, &instance.dlq, |source: &mut S| {
                source.close()
            })
        })
    }

    /// `iggy_source_set_dlq_callback`.
    pub fn set_dlq_callback(&self, id: u32, callback: Option<DlqCallback>) -> i32 {
        guard("iggy_source_set_dlq_callback", id, || {
            let instance = get(&self.instances, id);
            set_dlq(instance.as_ref().map(|i| &i.dlq), id, callback)
        })
    }
}

impl<S: Source> SourceInstance<S> {
    /// The polling loop: poll, hand the batch over, wait for its result; one
    /// batch in flight at a time.
    fn run(&self, send: SendCallback) {
        let id = self.id;
        let mut batch_id = 1u64;
        while !lock(&self.flow).shutdown {
            let polled = {
                let mut slot = lock(&self.source);
                let Some(source) = slot.as_mut() else { break };
                let idle = source.idle_interval();
                (run_connector(|| source.poll(&self.dlq)), idle)
            };
            let produced = match polled {
                (Ok(produced), idle) => {
                    if produced.messages.is_empty() && produced.state.is_none() {
                        self.pause(idle);
                        continue;
                    }
                    produced
                }
                (Err(err), idle) => {
                    error!("source {id} failed to poll: {err}");
                    self.pause(idle);
                    continue;
                }
            };
            let bytes = match abi::to_bytes("produced messages", &produced) {
                Ok(bytes) => bytes,
                Err(err) => {
                    error!("source {id}: {err}");
                    if self.apply(BatchResult::Nack) == Completion::Stop {
                        break;
                    }
                    self.pause_after_nack();
                    continue;
                }
            };
            {
                let mut flow = lock(&self.flow);
                flow.pending = Some(batch_id);
                flow.completed = None;
            }
            let code = send(id, batch_id, bytes.as_ptr(), bytes.len());
            drop(bytes);
            let (completion, shutting_down) = if code == STATUS_OK {
                self.wait_for_result(batch_id)
            } else {
                warn!("source {id}: the runtime did not take batch {batch_id} (status {code})");
                let ours = {
                    let mut flow = lock(&self.flow);
                    flow.pending
                        .take_if(|pending| *pending == batch_id)
                        .is_some()
                };
                if ours {
                    (self.apply(BatchResult::Nack), false)
                } else {
                    self.wait_for_result(batch_id)
                }
            };
            match completion {
                Completion::Stop => break,
                _ if shutting_down => break,
                Completion::Applied(BatchResult::Nack) => self.pause_after_nack(),
                Completion::Applied(BatchResult::Ack) => {}
            }
            batch_id += 1;
        }
        info!("source {id} stopped polling");
    }

    /// Waits for `iggy_source_batch_result`, for shutdown, or for the
    /// timeout (then Nack). Returns the completion and whether the source is
    /// shutting down.
    fn wait_for_result(&self, batch_id: u64) -> (Completion, bool) {
        let deadline = Instant::now() + BATCH_RESULT_TIMEOUT;
        let mut flow = lock(&self.flow);
        loop {
            if let Some((_, completion)) = flow.completed.take_if(|(done, _)| *done == batch_id) {
                return (completion, flow.shutdown);
            }
            let now = Instant::now();
            let still_ours = flow.pending == Some(batch_id);
            if still_ours && (flow.shutdown || now >= deadline) {
                let shutting_down = flow.shutdown;
                flow.pending = None;
                drop(flow);
                if !shutting_down {
                    warn!(
                        "source {}: no result for batch {batch_id} in time, taken as Nack",
                        self.id
                    );
                }
                return (self.apply(BatchResult::Nack), shutting_down);
            }
            // When the batch is no longer ours, its result is being applied:
            // wait for it whatever the deadline.
            let wait = deadline
                .saturating_duration_since(now)
                .max(Duration::from_millis(10));
            flow = self
                .wake
                .wait_timeout(flow, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn apply(&self, result: BatchResult) -> Completion {
        let applied = match lock(&self.source).as_mut() {
            Some(source) => run_connector(|| source.on_batch_result(result)),
            None => Err(Error::Closed),
        };
        if let Err(err) = applied {
            error!(
                "source {} failed to apply {result:?}: {err}; it stops polling",
                self.id
            );
            return Completion::Stop;
        }
        let nacks = match result {
            BatchResult::Ack => {
                self.consecutive_nacks.store(0, Ordering::Relaxed);
                0
            }
            BatchResult::Nack => self.consecutive_nacks.fetch_add(1, Ordering::Relaxed) + 1,
        };
        if nacks >= MAX_CONSECUTIVE_NACKS {
            error!(
                "source {} stops polling after {nacks} Nacks in a row",
                self.id
            );
            return Completion::Stop;
        }
        Completion::Applied(result)
    }

    /// Sleeps up to `duration`, waking at once on shutdown.
    fn pause(&self, duration: Duration) {
        let flow = lock(&self.flow);
        let _ = self
            .wake
            .wait_timeout_while(flow, duration, |flow| !flow.shutdown);
    }

    fn pause_after_nack(&self) {
        let exponent = self
            .consecutive_nacks
            .load(Ordering::Relaxed)
            .saturating_sub(1)
            .min(16);
        let delay = NACK_RETRY_DELAY.saturating_mul(1 << exponent);
        self.pause(delay.min(MAX_NACK_RETRY_DELAY));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_with_a_length_is_refused_and_empty_is_fine() {
        // SAFETY: a zero length or a null pointer is never dereferenced.
        unsafe {
            assert_eq!(borrow_bytes(std::ptr::null(), 0, 10), Some(&[][..]));
            assert_eq!(borrow_bytes(std::ptr::null(), 1, 10), None);
            let data = [1u8, 2, 3];
            assert_eq!(borrow_bytes(data.as_ptr(), 3, 2), None);
            assert_eq!(borrow_bytes(data.as_ptr(), 3, 3), Some(&data[..]));
        }
    }

    #[test]
    fn config_names_the_connector_or_defaults_to_the_package() {
        let (_, key, name) =
            parse_config::<serde_json::Value>(br#"{"connector_key":"k","x":1}"#, "pkg").unwrap();
        assert_eq!((key.as_str(), name.as_str()), ("k", "k"));
        let (_, key, name) = parse_config::<serde_json::Value>(b"", "pkg").unwrap();
        assert_eq!((key.as_str(), name.as_str()), ("pkg", "pkg"));
        assert!(parse_config::<serde_json::Value>(b"{not json", "pkg").is_err());
    }
}
