//! Loading connector plugins (`cdylib`s) and calling their entry points.
//!
//! This module and [`crate::callbacks`] are the runtime's only `unsafe`
//! code. A plugin is trusted to implement the upstream connector ABI (see
//! `iggy_dlq_sdk::abi`); everything the runtime passes to it is valid for the
//! duration of the call, and nothing the plugin returns is trusted beyond
//! what the ABI promises.

use std::ffi::{CStr, c_char};
use std::path::{Path, PathBuf};

use iggy_dlq_sdk::abi::{
    self, DlqCallback, LogCallback, MessagesMetadata, RawMessages, SendCallback, TopicMetadata,
};
use libloading::Library;

/// Why a plugin could not be loaded or called.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// The library could not be loaded.
    #[error("cannot load plugin {path}: {source}")]
    Load {
        /// The library.
        path: PathBuf,
        /// Why.
        #[source]
        source: libloading::Error,
    },
    /// A required entry point is missing.
    #[error("plugin {path} does not export `{symbol}`: it is not a {kind} connector plugin")]
    MissingSymbol {
        /// The library.
        path: PathBuf,
        /// The symbol.
        symbol: &'static str,
        /// `sink` or `source`.
        kind: &'static str,
    },
    /// An entry point returned a failure status.
    #[error("plugin {path}: `{symbol}` returned status {status}")]
    Status {
        /// The library.
        path: PathBuf,
        /// The entry point.
        symbol: &'static str,
        /// What it returned.
        status: i32,
    },
    /// The runtime could not encode what it passes to the plugin.
    #[error("cannot encode {what} for the plugin: {message}")]
    Encode {
        /// What.
        what: &'static str,
        /// Why.
        message: String,
    },
}

type SinkOpen = unsafe extern "C" fn(u32, *const u8, usize, LogCallback) -> i32;
type SinkConsume =
    unsafe extern "C" fn(u32, *const u8, usize, *const u8, usize, *const u8, usize) -> i32;
type Close = unsafe extern "C" fn(u32) -> i32;
type Version = unsafe extern "C" fn() -> *const c_char;
type SetDlqCallback = unsafe extern "C" fn(u32, DlqCallback) -> i32;
type SourceOpen = unsafe extern "C" fn(u32, *const u8, usize, *const u8, usize, LogCallback) -> i32;
type SourceHandle = unsafe extern "C" fn(u32, SendCallback) -> i32;
type SourceBatchResult = unsafe extern "C" fn(u32, u64, u8) -> i32;

fn load_library(path: &Path) -> Result<Library, PluginError> {
    // SAFETY: loading a library runs its initialisers. The runtime loads only
    // the plugin paths its operator configured, which is the trust model of
    // every plugin host; nothing else is loaded.
    unsafe { Library::new(path) }.map_err(|source| PluginError::Load {
        path: path.to_owned(),
        source,
    })
}

/// Looks up `name` as a function of type `T`.
///
/// # Safety
///
/// `T` must be the exact function type the library exports under `name`.
unsafe fn symbol<T: Copy>(lib: &Library, name: &'static str) -> Option<T> {
    // SAFETY: the caller guarantees the type; the returned pointer stays
    // valid while `lib` is loaded, and the plugin structs keep `lib` alive
    // for as long as they hold the pointer.
    unsafe { lib.get::<T>(name.as_bytes()).ok().map(|s| *s) }
}

fn version_of(version: Version) -> String {
    // SAFETY: `iggy_*_version` takes no arguments and returns a pointer to a
    // NUL-terminated string with static lifetime, per the ABI.
    let ptr = unsafe { version() };
    if ptr.is_null() {
        return "unknown".into();
    }
    // SAFETY: non-null, NUL-terminated and static per the ABI.
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}

fn status(path: &Path, symbol: &'static str, status: i32) -> Result<(), PluginError> {
    if status == 0 {
        Ok(())
    } else {
        Err(PluginError::Status {
            path: path.to_owned(),
            symbol,
            status,
        })
    }
}

/// The entry points every plugin kind has, by name.
#[derive(Debug)]
struct Kind {
    /// `sink` or `source`.
    name: &'static str,
    close: &'static str,
    version: &'static str,
    set_dlq_callback: &'static str,
}

const SINK: Kind = Kind {
    name: "sink",
    close: "iggy_sink_close",
    version: "iggy_sink_version",
    set_dlq_callback: "iggy_sink_set_dlq_callback",
};

const SOURCE: Kind = Kind {
    name: "source",
    close: "iggy_source_close",
    version: "iggy_source_version",
    set_dlq_callback: "iggy_source_set_dlq_callback",
};

