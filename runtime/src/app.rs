//! The whole runtime: connects to Iggy, starts a DLQ producer, a route and a
//! runner per connector, and shuts everything down in order.

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::{Config, ConnectorConfig, ConnectorType, DlqConfig, DlqTarget};
use crate::dlq::{
    Destination, DlqFileError, DlqFileWriter, DlqProducer, DlqProducerConfig, DlqRoute,
    ProducerReport, RouteConfig, Spool,
};
use crate::iggy_client::{ConnectionSettings, IggyClientError, IggyConnection, IggyDlqTransport};
use crate::metrics::Registry;
use crate::sink::{SinkError, SinkInput, SinkRunner, SinkSpec, TopicSubscription};
use crate::source::{SourceError, SourceOutput, SourceRunner, SourceSpec};

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// Iggy could not be reached or set up.
    #[error(transparent)]
    Iggy(#[from] IggyClientError),
    /// A DLQ file or spool could not be opened.
    #[error(transparent)]
    DlqFile(#[from] DlqFileError),
    /// A sink could not start.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// A source could not start.
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// What a run did.
#[derive(Debug, Default)]
pub struct RunReport {
    /// Per-connector errors that stopped a connector.
    pub connector_errors: Vec<(String, String)>,
    /// Per-DLQ producer reports.
    pub producers: Vec<(String, ProducerReport)>,
    /// The counters.
    pub metrics: Registry,
}

/// Starts the DLQ of one connector: its producer and its route.
///
/// # Errors
///
/// When the DLQ file, the spool or the Iggy DLQ topic cannot be set up.
pub async fn start_dlq(
    key: &str,
    dlq: &DlqConfig,
    iggy: Option<(&ConnectionSettings, &IggyConnection)>,
    spool_dir: &std::path::Path,
    instance_id: &str,
    metrics: &Registry,
) -> Result<(DlqProducer, Arc<DlqRoute>), RunError> {
    let destination = match &dlq.target {
        DlqTarget::File(path) => {
            let (writer, recovery) = DlqFileWriter::open(path)?;
            if recovery.torn_bytes > 0 {
                tracing::warn!(connector = key, file = %path.display(), torn_bytes = recovery.torn_bytes, "cut a torn last record off the DLQ file");
            }
            Destination::File(writer)
        }
        DlqTarget::Iggy { stream, topic } => {
            let (settings, connection) =
                iggy.expect("an Iggy DLQ needs a connection; Config::load checks");
            let info = connection
                .ensure_topic(stream, topic, dlq.partitions, dlq.create)
                .await?;
            tracing::info!(
                connector = key,
                stream,
                topic,
                partitions = info.partitions,
                "DLQ topic ready"
            );
            let (spool, recovery) = Spool::open(spool_dir.join(format!("{key}.spool")))?;
            if !spool.is_drained() {
                tracing::info!(
                    connector = key,
                    records = recovery.records,
                    "dead letters left in the spool by an earlier run are drained first"
                );
            }
            let transport =
                IggyDlqTransport::new(settings.clone(), stream.clone(), topic.clone(), None)
                    .with_timeout(dlq.send_timeout);
            Destination::Iggy {
                transport: Box::new(transport),
                spool,
            }
        }
    };
    let producer = DlqProducer::start(
        destination,
        DlqProducerConfig {
            batch_length: dlq.batch_length,
            linger: dlq.linger,
            queue_capacity: dlq.queue_capacity,
            max_retries: dlq.send_retries,
            ..DlqProducerConfig::default()
        },
        metrics.connector(key),
    );
    let route = DlqRoute::new(
        RouteConfig {
            connector_key: key.to_owned(),
            max_message_size: dlq.max_message_size,
            payload_policy: dlq.payload_policy,
            enqueue_timeout: None,
            runtime_instance_id: instance_id.to_owned(),
        },
        producer.sender(),
        metrics,
    );
    Ok((producer, route))
}

enum Runner {
    Sink(Arc<SinkRunner>),
    Source(Arc<SourceRunner>),
}

/// Runs every connector of `config` until `stop` turns true (or every sink
/// input is exhausted), then shuts down: stops polling, closes the plugins,
/// flushes the DLQs.
///
/// # Errors
///
/// When a connector cannot start; connectors that fail while running are
/// reported in [`RunReport::connector_errors`] and the others go on.
pub async fn run(config: Config, stop: watch::Receiver<bool>) -> Result<RunReport, RunError> {
    let metrics = Registry::default();
    let needs_iggy = !config.connectors.is_empty();
    let connection = if needs_iggy {
        Some(Arc::new(IggyConnection::connect(&config.iggy).await?))
    } else {
        None
    };
    if let Some(address) = &config.metrics_address {
        crate::metrics_server::spawn(address, metrics.clone()).await;
    }

    let mut producers = Vec::new();
    let mut runners = Vec::new();
    let mut tasks = JoinSet::new();
    for connector in &config.connectors {
        match start_connector(
            &config,
            connector,
            connection.as_ref(),
            &metrics,
            stop.clone(),
        )
        .await
        {
            Ok((producer, runner, task)) => {
                if let Some(producer) = producer {
                    producers.push((connector.key.clone(), producer));
                }
                runners.push(runner);
                tasks.spawn(task);
            }
            Err(error) => {
                // Undo what started before failing.
                for runner in &runners {
                    close(runner);
                }
                for (_, producer) in producers {
                    producer.shutdown().await;
                }
                return Err(error);
            }
        }
    }

    let mut report = RunReport::default();
    while let Some(result) = tasks.join_next().await {
        if let Ok(Err((key, error))) = result {
            tracing::error!(connector = %key, %error, "connector stopped");
            report.connector_errors.push((key, error));
        }
    }
    for runner in &runners {
        close(runner);
    }
    for (key, producer) in producers {
        report.producers.push((key, producer.shutdown().await));
    }
    if let Some(connection) = connection {
        connection.close().await;
    }
    report.metrics = metrics;
    Ok(report)
}

fn close(runner: &Runner) {
    match runner {
        Runner::Sink(r) => r.close(),
        Runner::Source(r) => r.close(),
    }
}

type ConnectorTask =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), (String, String)>> + Send>>;

async fn start_connector(
    config: &Config,
    connector: &ConnectorConfig,
    connection: Option<&Arc<IggyConnection>>,
    metrics: &Registry,
    stop: watch::Receiver<bool>,
) -> Result<(Option<DlqProducer>, Runner, ConnectorTask), RunError> {
    let key = connector.key.clone();
    let (producer, route) = match &connector.dlq {
        Some(dlq) => {
            let iggy = connection.map(|c| (&config.iggy, c.as_ref()));
            let (producer, route) = start_dlq(
                &key,
                dlq,
                iggy,
                &config.spool_dir,
                &config.instance_id,
                metrics,
            )
            .await?;
            (Some(producer), Some(route))
        }
        None => (None, None),
    };
    let connection = connection.expect("connectors need Iggy").clone();
    match connector.kind {
        ConnectorType::Sink => {
            let mut topics = Vec::new();
            for stream in &connector.streams {
                let schema =
                    crate::config::payload_schema(&stream.schema).expect("checked by Config::load");
                let group = stream
                    .consumer_group
                    .clone()
                    .unwrap_or_else(|| format!("iggy-dlq-sink-{key}"));
                for topic in &stream.topics {
                    let joined = connection.join_group(&stream.stream, topic, &group).await?;
                    joined.report(
                        &key,
                        &stream.stream,
                        topic,
                        &group,
                        &metrics.connector(&key),
                    );
                    topics.push(TopicSubscription {
                        stream: stream.stream.clone(),
                        topic: topic.clone(),
                        consumer_group: group.clone(),
                        batch_length: stream.batch_length,
                        schema,
                    });
                }
            }
            let runner = Arc::new(SinkRunner::start(
                SinkSpec {
                    key: key.clone(),
                    name: connector.name.clone(),
                    plugin_path: connector.path.clone(),
                    plugin_config: connector.plugin_config.clone(),
                    dlq: connector.dlq.clone(),
                    poll_interval: connector.poll_interval,
                    instance_id: config.instance_id.clone(),
                },
                route,
                metrics.connector(&key),
            )?);
            let task_runner = runner.clone();
            let mut input = SinkInput::Iggy {
                connection,
                topics,
                next: 0,
                reconnect: Some(config.iggy.clone()),
            };
            let task: ConnectorTask = Box::pin(async move {
                task_runner
                    .run(&mut input, stop)
                    .await
                    .map_err(|e| (key, e.to_string()))
            });
            Ok((producer, Runner::Sink(runner), task))
        }
        ConnectorType::Source => {
            let stream = &connector.streams[0];
            let topic = stream.topic.clone().expect("checked by Config::load");
            connection
                .ensure_topic(&stream.stream, &topic, 1, false)
                .await?;
            let runner = Arc::new(SourceRunner::start(
                SourceSpec {
                    key: key.clone(),
                    plugin_path: connector.path.clone(),
                    plugin_config: connector.plugin_config.clone(),
                    state_path: config
                        .spool_dir
                        .parent()
                        .unwrap_or(&config.spool_dir)
                        .join(format!("{key}.state")),
                },
                route,
                metrics.connector(&key),
            )?);
            let task_runner = runner.clone();
            let output = SourceOutput::Iggy {
                connection,
                stream: stream.stream.clone(),
                topic,
            };
            let task: ConnectorTask = Box::pin(async move {
                task_runner.run(&output, stop).await;
                Ok(())
            });
            Ok((producer, Runner::Source(runner), task))
        }
    }
}
