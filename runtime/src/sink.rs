//! Running a sink: poll a batch, hand it to the plugin, confirm its dead
//! letters, and only then commit the offset.
//!
//! The order is the point. The upstream runtime commits offsets when it
//! polls and ignores what `consume()` returns, so a crash or a failed write
//! loses the batch. Here an offset is committed only after `consume()`
//! succeeded (or its batch was dead-lettered by policy) and every dead letter
//! of the batch is acknowledged by the DLQ topic or synced to disk. A crash
//! anywhere before the commit consumes the batch again: delivery to the
//! target and to the DLQ is at least once.
//!
//! How many duplicates: each interruption (a crash, a restart, an Iggy
//! outage that fails a poll or a commit) repeats at most the one batch that
//! was under way and not committed, so at most `batch_length` messages in the
//! target and that batch's dead letters in the DLQ. An Iggy failure does not
//! stop the sink: it waits, rejoins its consumer groups and polls again.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use iggy_dlq_envelope::{
    Connector, DlqEnvelope, ErrorCode, Failure, FailureStage, Header, PayloadSchema, SinkOrigin,
};
use iggy_dlq_sdk::abi::{
    self, DlqStatus, MessagesMetadata, RawMessage, RawMessages, TopicMetadata,
};
use tokio::sync::watch;

use crate::config::{BatchFailurePolicy, DlqConfig};
use crate::dlq::DlqRoute;
use crate::iggy_client::{IggyClientError, IggyConnection, PolledMessage};
use crate::metrics::ConnectorMetrics;
use crate::plugin::{PluginError, SinkPlugin};

use crate::iggy_client::IGGY_REQUEST_TIMEOUT;

/// How long a sink waits after an Iggy failure before it polls again.
const IGGY_RETRY_BACKOFF: Duration = Duration::from_millis(500);

/// Why a sink stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The plugin could not be loaded, opened or called.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// Iggy failed.
    #[error(transparent)]
    Iggy(#[from] IggyClientError),
    /// Iggy did not answer in time.
    #[error("no answer from Iggy within the timeout while {0}")]
    IggyTimeout(String),
    /// Some dead letters of a batch could not be stored; the batch is not
    /// committed and is consumed again at the next start.
    #[error(
        "connector `{key}`: {failed} dead letters of the batch at offset {offset} could not be stored; not committing"
    )]
    DeadLettersNotStored {
        /// Connector.
        key: String,
        /// First offset of the batch.
        offset: u64,
        /// How many.
        failed: usize,
    },
    /// `consume()` kept failing and the policy says stop.
    #[error(
        "connector `{key}`: consume() failed {attempts} times for the batch at offset {offset} (status {status}); stopping without committing, as configured"
    )]
    BatchFailed {
        /// Connector.
        key: String,
        /// First offset of the batch.
        offset: u64,
        /// Attempts made.
        attempts: u32,
        /// The last status.
        status: i32,
    },
}

/// One batch to hand to the plugin.
#[derive(Debug, Clone)]
pub struct InputBatch {
    /// Stream name.
    pub stream: String,
    /// Topic name.
    pub topic: String,
    /// Consumer group.
    pub consumer_group: String,
    /// Partition.
    pub partition_id: u32,
    /// The partition's current offset at poll time.
    pub current_offset: u64,
    /// Declared schema.
    pub schema: PayloadSchema,
    /// The messages, in offset order.
    pub messages: Vec<PolledMessage>,
}

/// A committed offset, as the in-memory input records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// Stream.
    pub stream: String,
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition_id: u32,
    /// Offset.
    pub offset: u64,
}

/// One topic a sink consumes.
#[derive(Debug, Clone)]
pub struct TopicSubscription {
    /// Stream.
    pub stream: String,
    /// Topic.
    pub topic: String,
    /// Consumer group.
    pub consumer_group: String,
    /// Messages per poll.
    pub batch_length: u32,
    /// Declared schema.
    pub schema: PayloadSchema,
}