/// What every plugin kind has: the library, its shared entry points and its
/// identity.
#[derive(Debug)]
struct Loaded {
    path: PathBuf,
    kind: &'static Kind,
    close: Close,
    version: String,
    set_dlq_callback: Option<SetDlqCallback>,
    // Declared last: dropped after the function pointers are unusable.
    lib: Library,
}

impl Loaded {
    /// Loads the library and looks up the entry points every `kind` has.
    fn load(path: &Path, kind: &'static Kind) -> Result<Self, PluginError> {
        let lib = load_library(path)?;
        // SAFETY: each type is the upstream ABI's signature for that symbol.
        let (close, version, set_dlq_callback) = unsafe {
            (
                symbol::<Close>(&lib, kind.close),
                symbol::<Version>(&lib, kind.version),
                symbol::<SetDlqCallback>(&lib, kind.set_dlq_callback),
            )
        };
        let close = close.ok_or_else(|| missing(path, kind, kind.close))?;
        let version = version.ok_or_else(|| missing(path, kind, kind.version))?;
        Ok(Loaded {
            path: path.to_owned(),
            kind,
            close,
            version: version_of(version),
            set_dlq_callback,
            lib,
        })
    }

    /// Looks up a required entry point of type `T`.
    ///
    /// # Safety
    ///
    /// `T` must be the exact function type the ABI gives `name`.
    unsafe fn required<T: Copy>(&self, name: &'static str) -> Result<T, PluginError> {
        // SAFETY: the caller guarantees the type.
        unsafe { symbol::<T>(&self.lib, name) }.ok_or_else(|| missing(&self.path, self.kind, name))
    }

    fn status(&self, symbol: &'static str, rc: i32) -> Result<(), PluginError> {
        status(&self.path, symbol, rc)
    }

    fn set_dlq_callback(&self, id: u32, callback: DlqCallback) -> Result<bool, PluginError> {
        let Some(set) = self.set_dlq_callback else {
            return Ok(false);
        };
        // SAFETY: `callback` is a valid function for the process's lifetime.
        let rc = unsafe { set(id, callback) };
        self.status(self.kind.set_dlq_callback, rc).map(|()| true)
    }

    fn close(&self, id: u32) -> i32 {
        // SAFETY: plain value argument.
        unsafe { (self.close)(id) }
    }
}

fn missing(path: &Path, kind: &Kind, symbol: &'static str) -> PluginError {
    PluginError::MissingSymbol {
        path: path.to_owned(),
        symbol,
        kind: kind.name,
    }
}

/// A loaded sink plugin.
#[derive(Debug)]
pub struct SinkPlugin {
    open: SinkOpen,
    consume: SinkConsume,
    // Declared last: holds the library.
    loaded: Loaded,
}

impl SinkPlugin {
    /// Loads a sink plugin and looks up its entry points.
    ///
    /// # Errors
    ///
    /// When the library cannot be loaded or lacks a required entry point.
    pub fn load(path: &Path) -> Result<Self, PluginError> {
        let loaded = Loaded::load(path, &SINK)?;
        // SAFETY: each type is the upstream ABI's signature for that symbol.
        let (open, consume) = unsafe {
            (
                loaded.required::<SinkOpen>("iggy_sink_open")?,
                loaded.required::<SinkConsume>("iggy_sink_consume")?,
            )
        };
        Ok(SinkPlugin {
            open,
            consume,
            loaded,
        })
    }

    /// The plugin's version string.
    pub fn version(&self) -> &str {
        &self.loaded.version
    }

    /// The library path.
    pub fn path(&self) -> &Path {
        &self.loaded.path
    }

    /// Whether the plugin exports `iggy_sink_set_dlq_callback`.
    pub fn supports_dlq(&self) -> bool {
        self.loaded.set_dlq_callback.is_some()
    }

    /// Opens instance `id` with its JSON configuration.
    ///
    /// # Errors
    ///
    /// When the plugin returns a non-zero status.
    pub fn open(&self, id: u32, config_json: &[u8], log: LogCallback) -> Result<(), PluginError> {
        // SAFETY: the config pointer/length pair is a live slice for the whole
        // call; `log` is a valid function for the process's lifetime.
        let rc = unsafe { (self.open)(id, config_json.as_ptr(), config_json.len(), log) };
        self.loaded.status("iggy_sink_open", rc)
    }

    /// Injects the DLQ callback; `Ok(false)` when the plugin has no DLQ
    /// support.
    ///
    /// # Errors
    ///
    /// When the plugin returns a non-zero status.
    pub fn set_dlq_callback(&self, id: u32, callback: DlqCallback) -> Result<bool, PluginError> {
        self.loaded.set_dlq_callback(id, callback)
    }

