//! Running a source: each batch the plugin hands over goes to its Iggy
//! topic, its dead letters go to the DLQ, and the batch is acknowledged to
//! the plugin only after both are confirmed. A batch that cannot be
//! confirmed is answered with `Nack`, and the plugin sends it again.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use iggy_dlq_sdk::abi::{self, BatchResult, ProducedMessage, ProducedMessages};
use tokio::sync::watch;

use crate::callbacks::{self, SourceBatch};
use crate::dlq::DlqRoute;
use crate::iggy_client::{Headers, IggyClientError, IggyConnection, OutgoingMessage};
use crate::metrics::ConnectorMetrics;
use crate::plugin::{PluginError, SourcePlugin};

/// Why a source stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The plugin could not be loaded, opened or started.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// Iggy failed.
    #[error(transparent)]
    Iggy(#[from] IggyClientError),
    /// The saved state could not be read or written.
    #[error("connector `{key}`: state file {path}: {source}")]
    State {
        /// Connector.
        key: String,
        /// The state file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Where a source's messages go.
#[derive(Debug)]
pub enum SourceOutput {
    /// An Iggy topic.
    Iggy {
        /// The connection.
        connection: Arc<IggyConnection>,
        /// Stream.
        stream: String,
        /// Topic.
        topic: String,
    },
    /// Collected in memory (tests without a server).
    Memory(Arc<Mutex<Vec<ProducedMessage>>>),
}

/// What a source needs to start.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    /// Connector key.
    pub key: String,
    /// Plugin library.
    pub plugin_path: PathBuf,
    /// Plugin configuration.
    pub plugin_config: serde_json::Value,
    /// Where the plugin's state is kept between runs.
    pub state_path: PathBuf,
}

/// A source connector, opened, wired and polling.
#[derive(Debug)]
pub struct SourceRunner {
    key: String,
    id: u32,
    plugin: Arc<SourcePlugin>,
    route: Option<Arc<DlqRoute>>,
    batches: flume::Receiver<SourceBatch>,
    state_path: PathBuf,
    metrics: Arc<ConnectorMetrics>,
}

impl SourceRunner {
    /// Loads and opens the plugin with its saved state, wires its DLQ
    /// callback when a route is given, and starts its polling.
    ///
    /// # Errors
    ///
    /// When the plugin cannot be loaded, opened, wired or started, or the
    /// state cannot be read.
    pub fn start(
        spec: SourceSpec,
        route: Option<Arc<DlqRoute>>,
        metrics: Arc<ConnectorMetrics>,
    ) -> Result<Self, SourceError> {
        let plugin = Arc::new(SourcePlugin::load(&spec.plugin_path)?);
        let state = match std::fs::read(&spec.state_path) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(SourceError::State {
                    key: spec.key,
                    path: spec.state_path,
                    source,
                });
            }
        };
        let id = callbacks::next_plugin_id();
        let config = serde_json::to_vec(&crate::sink::with_identity(
            spec.plugin_config.clone(),
            &spec.key,
            &spec.key,
        ))
        .expect("JSON values always encode");
        plugin.open(id, &config, state.as_deref(), callbacks::log_callback)?;
        let (tx, batches) = flume::bounded(1);
        callbacks::register_source(id, tx);
        if let Some(route) = &route {
            callbacks::register_route(id, route.clone());
            // Dead letters from now until the first batch belong to it.
            route.begin_batch();
            if !plugin.set_dlq_callback(id, callbacks::dlq_callback)? {
                tracing::warn!(
                    connector = %spec.key,
                    "DLQ is configured, but plugin {} does not export iggy_source_set_dlq_callback: \
                     records it cannot convert are LOST. Rebuild it with iggy-dlq-sdk to keep them.",
                    spec.plugin_path.display()
                );
            }
        }
        plugin.handle(id, callbacks::source_send_callback)?;
        tracing::info!(connector = %spec.key, version = %plugin.version(), "source started");
        Ok(SourceRunner {
            key: spec.key,
            id,
            plugin,
            route,
            batches,
            state_path: spec.state_path,
            metrics,
        })
    }

    /// Handles batches until `stop` turns true.
    pub async fn run(&self, output: &SourceOutput, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                batch = self.batches.recv_async() => match batch {
                    Ok(batch) => {
                        let result = self.process(output, &batch).await;
                        let answer = if result { BatchResult::Ack } else { BatchResult::Nack };
                        let rc = self.plugin.batch_result(self.id, batch.batch_id, answer);
                        if rc != 0 {
                            tracing::warn!(connector = %self.key, status = rc, "batch_result returned an error");
                        }
                    }
                    Err(_) => return,
                },
                _ = stop.changed() => if *stop.borrow() { return },
            }
        }
    }

    async fn process(&self, output: &SourceOutput, batch: &SourceBatch) -> bool {
        let produced: ProducedMessages = match abi::from_bytes("produced messages", &batch.bytes) {
            Ok(produced) => produced,
            Err(error) => {
                tracing::error!(connector = %self.key, %error, "the plugin's batch cannot be decoded");
                return false;
            }
        };
        let count = produced.messages.len() as u64;
        ConnectorMetrics::add(&self.metrics.consumed, count);

        // The dead letters the plugin sent while it polled this batch.
        let dead_letters = match &self.route {
            Some(route) => {
                let (_, previous) = route.begin_batch();
                previous
            }
            None => None,
        };
        if !produced.messages.is_empty()
            && let Err(error) = deliver(output, &produced.messages).await
        {
            tracing::warn!(connector = %self.key, %error, "cannot produce the batch; asking the plugin to send it again");
            return false;
        }
        if let Some(tracker) = dead_letters {
            let failed = tracker.wait().await;
            if failed > 0 {
                tracing::error!(connector = %self.key, failed, "dead letters of the batch could not be stored");
                return false;
            }
        }
        if let Some(state) = &produced.state
            && let Err(error) = write_atomically(&self.state_path, &state.0)
        {
            tracing::error!(connector = %self.key, %error, "cannot save the source's state");
            return false;
        }
        ConnectorMetrics::add(&self.metrics.written, count);
        true
    }

    /// Closes the plugin and stops routing its callbacks.
    pub fn close(&self) {
        if let Some(route) = &self.route {
            route.close();
        }
        let rc = self.plugin.close(self.id);
        callbacks::unregister(self.id);
        if rc != 0 {
            tracing::warn!(connector = %self.key, status = rc, "plugin close returned an error");
        }
    }
}

async fn deliver(output: &SourceOutput, messages: &[ProducedMessage]) -> Result<(), String> {
    match output {
        SourceOutput::Iggy {
            connection,
            stream,
            topic,
        } => {
            let outgoing = messages
                .iter()
                .map(|m| {
                    let headers = match &m.headers {
                        Some(h) if !h.is_empty() => {
                            let bytes = abi::to_bytes("headers", h).map_err(|e| e.to_string())?;
                            Some(Headers::from_abi_bytes(&bytes)?)
                        }
                        _ => None,
                    };
                    Ok(OutgoingMessage {
                        id: m.id,
                        payload: bytes::Bytes::copy_from_slice(&m.payload),
                        headers,
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            tokio::time::timeout(
                crate::iggy_client::IGGY_REQUEST_TIMEOUT,
                connection.send_balanced(stream, topic, &outgoing),
            )
            .await
            .map_err(|_| {
                format!(
                    "no acknowledgement from Iggy within {:?}",
                    crate::iggy_client::IGGY_REQUEST_TIMEOUT
                )
            })?
            .map_err(|e| e.to_string())
        }
        SourceOutput::Memory(sink) => {
            sink.lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(messages.iter().cloned());
            Ok(())
        }
    }
}

fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)
}