/// Where a sink's batches come from.
#[derive(Debug)]
pub enum SinkInput {
    /// Iggy topics, through a consumer group.
    Iggy {
        /// The connection.
        connection: Arc<IggyConnection>,
        /// The topics, polled in turn.
        topics: Vec<TopicSubscription>,
        /// Which topic is next.
        next: usize,
        /// How to connect afresh after Iggy failed (a restart, a cut
        /// connection); `None` keeps the connection as it is.
        reconnect: Option<crate::iggy_client::ConnectionSettings>,
    },
    /// Prepared batches (the demo, and tests without a server); commits are
    /// recorded.
    Memory {
        /// Batches not yet handed out.
        batches: VecDeque<InputBatch>,
        /// Offsets committed so far.
        commits: Arc<Mutex<Vec<Commit>>>,
    },
}

impl SinkInput {
    /// The next batch; `Ok(None)` when there is nothing now (Iggy) or
    /// nothing more (memory).
    async fn next_batch(&mut self) -> Result<Option<InputBatch>, SinkError> {
        match self {
            SinkInput::Iggy {
                connection,
                topics,
                next,
                ..
            } => {
                for _ in 0..topics.len() {
                    let sub = &topics[*next % topics.len()];
                    *next = (*next + 1) % topics.len();
                    let polled = tokio::time::timeout(
                        IGGY_REQUEST_TIMEOUT,
                        connection.poll_group(
                            &sub.stream,
                            &sub.topic,
                            &sub.consumer_group,
                            sub.batch_length,
                        ),
                    )
                    .await
                    .map_err(|_| {
                        SinkError::IggyTimeout(format!("polling {}/{}", sub.stream, sub.topic))
                    })??;
                    tracing::trace!(
                        stream = %sub.stream,
                        topic = %sub.topic,
                        partition = polled.partition_id,
                        current_offset = polled.current_offset,
                        count = polled.messages.len(),
                        first = ?polled.messages.first().map(|m| m.offset),
                        "polled"
                    );
                    if !polled.messages.is_empty() {
                        return Ok(Some(InputBatch {
                            stream: sub.stream.clone(),
                            topic: sub.topic.clone(),
                            consumer_group: sub.consumer_group.clone(),
                            partition_id: polled.partition_id,
                            current_offset: polled.current_offset,
                            schema: sub.schema,
                            messages: polled.messages,
                        }));
                    }
                }
                Ok(None)
            }
            SinkInput::Memory { batches, .. } => Ok(batches.pop_front()),
        }
    }

    /// Connects afresh (when it knows how) and joins the consumer groups
    /// again, after Iggy failed: a restarted server forgets the membership,
    /// and a client that reconnected by itself keeps a session the server
    /// no longer knows.
    async fn rejoin(&mut self, key: &str, metrics: &ConnectorMetrics) -> Result<(), SinkError> {
        if let SinkInput::Iggy {
            connection,
            topics,
            reconnect,
            ..
        } = self
        {
            if let Some(settings) = reconnect {
                tracing::debug!(address = %settings.address, "connecting afresh");
                let fresh = tokio::time::timeout(
                    IGGY_REQUEST_TIMEOUT,
                    IggyConnection::connect_without_retries(settings),
                )
                .await
                .map_err(|_| {
                    SinkError::IggyTimeout(format!("connecting to {}", settings.address))
                })??;
                let old = std::mem::replace(connection, Arc::new(fresh));
                tracing::debug!("connected afresh; closing the old connection");
                old.close().await;
            }
            tracing::debug!("rejoining the consumer groups");
            for sub in topics.iter() {
                let joined = tokio::time::timeout(
                    IGGY_REQUEST_TIMEOUT,
                    connection.join_group(&sub.stream, &sub.topic, &sub.consumer_group),
                )
                .await
                .map_err(|_| {
                    SinkError::IggyTimeout(format!("joining consumer group {}", sub.consumer_group))
                })??;
                joined.report(key, &sub.stream, &sub.topic, &sub.consumer_group, metrics);
            }
            tracing::debug!("rejoined the consumer groups");
        }
        Ok(())
    }

    fn is_exhausted(&self) -> bool {
        matches!(self, SinkInput::Memory { batches, .. } if batches.is_empty())
    }

