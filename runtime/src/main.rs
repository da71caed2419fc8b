//! `iggy-dlq`: the command line of the iggy-dlq runtime.
//!
//! - `iggy-dlq run --config FILE`: host the configured connectors.
//! - `iggy-dlq check --config FILE`: check a config and its plugins without
//!   connecting to Iggy.
//! - `iggy-dlq demo [--iggy iggy://user:password@host:port]`: the whole
//!   dead-letter path on a generated batch.
//! - `iggy-dlq inspect SOURCE`: print the dead letters of a DLQ file or topic.
//! - `iggy-dlq stats SOURCE`: count them by stage, code, connector and origin.
//! - `iggy-dlq replay SOURCE`: send the original messages of chosen dead
//!   letters to Iggy again.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use iggy_dlq_envelope::{Decoder, DlqEnvelope, Origin};
use iggy_dlq_runtime::config::Config;
use iggy_dlq_runtime::demo::{self, DemoOptions};
use iggy_dlq_runtime::dlq::read_records;
use iggy_dlq_runtime::iggy_client::{ConnectionSettings, IggyConnection, read_all};
use iggy_dlq_runtime::replay::{self, Destination, ReplayFilter};
use tokio::sync::watch;

#[derive(Debug, Parser)]
#[command(
    name = "iggy-dlq",
    version,
    about = "A dead-letter queue for Apache Iggy connectors"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Host the connectors of a runtime config file until SIGINT/SIGTERM.
    Run {
        /// The runtime config file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Check a runtime config file and load each enabled connector's plugin,
    /// without connecting to Iggy: what `run` would host, and whether each
    /// plugin can dead-letter.
    Check {
        /// The runtime config file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run the whole dead-letter path on a generated batch and show what
    /// landed where.
    Demo {
        /// Run against this Iggy server (iggy://user:password@host:port)
        /// instead of the embedded file target.
        #[arg(long, env = "IGGY_DLQ_DEMO_IGGY")]
        iggy: Option<String>,
        /// Where the target and DLQ files go.
        #[arg(long, default_value = "iggy-dlq-demo")]
        dir: PathBuf,
        /// Messages to generate.
        #[arg(long, default_value_t = 1000)]
        messages: usize,
        /// Every n-th message is poison.
        #[arg(long, default_value_t = 50)]
        poison_every: usize,
        /// The example sink plugin (default: libjson_sink next to this
        /// executable).
        #[arg(long)]
        plugin: Option<PathBuf>,
    },
    /// Print the dead letters of a DLQ file (PATH or file://PATH) or an Iggy
    /// DLQ topic (iggy://user:password@host:port with --stream, --topic).
    Inspect {
        #[command(flatten)]
        dlq: DlqSource,
        /// Print each envelope as canonical protobuf JSON, one per line.
        #[arg(long)]
        json: bool,
        /// Print at most this many.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Count the dead letters of a DLQ file or topic by failure stage and
    /// code, connector and origin, with the oldest and newest failure.
    Stats {
        #[command(flatten)]
        dlq: DlqSource,
    },
    /// Send the original messages of chosen dead letters to Iggy again:
    /// payload, headers and message id as they were, plus a replay count
    /// header. By default each goes back to its origin stream, topic and
    /// partition, where its sink consumes it again.
    Replay {
        #[command(flatten)]
        dlq: DlqSource,
        /// The Iggy server to replay to (iggy://user:password@host:port);
        /// default: the DLQ's own server, when the DLQ is a topic.
        #[arg(long)]
        to: Option<String>,
        /// Replay into this stream instead of each origin's.
        #[arg(long)]
        to_stream: Option<String>,
        /// Replay into this topic instead of each origin's.
        #[arg(long)]
        to_topic: Option<String>,
        /// Replay into this partition instead of each origin's.
        #[arg(long)]
        partition: Option<u32>,
        /// Only this failure stage (connector_process, ...); repeatable.
        #[arg(long = "stage", value_parser = replay::parse_stage)]
        stages: Vec<iggy_dlq_envelope::FailureStage>,
        /// Only this error code (missing_field, ...); repeatable.
        #[arg(long = "code", value_parser = replay::parse_code)]
        codes: Vec<iggy_dlq_envelope::ErrorCode>,
        /// Only the dead letters of this connector key.
        #[arg(long)]
        connector: Option<String>,
        /// Only the dead letters consumed from STREAM/TOPIC.
        #[arg(long)]
        origin: Option<String>,
        /// Skip the first N records of the DLQ (go on after an earlier
        /// replay: it prints where it stopped).
        #[arg(long, default_value_t = 0)]
        skip: usize,
        /// Replay at most N messages.
        #[arg(long)]
        limit: Option<usize>,
        /// Refuse a message already replayed this many times.
        #[arg(long, default_value_t = replay::DEFAULT_MAX_REPLAYS)]
        max_replays: u32,
        /// Let the server give replayed messages new ids instead of their
        /// own (for a topic with message deduplication on).
        #[arg(long)]
        new_ids: bool,
        /// Print what would be replayed, and send nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// A DLQ to read: a file or an Iggy topic.
#[derive(Debug, Args)]
struct DlqSource {
    /// The DLQ: a file (PATH or file://PATH) or an Iggy server
    /// (iggy://user:password@host:port, with --stream and --topic).
    source: String,
    /// Stream of an Iggy DLQ.
    #[arg(long)]
    stream: Option<String>,
    /// Topic of an Iggy DLQ.
    #[arg(long)]
    topic: Option<String>,
}

/// Logs to stderr, filtered by `IGGY_DLQ_LOG` (`tracing` directives); by
/// default `info` for the long-running commands, `warn` for the tools,
/// whose output is their answer, and `warn` for the Iggy client's own
/// connection chatter either way.
fn init_logging(command: &Command) {
    let default = match command {
        Command::Run { .. } | Command::Demo { .. } => "info,iggy=warn",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("IGGY_DLQ_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Why a command failed.
#[derive(Debug)]
enum CliError {
    /// What went wrong, for the user.
    Message(String),
    /// Standard output could not be written: when its reader went away
    /// (`iggy-dlq inspect ... | head`), the command just stops.
    Output(std::io::Error),
}

impl From<String> for CliError {
    fn from(message: String) -> Self {
        CliError::Message(message)
    }
}

impl From<&str> for CliError {
    fn from(message: &str) -> Self {
        CliError::Message(message.to_owned())
    }
}

/// `println!` that returns an output error instead of panicking on one.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*).map_err(CliError::Output)?
    }};
}

/// `eprintln!` that ignores a closed or full stderr instead of panicking:
/// the work is done by the time these lines are written.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.command);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            note!("iggy-dlq: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Output(error)) if error.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(CliError::Output(error)) => {
            note!("iggy-dlq: cannot write the output: {error}");
            ExitCode::FAILURE
        }
        Err(CliError::Message(message)) => {
            note!("iggy-dlq: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(command: Command) -> Result<(), CliError> {
    match command {
        Command::Run { config } => {
            let config = Config::load(&config).map_err(|e| e.to_string())?;
            let (stop_tx, stop) = watch::channel(false);
            tokio::spawn(async move {
                wait_for_signal().await;
                tracing::info!("stopping: finishing the batches under way, flushing the DLQs");
                let _ = stop_tx.send(true);
            });
            let report = iggy_dlq_runtime::app::run(config, stop)
                .await
                .map_err(|e| e.to_string())?;
            note!("{}", report.metrics.summary());
            for (key, producer) in &report.producers {
                if producer.spool_pending_bytes > 0 {
                    note!(
                        "connector {key}: {} bytes of dead letters remain in the spool for the next start",
                        producer.spool_pending_bytes
                    );
                }
            }
            if report.connector_errors.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "{} connector(s) stopped with an error",
                    report.connector_errors.len()
                )
                .into())
            }
        }
        Command::Check { config } => check(&config),
        Command::Demo {
            iggy,
            dir,
            messages,
            poison_every,
            plugin,
        } => {
            let iggy = iggy
                .map(|s| ConnectionSettings::from_connection_string(&s))
                .transpose()
                .map_err(|e| format!("--iggy: {e}"))?;
            let report = demo::run(DemoOptions {
                dir,
                messages,
                poison_every,
                plugin: plugin.unwrap_or_else(demo::default_plugin_path),
                iggy,
            })
            .await
            .map_err(|e| e.to_string())?;
            {
                use std::io::Write as _;
                write!(std::io::stdout().lock(), "{report}").map_err(CliError::Output)?;
            }
            Ok(())
        }
        Command::Stats { dlq } => {
            let records = read_dlq(&dlq).await?;
            let decoder = Decoder::new().validate(false);
            let mut counts: BTreeMap<(&'static str, String), usize> = BTreeMap::new();
            let (mut oldest, mut newest, mut undecodable) = (u64::MAX, 0, 0);
            for record in &records {
                let Ok(envelope) = decoder.decode(record.clone()) else {
                    undecodable += 1;
                    continue;
                };
                if let Some(f) = &envelope.failure {
                    let reason = format!(
                        "{} / {}",
                        f.stage()
                            .as_str_name()
                            .trim_start_matches("FAILURE_STAGE_")
                            .to_lowercase(),
                        f.code()
                            .as_str_name()
                            .trim_start_matches("ERROR_CODE_")
                            .to_lowercase()
                    );
                    *counts.entry(("stage / code", reason)).or_default() += 1;
                    if f.first_failed_at_micros > 0 {
                        oldest = oldest.min(f.first_failed_at_micros);
                    }
                    newest = newest.max(f.last_failed_at_micros);
                }
                if let Some(c) = &envelope.connector {
                    *counts.entry(("connector", c.key.clone())).or_default() += 1;
                }
                let origin = match &envelope.origin {
                    Some(Origin::Sink(o)) => format!("{}/{}", o.stream, o.topic),
                    Some(Origin::Source(o)) => format!("{} {}", o.system, o.resource),
                    None => "(none)".into(),
                };
                *counts.entry(("origin", origin)).or_default() += 1;
            }
            out!("{} dead letters", records.len());
            let mut heading = "";
            for ((group, value), n) in &counts {
                if *group != heading {
                    heading = group;
                    out!("\nby {group}:");
                }
                out!("  {n:>8}  {value}");
            }
            if newest > 0 {
                out!(
                    "\nfailures from {} to {} (microseconds since the epoch)",
                    oldest.min(newest),
                    newest
                );
            }
            if undecodable > 0 {
                out!("{undecodable} records do not decode as envelopes");
            }
            Ok(())
        }
        Command::Replay {
            dlq,
            to,
            to_stream,
            to_topic,
            partition,
            stages,
            codes,
            connector,
            origin,
            skip,
            limit,
            max_replays,
            new_ids,
            dry_run,
        } => {
            let origin = origin
                .map(|o| {
                    o.split_once('/')
                        .map(|(s, t)| (s.to_owned(), t.to_owned()))
                        .ok_or_else(|| format!("--origin `{o}`: expected STREAM/TOPIC"))
                })
                .transpose()?;
            let to = match to {
                Some(to) => to,
                None if dlq.source.starts_with("iggy://") => dlq.source.clone(),
                None if dry_run => String::new(),
                None => {
                    return Err(
                        "replaying from a DLQ file needs --to iggy://user:password@host:port"
                            .into(),
                    );
                }
            };
            let records = read_dlq(&dlq).await?;
            let filter = ReplayFilter {
                stages,
                codes,
                connector,
                origin,
                max_replays,
            };
            let destination = Destination {
                stream: to_stream,
                topic: to_topic,
                partition,
                new_ids,
            };
            let from = skip.min(records.len());
            let plan = replay::plan_from(from, &records[from..], &filter, &destination, limit);
            if dry_run {
                for planned in &plan.replays {
                    out!(
                        "{:>7}  -> {}/{} p{}  replay {}",
                        planned.dlq_index,
                        planned.stream,
                        planned.topic,
                        planned.partition_id,
                        planned.replay_count
                    );
                }
                out!("{} to replay (dry run: nothing sent)", plan.replays.len());
            } else if !plan.replays.is_empty() {
                let settings = ConnectionSettings::from_connection_string(&to)
                    .map_err(|e| format!("--to: {e}"))?;
                let connection = IggyConnection::connect_with_retries(&settings, 3)
                    .await
                    .map_err(|e| e.to_string())?;
                let report = replay::send(&connection, &plan).await;
                connection.close().await;
                let report = report.map_err(|e| e.to_string())?;
                for ((stream, topic, partition), n) in &report.sent {
                    out!("replayed {n} to {stream}/{topic} partition {partition}");
                }
            } else {
                out!("nothing to replay");
            }
            for (reason, n) in &plan.skipped {
                out!("skipped {n} that {reason}");
            }
            if plan.next_index > from {
                out!(
                    "read DLQ records {from} to {}; go on after them with --skip {}",
                    plan.next_index - 1,
                    plan.next_index
                );
            } else {
                out!("read no DLQ records; {} in all", records.len());
            }
            Ok(())
        }
        Command::Inspect { dlq, json, limit } => {
            let records = read_dlq(&dlq).await?;
            let decoder = Decoder::new().validate(false);
            for (offset, record) in records
                .into_iter()
                .enumerate()
                .take(limit.unwrap_or(usize::MAX))
            {
                match decoder.decode(record) {
                    Ok(envelope) if json => out!("{}", envelope.to_canonical_json()),
                    Ok(envelope) => out!("{offset:>7}  {}", one_line(&envelope)),
                    Err(error) => out!("{offset:>7}  undecodable: {error}"),
                }
            }
            Ok(())
        }
    }
}

/// `iggy-dlq check`: prints each connector, its plugin and its DLQ; fails
/// when the config does not load or a plugin does not, and warns about a
/// plugin that cannot dead-letter while a DLQ is configured.
fn check(path: &std::path::Path) -> Result<(), CliError> {
    use iggy_dlq_runtime::config::{ConnectorType, DlqTarget};
    use iggy_dlq_runtime::plugin::{SinkPlugin, SourcePlugin};

    let config = Config::load(path).map_err(|e| e.to_string())?;
    out!(
        "{}: Iggy at {}, instance {}, spool {}",
        path.display(),
        config.iggy.address,
        config.instance_id,
        config.spool_dir.display()
    );
    let mut failed = 0;
    for connector in &config.connectors {
        let (kind, loaded) = match connector.kind {
            ConnectorType::Sink => (
                "sink",
                SinkPlugin::load(&connector.path)
                    .map(|p| (p.version().to_owned(), p.supports_dlq())),
            ),
            ConnectorType::Source => (
                "source",
                SourcePlugin::load(&connector.path)
                    .map(|p| (p.version().to_owned(), p.supports_dlq())),
            ),
        };
        let streams: Vec<String> = connector
            .streams
            .iter()
            .flat_map(|s| {
                s.topics
                    .iter()
                    .chain(s.topic.iter())
                    .map(move |t| format!("{}/{t}", s.stream))
            })
            .collect();
        out!(
            "{kind} {} ({}): {}",
            connector.key,
            connector.name,
            streams.join(", ")
        );
        let dlq = connector.dlq.as_ref().map(|d| match &d.target {
            DlqTarget::Iggy { stream, topic } => format!("Iggy topic {stream}/{topic}"),
            DlqTarget::File(file) => format!("file {}", file.display()),
        });
        out!(
            "  dlq: {}",
            dlq.as_deref()
                .unwrap_or("none (failed messages are not dead-lettered)")
        );
        match loaded {
            Ok((version, supports_dlq)) => {
                out!(
                    "  plugin: {} {version}, {}",
                    connector.path.display(),
                    if supports_dlq {
                        "can dead-letter"
                    } else {
                        "cannot dead-letter (no iggy_*_set_dlq_callback)"
                    }
                );
                if dlq.is_some() && !supports_dlq {
                    out!(
                        "  warning: a DLQ is configured, but failures this plugin hides inside a \
                         successful call are lost"
                    );
                }
            }
            Err(error) => {
                failed += 1;
                out!("  plugin: {error}");
            }
        }
    }
    if failed > 0 {
        return Err(format!("{failed} plugin(s) cannot be loaded").into());
    }
    out!("ok: {} connector(s)", config.connectors.len());
    Ok(())
}

/// The records of a DLQ file (`PATH`, `file://PATH`) or topic (`iggy://...`).
async fn read_dlq(dlq: &DlqSource) -> Result<Vec<bytes::Bytes>, String> {
    let source = dlq.source.as_str();
    if source.starts_with("iggy://") {
        let (Some(stream), Some(topic)) = (&dlq.stream, &dlq.topic) else {
            return Err("an Iggy DLQ needs --stream and --topic".into());
        };
        let settings = ConnectionSettings::from_connection_string(source)?;
        let connection = IggyConnection::connect(&settings)
            .await
            .map_err(|e| e.to_string())?;
        read_all(&connection, stream, topic)
            .await
            .map_err(|e| e.to_string())
    } else {
        let path = PathBuf::from(source.strip_prefix("file://").unwrap_or(source));
        read_records(&path, 0, usize::MAX)
            .map(|(records, _)| records)
            .map_err(|e| e.to_string())
    }
}

fn one_line(envelope: &DlqEnvelope) -> String {
    let origin = match &envelope.origin {
        Some(Origin::Sink(o)) => {
            format!("{}/{} p{} @{}", o.stream, o.topic, o.partition_id, o.offset)
        }
        Some(Origin::Source(o)) => format!("{} {}", o.system, String::from_utf8_lossy(&o.position)),
        None => "(no origin)".into(),
    };
    let (stage, code, reason) = envelope.failure.as_ref().map_or(("?", "?", ""), |f| {
        (
            f.stage().as_str_name().trim_start_matches("FAILURE_STAGE_"),
            f.code().as_str_name().trim_start_matches("ERROR_CODE_"),
            f.reason.as_str(),
        )
    });
    format!("{origin}  {stage}/{code}  {reason}")
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
