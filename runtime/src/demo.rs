//! `iggy-dlq demo`: the whole dead-letter path on a generated batch.
//!
//! Without a server, generated batches go straight to the bundled example
//! sink (`json-sink`, a real `cdylib` loaded with dlopen), and dead letters go
//! to the embedded file target. With `--iggy`, the same messages are
//! produced to a fresh topic on a real server, consumed through a consumer
//! group, and dead-lettered to a DLQ topic there.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use iggy_dlq_envelope::{DlqEnvelope, PayloadPolicy, PayloadSchema, decode};
use tokio::sync::watch;

use crate::app::{RunError, start_dlq};
use crate::config::{BatchFailurePolicy, DlqConfig, DlqTarget};
use crate::dlq::read_records;
use crate::iggy_client::{ConnectionSettings, Headers, IggyConnection, OutgoingMessage};
use crate::metrics::Registry;
use crate::sink::{SinkInput, SinkRunner, SinkSpec, TopicSubscription, memory_batch};

/// What the demo does.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Where the target file and the DLQ file go.
    pub dir: PathBuf,
    /// How many messages to generate.
    pub messages: usize,
    /// Every n-th message is poison.
    pub poison_every: usize,
    /// The example sink plugin; found next to the executable by default.
    pub plugin: PathBuf,
    /// Run against this server instead of the embedded file target.
    pub iggy: Option<ConnectionSettings>,
}

/// Why the demo failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// The example plugin is missing.
    #[error(
        "example sink plugin not found at {0}; build it with `cargo build --release -p json-sink` \
         or pass --plugin PATH"
    )]
    PluginMissing(PathBuf),
    /// Setting up failed.
    #[error(transparent)]
    Run(#[from] RunError),
    /// Reading the results failed.
    #[error("{0}")]
    Results(String),
}

/// Where the example plugin is by default: next to the running executable,
/// as cargo builds both into the same target directory.
pub fn default_plugin_path() -> PathBuf {
    let dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    dir.join(format!(
        "{}json_sink.{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_EXTENSION
    ))
}

/// The generated payload of message `i`: valid JSON with an `order_id`,
/// except every `poison_every`-th, which alternates between broken JSON (the
/// runtime catches it), JSON without `order_id` (the plugin catches it) and a
/// large JSON without `order_id` (cut to fit the DLQ's maximum message size).
pub fn demo_payload(i: usize, poison_every: usize) -> Bytes {
    if poison_every > 0 && i % poison_every == poison_every - 1 {
        return match (i / poison_every) % 3 {
            0 => Bytes::from(format!("{{\"order_id\": {i}, \"amount\": ")),
            1 => Bytes::from(format!(
                "{{\"amount\": {}, \"note\": \"no order id\"}}",
                i * 3
            )),
            _ => Bytes::from(format!(
                "{{\"amount\": 1, \"blob\": \"{}\"}}",
                "x".repeat(20_000)
            )),
        };
    }
    Bytes::from(format!(
        "{{\"order_id\": {i}, \"amount\": {}}}",
        (i * 7) % 100
    ))
}

fn dlq_config(target: DlqTarget) -> DlqConfig {
    DlqConfig {
        target,
        partitions: 1,
        create: true,
        max_message_size: 4096,
        payload_policy: PayloadPolicy::Truncate,
        on_batch_failure: BatchFailurePolicy::DeadLetter,
        batch_retries: 1,
        retry_backoff: Duration::from_millis(50),
        batch_length: 1000,
        linger: Duration::from_millis(2),
        queue_capacity: 10_000,
        send_timeout: crate::iggy_client::DLQ_REQUEST_TIMEOUT,
        send_retries: 3,
    }
}