    async fn commit(&self, batch: &InputBatch, offset: u64) -> Result<(), SinkError> {
        match self {
            SinkInput::Iggy { connection, .. } => {
                tokio::time::timeout(
                    IGGY_REQUEST_TIMEOUT,
                    connection.commit(
                        &batch.stream,
                        &batch.topic,
                        &batch.consumer_group,
                        batch.partition_id,
                        offset,
                    ),
                )
                .await
                .map_err(|_| SinkError::IggyTimeout(format!("committing offset {offset}")))??;
            }
            SinkInput::Memory { commits, .. } => {
                commits
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(Commit {
                        stream: batch.stream.clone(),
                        topic: batch.topic.clone(),
                        partition_id: batch.partition_id,
                        offset,
                    });
            }
        }
        Ok(())
    }
}

fn abi_schema(schema: PayloadSchema) -> abi::Schema {
    match schema {
        PayloadSchema::Raw => abi::Schema::Raw,
        PayloadSchema::Text => abi::Schema::Text,
        PayloadSchema::Proto => abi::Schema::Proto,
        PayloadSchema::Flatbuffer => abi::Schema::FlatBuffer,
        PayloadSchema::Avro => abi::Schema::Avro,
        PayloadSchema::Json | PayloadSchema::Unspecified => abi::Schema::Json,
    }
}

/// Why the runtime itself could not hand a message to the plugin.
fn runtime_check(schema: PayloadSchema, message: &PolledMessage) -> Option<Failure> {
    if let Err(error) = &message.headers {
        return Some(Failure::new(
            FailureStage::RuntimeDecode,
            ErrorCode::MalformedHeaders,
            format!("user headers cannot be decoded: {error}"),
        ));
    }
    let problem = match schema {
        PayloadSchema::Json => serde_json::from_slice::<serde::de::IgnoredAny>(&message.payload)
            .err()
            .map(|e| format!("payload is not JSON, the stream's declared schema: {e}")),
        PayloadSchema::Text => std::str::from_utf8(&message.payload)
            .err()
            .map(|e| format!("payload is not UTF-8 text, the stream's declared schema: {e}")),
        _ => None,
    };
    problem.map(|reason| {
        Failure::new(
            FailureStage::RuntimeDecode,
            ErrorCode::MalformedPayload,
            reason,
        )
    })
}

/// A sink connector, opened and wired.
#[derive(Debug)]
pub struct SinkRunner {
    key: String,
    name: String,
    id: u32,
    instance_id: String,
    plugin: Arc<SinkPlugin>,
    route: Option<Arc<DlqRoute>>,
    plugin_has_dlq: bool,
    dlq: Option<DlqConfig>,
    metrics: Arc<ConnectorMetrics>,
    poll_interval: Duration,
}

/// What a sink needs to start.
#[derive(Debug, Clone)]
pub struct SinkSpec {
    /// Connector key.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Plugin library.
    pub plugin_path: std::path::PathBuf,
    /// Plugin configuration.
    pub plugin_config: serde_json::Value,
    /// DLQ, if configured.
    pub dlq: Option<DlqConfig>,
    /// Pause between empty polls.
    pub poll_interval: Duration,
    /// This runtime's id.
    pub instance_id: String,
}