    /// Hands one batch to instance `id`; returns the plugin's status (0 ok,
    /// 1 the connector failed, -1 the call was invalid).
    ///
    /// # Errors
    ///
    /// When the runtime cannot encode the batch.
    pub fn consume(
        &self,
        id: u32,
        topic: &TopicMetadata,
        metadata: &MessagesMetadata,
        messages: &RawMessages,
    ) -> Result<i32, PluginError> {
        let encode = |what, e: iggy_dlq_sdk::Error| PluginError::Encode {
            what,
            message: e.to_string(),
        };
        let topic =
            abi::to_bytes("topic metadata", topic).map_err(|e| encode("topic metadata", e))?;
        let metadata = abi::to_bytes("messages metadata", metadata)
            .map_err(|e| encode("messages metadata", e))?;
        let messages = abi::to_bytes("messages", messages).map_err(|e| encode("messages", e))?;
        // SAFETY: each pointer/length pair is a live slice for the whole call.
        let rc = unsafe {
            (self.consume)(
                id,
                topic.as_ptr(),
                topic.len(),
                metadata.as_ptr(),
                metadata.len(),
                messages.as_ptr(),
                messages.len(),
            )
        };
        Ok(rc)
    }

    /// Closes instance `id`; returns the plugin's status.
    pub fn close(&self, id: u32) -> i32 {
        self.loaded.close(id)
    }
}

/// A loaded source plugin.
#[derive(Debug)]
pub struct SourcePlugin {
    open: SourceOpen,
    handle: SourceHandle,
    batch_result: SourceBatchResult,
    // Declared last: holds the library.
    loaded: Loaded,
}

impl SourcePlugin {
    /// Loads a source plugin and looks up its entry points.
    ///
    /// # Errors
    ///
    /// When the library cannot be loaded or lacks a required entry point.
    pub fn load(path: &Path) -> Result<Self, PluginError> {
        let loaded = Loaded::load(path, &SOURCE)?;
        // SAFETY: each type is the upstream ABI's signature for that symbol.
        let (open, handle, batch_result) = unsafe {
            (
                loaded.required::<SourceOpen>("iggy_source_open")?,
                loaded.required::<SourceHandle>("iggy_source_handle_v2")?,
                loaded.required::<SourceBatchResult>("iggy_source_batch_result")?,
            )
        };
        Ok(SourcePlugin {
            open,
            handle,
            batch_result,
            loaded,
        })
    }

    /// The plugin's version string.
    pub fn version(&self) -> &str {
        &self.loaded.version
    }

    /// Whether the plugin exports `iggy_source_set_dlq_callback`.
    pub fn supports_dlq(&self) -> bool {
        self.loaded.set_dlq_callback.is_some()
    }

    /// Opens instance `id` with its JSON configuration and saved state.
    ///
    /// # Errors
    ///
    /// When the plugin returns a non-zero status.
    pub fn open(
        &self,
        id: u32,
        config_json: &[u8],
        state: Option<&[u8]>,
        log: LogCallback,
    ) -> Result<(), PluginError> {
        let (state_ptr, state_len) = state.map_or((std::ptr::null(), 0), |s| (s.as_ptr(), s.len()));
        // SAFETY: both pointer/length pairs are live slices (or null with
        // length 0, which the ABI defines as "no state") for the whole call.
        let rc = unsafe {
            (self.open)(
                id,
                config_json.as_ptr(),
                config_json.len(),
                state_ptr,
                state_len,
                log,
            )
        };
        self.loaded.status("iggy_source_open", rc)
    }

    /// Injects the DLQ callback; `Ok(false)` when the plugin has no DLQ
    /// support.
    ///
    /// # Errors
    ///
    /// When the plugin returns a non-zero status.
    pub fn set_dlq_callback(&self, id: u32, callback: DlqCallback) -> Result<bool, PluginError> {
        self.loaded.set_dlq_callback(id, callback)
    }

    /// Starts the source's polling, handing batches to `send`.
    ///
    /// # Errors
    ///
    /// When the plugin returns a non-zero status.
    pub fn handle(&self, id: u32, send: SendCallback) -> Result<(), PluginError> {
        // SAFETY: `send` is a valid function for the process's lifetime.
        let rc = unsafe { (self.handle)(id, send) };
        self.loaded.status("iggy_source_handle_v2", rc)
    }

    /// Answers batch `batch_id`: `Ack` once it is durable, else `Nack`.
    pub fn batch_result(&self, id: u32, batch_id: u64, result: abi::BatchResult) -> i32 {
        // SAFETY: plain value arguments.
        unsafe { (self.batch_result)(id, batch_id, result as u8) }
    }

    /// Closes instance `id`; returns the plugin's status.
    pub fn close(&self, id: u32) -> i32 {
        self.loaded.close(id)
    }
}