/// Runs the demo and returns its report, ready to print.
///
/// # Errors
///
/// When the plugin is missing, setting up fails, or the results cannot be
/// read back.
pub async fn run(options: DemoOptions) -> Result<String, DemoError> {
    if !options.plugin.is_file() {
        return Err(DemoError::PluginMissing(options.plugin));
    }
    std::fs::create_dir_all(&options.dir).map_err(|e| DemoError::Results(e.to_string()))?;
    let target = options.dir.join("target.jsonl");
    let _ = std::fs::remove_file(&target);
    let metrics = Registry::default();
    let key = "orders-demo";
    let payloads: Vec<Bytes> = (0..options.messages)
        .map(|i| demo_payload(i, options.poison_every))
        .collect();

    let mut out = String::new();
    let (dead_letters, dlq_where, commits) = match &options.iggy {
        None => {
            let dlq_file = options.dir.join("orders.dlq");
            let _ = std::fs::remove_file(&dlq_file);
            let dlq = dlq_config(DlqTarget::File(dlq_file.clone()));
            let (producer, route) =
                start_dlq(key, &dlq, None, &options.dir, &instance_id(), &metrics).await?;
            let runner = start_sink(&options, &target, dlq, route, &metrics)?;
            let commits = Arc::new(Mutex::new(Vec::new()));
            let batches = payloads
                .chunks(100)
                .enumerate()
                .map(|(n, chunk)| {
                    memory_batch(
                        "shop",
                        "orders",
                        1,
                        (n * 100) as u64,
                        PayloadSchema::Json,
                        chunk.iter().cloned(),
                    )
                })
                .collect();
            let mut input = SinkInput::Memory {
                batches,
                commits: commits.clone(),
            };
            let (_stop_tx, stop) = watch::channel(false);
            let result = runner.run(&mut input, stop).await;
            runner.close();
            producer.shutdown().await;
            result.map_err(|e| DemoError::Run(RunError::Sink(e)))?;
            let (records, _) = read_records(&dlq_file, 0, usize::MAX)
                .map_err(|e| DemoError::Results(e.to_string()))?;
            let commits = commits
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|c| c.offset)
                .collect::<Vec<_>>();
            (records, format!("DLQ file {}", dlq_file.display()), commits)
        }
        Some(settings) => {
            let connection = Arc::new(
                IggyConnection::connect(settings)
                    .await
                    .map_err(RunError::from)?,
            );
            let stream = format!("iggy-dlq-demo-{}", iggy_dlq_envelope::now_micros());
            connection
                .ensure_topic(&stream, "orders", 1, true)
                .await
                .map_err(RunError::from)?;
            let headers = Headers::demo_headers();
            for chunk in payloads.chunks(500) {
                let messages: Vec<OutgoingMessage> = chunk
                    .iter()
                    .map(|p| OutgoingMessage {
                        id: None,
                        payload: p.clone(),
                        headers: Some(headers.clone()),
                    })
                    .collect();
                connection
                    .send_balanced(&stream, "orders", &messages)
                    .await
                    .map_err(RunError::from)?;
            }
            let dlq = dlq_config(DlqTarget::Iggy {
                stream: stream.clone(),
                topic: "orders-dlq".into(),
            });
            let (producer, route) = start_dlq(
                key,
                &dlq,
                Some((settings, &connection)),
                &options.dir.join("spool"),
                &instance_id(),
                &metrics,
            )
            .await?;
            let runner = start_sink(&options, &target, dlq, route, &metrics)?;
            let group = "iggy-dlq-demo";
            connection
                .join_group(&stream, "orders", group)
                .await
                .map_err(RunError::from)?
                .report(key, &stream, "orders", group, &metrics.connector(key));
            let mut input = SinkInput::Iggy {
                connection: connection.clone(),
                topics: vec![TopicSubscription {
                    stream: stream.clone(),
                    topic: "orders".into(),
                    consumer_group: group.into(),
                    batch_length: 100,
                    schema: PayloadSchema::Json,
                }],
                next: 0,
                reconnect: Some(settings.clone()),
            };
            let result = runner.drain(&mut input).await;
            runner.close();
            producer.shutdown().await;
            result.map_err(|e| DemoError::Run(RunError::Sink(e)))?;
            let records = crate::iggy_client::read_all(&connection, &stream, "orders-dlq")
                .await
                .map_err(|e| DemoError::Results(e.to_string()))?;
            (
                records,
                format!("DLQ topic {stream}/orders-dlq on {}", settings.address),
                Vec::new(),
            )
        }
    };

    let good = std::fs::read_to_string(&target)
        .map(|t| t.lines().count())
        .unwrap_or(0);
    let _ = writeln!(
        out,
        "generated {} messages, every {}th poison",
        options.messages, options.poison_every
    );
    let _ = writeln!(out, "target {}: {good} messages", target.display());
    let _ = writeln!(out, "{dlq_where}: {} dead letters", dead_letters.len());
    if let Some(last) = commits.last() {
        let _ = writeln!(
            out,
            "committed up to offset {last} in {} commits, each after its dead letters were confirmed",
            commits.len()
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:>7}  {:<16}  {:<19}  {:>9}  reason",
        "offset", "stage", "code", "payload"
    );
    let mut by_code: BTreeMap<String, usize> = BTreeMap::new();
    let mut envelopes: Vec<DlqEnvelope> = Vec::new();
    for record in &dead_letters {
        let envelope = decode(record.clone())
            .map_err(|e| DemoError::Results(format!("a dead letter does not decode: {e}")))?;
        envelopes.push(envelope);
    }
    for envelope in &envelopes {
        let failure = envelope.failure.as_ref().expect("validated");
        let integrity = envelope.payload_integrity.as_ref().expect("validated");
        let stage = failure
            .stage()
            .as_str_name()
            .trim_start_matches("FAILURE_STAGE_")
            .to_lowercase();
        let code = failure
            .code()
            .as_str_name()
            .trim_start_matches("ERROR_CODE_")
            .to_lowercase();
        *by_code.entry(format!("{stage} / {code}")).or_default() += 1;
        if by_code.values().sum::<usize>() <= 12 {
            let size = if integrity.truncated {
                format!("{}/{}", envelope.payload.len(), integrity.original_length)
            } else {
                integrity.original_length.to_string()
            };
            let mut reason = failure.reason.clone();
            reason.truncate(60);
            let _ = writeln!(
                out,
                "{:>7}  {stage:<16}  {code:<19}  {size:>9}  {reason}",
                envelope.sink_origin().map_or(0, |o| o.offset)
            );
        }
    }
    if envelopes.len() > 12 {
        let _ = writeln!(out, "    ... and {} more", envelopes.len() - 12);
    }
    let _ = writeln!(out);
    for (reason, n) in &by_code {
        let _ = writeln!(out, "{n:>7}  {reason}");
    }
    let total = good + envelopes.len();
    let _ = writeln!(out);
    if total == options.messages {
        let _ = writeln!(
            out,
            "every message is accounted for: {good} in the target + {} in the DLQ = {total}",
            envelopes.len()
        );
    } else {
        let _ = writeln!(
            out,
            "MISMATCH: {good} in the target + {} in the DLQ = {total}, not {}",
            envelopes.len(),
            options.messages
        );
        return Err(DemoError::Results(out));
    }
    if let Some(first) = envelopes.first() {
        let _ = writeln!(out, "\nthe first dead letter, as canonical protobuf JSON:");
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&first.to_canonical_json()).unwrap_or_default()
        );
    }
    let _ = writeln!(out, "\n{}", metrics.summary());
    Ok(out)
}

fn instance_id() -> String {
    format!("demo-{}", std::process::id())
}

fn start_sink(
    options: &DemoOptions,
    target: &Path,
    dlq: DlqConfig,
    route: Arc<crate::dlq::DlqRoute>,
    metrics: &Registry,
) -> Result<SinkRunner, DemoError> {
    SinkRunner::start(
        SinkSpec {
            key: "orders-demo".into(),
            name: "Orders demo (json-sink)".into(),
            plugin_path: options.plugin.clone(),
            plugin_config: serde_json::json!({
                "path": target,
                "required_field": "order_id",
                "connector_key": "orders-demo",
                "connector_name": "Orders demo (json-sink)",
            }),
            dlq: Some(dlq),
            poll_interval: Duration::from_millis(5),
            instance_id: instance_id(),
        },
        Some(route),
        metrics.connector("orders-demo"),
    )
    .map_err(|e| DemoError::Run(RunError::Sink(e)))
}