impl SinkRunner {
    /// Loads and opens the plugin; wires its DLQ callback when a route is
    /// given.
    ///
    /// # Errors
    ///
    /// When the plugin cannot be loaded, opened or wired.
    pub fn start(
        spec: SinkSpec,
        route: Option<Arc<DlqRoute>>,
        metrics: Arc<ConnectorMetrics>,
    ) -> Result<Self, SinkError> {
        let plugin = Arc::new(SinkPlugin::load(&spec.plugin_path)?);
        let id = crate::callbacks::next_plugin_id();
        let config = serde_json::to_vec(&with_identity(
            spec.plugin_config.clone(),
            &spec.key,
            &spec.name,
        ))
        .expect("JSON values always encode");
        plugin.open(id, &config, crate::callbacks::log_callback)?;
        let mut plugin_has_dlq = false;
        if let Some(route) = &route {
            crate::callbacks::register_route(id, route.clone());
            plugin_has_dlq = plugin.set_dlq_callback(id, crate::callbacks::dlq_callback)?;
            if !plugin_has_dlq {
                tracing::warn!(
                    connector = %spec.key,
                    plugin = %spec.plugin_path.display(),
                    "DLQ is configured, but plugin {} does not export iggy_sink_set_dlq_callback: \
                     messages it fails on inside a successful consume() are LOST. Only failures \
                     the runtime sees (undecodable messages, failed batches) reach the DLQ. \
                     Rebuild the plugin with iggy-dlq-sdk to protect them.",
                    spec.plugin_path.display()
                );
            }
        }
        tracing::info!(connector = %spec.key, version = %plugin.version(), dlq = route.is_some(), "sink opened");
        Ok(SinkRunner {
            key: spec.key,
            name: spec.name,
            id,
            instance_id: spec.instance_id,
            plugin,
            route,
            plugin_has_dlq,
            dlq: spec.dlq,
            metrics,
            poll_interval: spec.poll_interval,
        })
    }

    /// The plugin instance id.
    pub fn plugin_id(&self) -> u32 {
        self.id
    }

    /// Whether the plugin itself dead-letters (exports the DLQ symbol and a
    /// DLQ is configured).
    pub fn plugin_has_dlq(&self) -> bool {
        self.plugin_has_dlq
    }

