//! `iggy-dlq`: the command line of the iggy-dlq runtime.
//!
//! - `iggy-dlq run --config FILE`: host the configured connectors.
//! - `iggy-dlq demo [--iggy iggy://user:password@host:port]`: the whole
//!   dead-letter path on a generated batch.
//! - `iggy-dlq inspect SOURCE`: print the dead letters of a DLQ file or topic.
//! - `iggy-dlq stats SOURCE`: count them by stage, code, connector and origin.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use iggy_dlq_envelope::{Decoder, DlqEnvelope, Origin};
use iggy_dlq_runtime::config::Config;
use iggy_dlq_runtime::demo::{self, DemoOptions};
use iggy_dlq_runtime::dlq::read_records;
use iggy_dlq_runtime::iggy_client::{ConnectionSettings, IggyConnection, read_all};
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
        /// The DLQ.
        source: String,
        /// Stream of an Iggy DLQ.
        #[arg(long)]
        stream: Option<String>,
        /// Topic of an Iggy DLQ.
        #[arg(long)]
        topic: Option<String>,
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
        /// The DLQ (as for `inspect`).
        source: String,
        /// Stream of an Iggy DLQ.
        #[arg(long)]
        stream: Option<String>,
        /// Topic of an Iggy DLQ.
        #[arg(long)]
        topic: Option<String>,
    },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("IGGY_DLQ_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("iggy-dlq: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("iggy-dlq: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(command: Command) -> Result<(), String> {
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
            eprintln!("{}", report.metrics.summary());
            for (key, producer) in &report.producers {
                if producer.spool_pending_bytes > 0 {
                    eprintln!(
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
                ))
            }
        }
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
            print!("{report}");
            Ok(())
        }
        Command::Stats {
            source,
            stream,
            topic,
        } => {
            let records = read_dlq(&source, stream, topic).await?;
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
            println!("{} dead letters", records.len());
            let mut heading = "";
            for ((group, value), n) in &counts {
                if *group != heading {
                    heading = group;
                    println!("\nby {group}:");
                }
                println!("  {n:>8}  {value}");
            }
            if newest > 0 {
                println!(
                    "\nfailures from {} to {} (microseconds since the epoch)",
                    oldest.min(newest),
                    newest
                );
            }
            if undecodable > 0 {
                println!("{undecodable} records do not decode as envelopes");
            }
            Ok(())
        }
        Command::Inspect {
            source,
            stream,
            topic,
            json,
            limit,
        } => {
            let records = read_dlq(&source, stream, topic).await?;
            let decoder = Decoder::new().validate(false);
            for (offset, record) in records
                .into_iter()
                .enumerate()
                .take(limit.unwrap_or(usize::MAX))
            {
                match decoder.decode(record) {
                    Ok(envelope) if json => println!("{}", envelope.to_canonical_json()),
                    Ok(envelope) => println!("{offset:>7}  {}", one_line(&envelope)),
                    Err(error) => println!("{offset:>7}  undecodable: {error}"),
                }
            }
            Ok(())
        }
    }
}

/// The records of a DLQ file (`PATH`, `file://PATH`) or topic (`iggy://...`).
async fn read_dlq(
    source: &str,
    stream: Option<String>,
    topic: Option<String>,
) -> Result<Vec<bytes::Bytes>, String> {
    if source.starts_with("iggy://") {
        let (Some(stream), Some(topic)) = (stream, topic) else {
            return Err("an Iggy DLQ needs --stream and --topic".into());
        };
        let settings = ConnectionSettings::from_connection_string(source)?;
        let connection = IggyConnection::connect(&settings)
            .await
            .map_err(|e| e.to_string())?;
        read_all(&connection, &stream, &topic)
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