    /// Runs until `stop` turns true, or the memory input is exhausted.
    ///
    /// # Errors
    ///
    /// What stops the connector; the batch under way is not committed.
    pub async fn run(
        &self,
        input: &mut SinkInput,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), SinkError> {
        while !*stop.borrow() {
            let result = match input.next_batch().await {
                Ok(Some(batch)) => self.process(input, batch).await,
                Ok(None) if input.is_exhausted() => return Ok(()),
                Ok(None) => {
                    tokio::select! {
                        _ = tokio::time::sleep(self.poll_interval) => {}
                        _ = stop.changed() => {}
                    }
                    Ok(())
                }
                Err(error) => Err(error),
            };
            match result {
                Ok(()) => {}
                // Iggy went away (a restart, a network cut): the batch under
                // way is not committed and comes again once the group is
                // rejoined. Anything else stops the connector.
                Err(error @ (SinkError::Iggy(_) | SinkError::IggyTimeout(_))) => {
                    tracing::warn!(connector = %self.key, %error, "Iggy failed; rejoining and polling again");
                    ConnectorMetrics::add(&self.metrics.iggy_failures, 1);
                    tokio::select! {
                        _ = tokio::time::sleep(IGGY_RETRY_BACKOFF) => {}
                        _ = stop.changed() => {}
                    }
                    tracing::debug!(connector = %self.key, "rejoining");
                    if let Err(error) = input.rejoin(&self.key, &self.metrics).await {
                        tracing::warn!(connector = %self.key, %error, "cannot rejoin the consumer group yet");
                    }
                }
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// Processes batches until the input has nothing more right now.
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run).
    pub async fn drain(&self, input: &mut SinkInput) -> Result<(), SinkError> {
        while let Some(batch) = input.next_batch().await? {
            self.process(input, batch).await?;
        }
        Ok(())
    }

    fn connector(&self) -> Connector {
        Connector::sink(&self.key, &self.name, self.plugin.version())
            .with_runtime_instance_id(&self.instance_id)
    }

    fn envelope(
        &self,
        batch: &InputBatch,
        message: &PolledMessage,
        failure: Failure,
    ) -> Option<DlqEnvelope> {
        let mut origin = SinkOrigin::new(
            &batch.stream,
            &batch.topic,
            batch.partition_id,
            message.offset,
            message.id,
        );
        origin.checksum = message.checksum;
        origin.timestamp_micros = message.timestamp;
        origin.origin_timestamp_micros = message.origin_timestamp;
        origin.consumer_group = batch.consumer_group.clone();
        let headers = match &message.headers {
            Ok(Some(headers)) => headers
                .raw_parts()
                .into_iter()
                .map(|(kk, k, vk, v)| Header::from_raw_parts(kk, k, vk, v))
                .collect(),
            _ => Vec::new(),
        };
        match DlqEnvelope::for_sink(origin)
            .payload(message.payload.clone(), batch.schema)
            .headers(headers)
            .failure(failure)
            .connector(self.connector())
            .build()
        {
            Ok(envelope) => Some(envelope),
            Err(error) => {
                tracing::error!(connector = %self.key, offset = message.offset, %error, "cannot build a dead letter");
                None
            }
        }
    }

    /// Dead-letters one message from the runtime's side; `false` when it
    /// could not be queued.
    fn dead_letter(&self, batch: &InputBatch, message: &PolledMessage, failure: Failure) -> bool {
        let Some(route) = &self.route else {
            return false;
        };
        match self.envelope(batch, message, failure) {
            Some(envelope) => route.submit_envelope(envelope, None) == DlqStatus::Accepted,
            None => false,
        }
    }

    /// Processes one batch end to end; see the module docs for the order.
    ///
    /// # Errors
    ///
    /// When the batch cannot be completed; it is then not committed.
    pub async fn process(&self, input: &SinkInput, batch: InputBatch) -> Result<(), SinkError> {
        let Some(last) = batch.messages.last().map(|m| m.offset) else {
            return Ok(());
        };
        let first = batch.messages[0].offset;
        let count = batch.messages.len() as u64;
        ConnectorMetrics::add(&self.metrics.consumed, count);
        let tracker = self.route.as_ref().map(|r| r.begin_ordered_batch());

        // Messages the runtime cannot hand over go to the DLQ (when there is
        // one), not to the plugin and not to oblivion.
        let mut raw = Vec::with_capacity(batch.messages.len());
        let mut kept = Vec::with_capacity(batch.messages.len());
        for message in &batch.messages {
            if let Some(failure) = self
                .route
                .as_ref()
                .and_then(|_| runtime_check(batch.schema, message))
            {
                if !self.dead_letter(&batch, message, failure) {
                    return Err(SinkError::DeadLettersNotStored {
                        key: self.key.clone(),
                        offset: first,
                        failed: 1,
                    });
                }
                continue;
            }
            raw.push(RawMessage {
                id: message.id,
                offset: message.offset,
                checksum: message.checksum,
                timestamp: message.timestamp,
                origin_timestamp: message.origin_timestamp,
                headers: match &message.headers {
                    Ok(Some(h)) => h.to_abi_bytes().unwrap_or_default(),
                    _ => Vec::new(),
                },
                payload: message.payload.to_vec(),
            });
            kept.push(message);
        }
        if self.route.is_some() && !self.plugin_has_dlq {
            ConnectorMetrics::add(&self.metrics.unprotected, raw.len() as u64);
        }

        if !raw.is_empty() {
            let handed = raw.len() as u64;
            let topic = TopicMetadata {
                stream: batch.stream.clone(),
                topic: batch.topic.clone(),
            };
            let metadata = MessagesMetadata {
                partition_id: batch.partition_id,
                current_offset: batch.current_offset,
                schema: abi_schema(batch.schema),
            };
            let messages = Arc::new(RawMessages {
                schema: abi_schema(batch.schema),
                messages: raw,
            });
            let (retries, backoff, policy) = self.dlq.as_ref().map_or(
                (3, Duration::from_millis(200), BatchFailurePolicy::Stop),
                |d| (d.batch_retries, d.retry_backoff, d.on_batch_failure),
            );
            let before = tracker.as_ref().map_or(0, |t| t.total());
            let mut status = 0;
            let mut attempts = 0;
            let first_failed = iggy_dlq_envelope::now_micros();
            for attempt in 0..=retries {
                attempts = attempt + 1;
                let plugin = self.plugin.clone();
                let (id, topic, metadata, messages) =
                    (self.id, topic.clone(), metadata.clone(), messages.clone());
                status = tokio::task::spawn_blocking(move || {
                    plugin.consume(id, &topic, &metadata, &messages)
                })
                .await
                .expect("consume() runs behind the plugin's panic guard")?;
                if status == 0 {
                    break;
                }
                ConnectorMetrics::add(&self.metrics.batch_failures, 1);
                tracing::warn!(connector = %self.key, status, attempt = attempts, offset = first, "consume() failed");
                if let Some(route) = &self.route {
                    route.discard_plugin_letters();
                }
                if attempt < retries {
                    tokio::time::sleep(backoff.saturating_mul(1 << attempt.min(16))).await;
                }
            }
            if status != 0 {
                let route_for_batch =
                    self.route.is_some() && policy == BatchFailurePolicy::DeadLetter;
                if !route_for_batch {
                    return Err(SinkError::BatchFailed {
                        key: self.key.clone(),
                        offset: first,
                        attempts,
                        status,
                    });
                }
                let last_failed = iggy_dlq_envelope::now_micros();
                for message in &kept {
                    let failure = Failure::new(
                        FailureStage::ConnectorWrite,
                        ErrorCode::BatchFailed,
                        format!("consume() failed for the whole batch with status {status}"),
                    )
                    .retryable(true)
                    .with_attempts(attempts)
                    .failed_at(first_failed, last_failed);
                    if !self.dead_letter(&batch, message, failure) {
                        return Err(SinkError::DeadLettersNotStored {
                            key: self.key.clone(),
                            offset: first,
                            failed: 1,
                        });
                    }
                }
            } else {
                let by_plugin = tracker.as_ref().map_or(0, |t| t.total()) - before;
                ConnectorMetrics::add(
                    &self.metrics.written,
                    handed.saturating_sub(by_plugin as u64),
                );
            }
        }

        if let Some(route) = &self.route
            && route.flush_batch().await.is_err()
        {
            return Err(SinkError::DeadLettersNotStored {
                key: self.key.clone(),
                offset: first,
                failed: tracker.as_ref().map_or(0, |t| t.total()),
            });
        }
        if let Some(tracker) = tracker {
            let failed = tracker.wait().await;
            if failed > 0 {
                return Err(SinkError::DeadLettersNotStored {
                    key: self.key.clone(),
                    offset: first,
                    failed,
                });
            }
        }
        input.commit(&batch, last).await?;
        ConnectorMetrics::add(&self.metrics.commits, 1);
        Ok(())
    }

    /// Closes the plugin and stops routing its callbacks.
    pub fn close(&self) {
        if let Some(route) = &self.route {
            route.close();
        }
        let rc = self.plugin.close(self.id);
        crate::callbacks::unregister(self.id);
        if rc != 0 {
            tracing::warn!(connector = %self.key, status = rc, "plugin close returned an error");
        }
    }
}

/// The plugin configuration with the connector's identity, which SDK
/// plugins put into their envelopes (`connector_key`, `connector_name`),
/// unless the configuration sets them itself.
pub fn with_identity(mut config: serde_json::Value, key: &str, name: &str) -> serde_json::Value {
    if let Some(object) = config.as_object_mut() {
        object.entry("connector_key").or_insert_with(|| key.into());
        object
            .entry("connector_name")
            .or_insert_with(|| name.into());
    }
    config
}

/// Builds an in-memory batch of `payloads` (the demo, tests).
pub fn memory_batch(
    stream: &str,
    topic: &str,
    partition_id: u32,
    first_offset: u64,
    schema: PayloadSchema,
    payloads: impl IntoIterator<Item = Bytes>,
) -> InputBatch {
    let now = iggy_dlq_envelope::now_micros();
    let messages: Vec<PolledMessage> = payloads
        .into_iter()
        .enumerate()
        .map(|(i, payload)| PolledMessage {
            id: (u128::from(first_offset) + i as u128) | (0xD1A << 100),
            offset: first_offset + i as u64,
            checksum: u64::from(crc32c::crc32c(&payload)),
            timestamp: now,
            origin_timestamp: now,
            headers: Ok(None),
            payload,
        })
        .collect();
    InputBatch {
        stream: stream.to_owned(),
        topic: topic.to_owned(),
        consumer_group: "iggy-dlq-demo".to_owned(),
        partition_id,
        current_offset: first_offset + messages.len() as u64,
        schema,
        messages,
    }
}
