//! Configuration, in TOML, shaped like the upstream connectors runtime's: a
//! runtime file with an `[iggy]` section, and one file per connector, with a
//! `[dlq]` section added.
//!
//! Values of the form `${NAME}` are read from environment variable `NAME`,
//! so that secrets need not be written into files. Credentials never appear
//! in logs or `Debug` output.

use std::path::{Path, PathBuf};
use std::time::Duration;

use iggy_dlq_envelope::{PayloadPolicy, PayloadSchema};
use serde::Deserialize;

use crate::iggy_client::{ConnectionSettings, MAX_PAYLOAD_SIZE};

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid TOML, or has a key of the wrong type or an
    /// unknown key.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with the key and position.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("config file {path}: `{key}`: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// What is wrong.
        problem: String,
    },
}

/// The runtime's configuration file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RuntimeFile {
    /// The Iggy server.
    #[serde(default)]
    pub iggy: IggySection,
    /// Runtime settings.
    #[serde(default)]
    pub runtime: RuntimeSection,
    /// Where connector files are.
    #[serde(default)]
    pub connectors: ConnectorsSection,
}

/// `[iggy]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IggySection {
    /// `host:port`.
    #[serde(default = "default_address")]
    pub address: String,
    /// User name.
    #[serde(default)]
    pub username: String,
    /// Password (use `${ENV_VAR}`).
    #[serde(default)]
    pub password: String,
    /// Personal access token, instead of user name and password.
    #[serde(default)]
    pub token: String,
    /// TLS.
    #[serde(default)]
    pub tls: TlsSection,
}

impl Default for IggySection {
    fn default() -> Self {
        IggySection {
            address: default_address(),
            username: String::new(),
            password: String::new(),
            token: String::new(),
            tls: TlsSection::default(),
        }
    }
}

impl std::fmt::Debug for IggySection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IggySection")
            .field("address", &self.address)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("token", &"<redacted>")
            .field("tls", &self.tls)
            .finish()
    }
}

fn default_address() -> String {
    "localhost:8090".into()
}

/// `[iggy.tls]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// Use TLS.
    #[serde(default)]
    pub enabled: bool,
    /// CA certificate.
    #[serde(default)]
    pub ca_file: String,
    /// Server name.
    #[serde(default)]
    pub domain: String,
}

/// `[runtime]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSection {
    /// This runtime's id in envelopes; defaults to `hostname-pid`.
    #[serde(default)]
    pub instance_id: String,
    /// Where outage spools live; default `local_state/dlq-spool` next to
    /// the config file.
    #[serde(default)]
    pub spool_dir: Option<PathBuf>,
    /// Serve Prometheus metrics on this address (`/metrics`).
    #[serde(default)]
    pub metrics_address: Option<String>,
}

/// `[connectors]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ConnectorsSection {
    /// Directory of connector files (`*.toml`), relative to the config file.
    #[serde(default)]
    pub config_dir: Option<PathBuf>,
}

/// Whether a connector is a sink or a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorType {
    /// Consumes from Iggy.
    Sink,
    /// Produces to Iggy.
    Source,
}

/// One connector file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorFile {
    /// Sink or source.
    #[serde(rename = "type")]
    pub kind: ConnectorType,
    /// Unique key.
    pub key: String,
    /// Whether to run it.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Plugin library; the platform's extension is added when missing.
    pub path: PathBuf,
    /// Streams to consume (sinks) or produce to (sources).
    #[serde(default)]
    pub streams: Vec<StreamSection>,
    /// The plugin's own configuration, handed to it as JSON.
    #[serde(default)]
    pub plugin_config: Option<toml::Value>,
    /// The dead-letter queue; absent means no DLQ.
    #[serde(default)]
    pub dlq: Option<DlqSection>,
    /// Accepted for compatibility with upstream connector files.
    #[serde(default)]
    pub version: Option<u32>,
}

fn yes() -> bool {
    true
}

/// `[[streams]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSection {
    /// Stream name.
    pub stream: String,
    /// Topics to consume (sinks).
    #[serde(default)]
    pub topics: Vec<String>,
    /// Topic to produce to (sources).
    #[serde(default)]
    pub topic: Option<String>,
    /// Payload schema.
    #[serde(default = "default_schema")]
    pub schema: String,
    /// Messages per poll.
    #[serde(default = "default_batch_length")]
    pub batch_length: u32,
    /// Pause between empty polls.
    #[serde(default = "default_poll_interval")]
    pub poll_interval: String,
    /// Consumer group; default `iggy-dlq-sink-{key}`.
    #[serde(default)]
    pub consumer_group: Option<String>,
}

fn default_schema() -> String {
    "json".into()
}
fn default_batch_length() -> u32 {
    100
}
fn default_poll_interval() -> String {
    "5ms".into()
}

/// What to do when `consume()` fails for a whole batch, after its retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BatchFailurePolicy {
    /// Dead-letter every message of the batch (stage "connector write")
    /// and go on. The default: the DLQ exists so that a failure never
    /// stalls the pipeline and nothing is lost.
    #[default]
    DeadLetter,
    /// Stop the connector without committing: the batch is consumed again
    /// at the next start.
    Stop,
}

/// `[dlq]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DlqSection {
    /// `iggy` (the stream and topic below) or `file://PATH`.
    #[serde(default = "default_target")]
    pub target: String,
    /// DLQ stream.
    #[serde(default)]
    pub stream: String,
    /// DLQ topic.
    #[serde(default)]
    pub topic: String,
    /// Partitions of a created DLQ topic.
    #[serde(default = "one")]
    pub partitions: u32,
    /// Create the stream and topic when missing.
    #[serde(default = "yes")]
    pub create: bool,
    /// The DLQ topic's maximum message size.
    #[serde(default = "default_max_message_size")]
    pub max_message_size: usize,
    /// `truncate` (default), `keep` or `drop`.
    #[serde(default = "default_payload_policy")]
    pub payload_policy: String,
    /// `dead_letter` (default) or `stop`.
    #[serde(default)]
    pub on_batch_failure: BatchFailurePolicy,
    /// Retries of a failed `consume()`.
    #[serde(default = "default_batch_retries")]
    pub batch_retries: u32,
    /// Backoff before the first retry of a failed `consume()`; doubles.
    #[serde(default = "default_retry_backoff")]
    pub retry_backoff: String,
    /// Dead letters per send to Iggy.
    #[serde(default = "default_dlq_batch")]
    pub batch_length: usize,
    /// How long to wait for more dead letters before a send.
    #[serde(default = "default_linger")]
    pub linger: String,
    /// Queue between plugin and producer.
    #[serde(default = "default_queue")]
    pub queue_capacity: usize,
    /// How long one send to the DLQ topic may wait for a connection or an
    /// acknowledgement before it counts as failed.
    #[serde(default = "default_send_timeout")]
    pub send_timeout: String,
    /// Retries of a failed send before the dead letters go to the spool.
    #[serde(default = "default_send_retries")]
    pub send_retries: u32,
}

fn default_target() -> String {
    "iggy".into()
}
fn one() -> u32 {
    1
}
fn default_max_message_size() -> usize {
    1024 * 1024
}
fn default_payload_policy() -> String {
    "truncate".into()
}
fn default_batch_retries() -> u32 {
    3
}
fn default_retry_backoff() -> String {
    "200ms".into()
}
fn default_dlq_batch() -> usize {
    1000
}
fn default_linger() -> String {
    "5ms".into()
}
fn default_queue() -> usize {
    10_000
}
fn default_send_timeout() -> String {
    "5s".into()
}
fn default_send_retries() -> u32 {
    3
}

/// Where a connector's dead letters go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DlqTarget {
    /// An Iggy topic.
    Iggy {
        /// Stream.
        stream: String,
        /// Topic.
        topic: String,
    },
    /// The embedded file target.
    File(PathBuf),
}

/// A connector's DLQ, checked.
#[derive(Debug, Clone)]
pub struct DlqConfig {
    /// Where.
    pub target: DlqTarget,
    /// Partitions of a created topic.
    pub partitions: u32,
    /// Create when missing.
    pub create: bool,
    /// Maximum message size.
    pub max_message_size: usize,
    /// Payload policy.
    pub payload_policy: PayloadPolicy,
    /// Whole-batch failure policy.
    pub on_batch_failure: BatchFailurePolicy,
    /// Retries of a failed `consume()`.
    pub batch_retries: u32,
    /// First backoff.
    pub retry_backoff: Duration,
    /// Producer batch length.
    pub batch_length: usize,
    /// Producer linger.
    pub linger: Duration,
    /// Queue capacity.
    pub queue_capacity: usize,
    /// How long one send to the DLQ topic may wait.
    pub send_timeout: Duration,
    /// Retries of a failed send before spooling.
    pub send_retries: u32,
}

/// A connector, checked.
#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    /// The file it came from.
    pub file: PathBuf,
    /// Sink or source.
    pub kind: ConnectorType,
    /// Key.
    pub key: String,
    /// Name.
    pub name: String,
    /// Plugin library.
    pub path: PathBuf,
    /// Streams.
    pub streams: Vec<StreamSection>,
    /// Plugin configuration as JSON.
    pub plugin_config: serde_json::Value,
    /// DLQ.
    pub dlq: Option<DlqConfig>,
    /// Poll interval of the first stream.
    pub poll_interval: Duration,
}

/// The whole configuration, checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// How to reach Iggy.
    pub iggy: ConnectionSettings,
    /// This runtime's id.
    pub instance_id: String,
    /// Spool directory.
    pub spool_dir: PathBuf,
    /// Metrics address.
    pub metrics_address: Option<String>,
    /// Enabled connectors.
    pub connectors: Vec<ConnectorConfig>,
}

/// Parses `5ms`, `2s`, `1m`, `250us`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{text}` has no unit (use ms, s or m)"))?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` does not start with a number"))?;
    match unit {
        "us" => Ok(Duration::from_micros(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!(
            "`{text}`: unknown unit `{unit}` (use us, ms, s or m)"
        )),
    }
}

/// The payload schema named `name` in a connector file.
pub fn payload_schema(name: &str) -> Option<PayloadSchema> {
    Some(match name {
        "json" => PayloadSchema::Json,
        "raw" => PayloadSchema::Raw,
        "text" => PayloadSchema::Text,
        "proto" => PayloadSchema::Proto,
        "flatbuffer" => PayloadSchema::Flatbuffer,
        "avro" => PayloadSchema::Avro,
        _ => return None,
    })
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })
}

fn parse<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string().trim_end().to_owned(),
    })
}

fn expand_env(path: &Path, key: &str, value: &str) -> Result<String, ConfigError> {
    match value.strip_prefix("${").and_then(|v| v.strip_suffix('}')) {
        Some(var) => std::env::var(var).map_err(|_| ConfigError::Invalid {
            path: path.to_owned(),
            key: key.to_owned(),
            problem: format!("environment variable `{var}` is not set"),
        }),
        None => Ok(value.to_owned()),
    }
}

fn invalid(path: &Path, key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        path: path.to_owned(),
        key: key.to_owned(),
        problem: problem.into(),
    }
}

impl Config {
    /// Loads the runtime file at `path` and the connector files it points to.
    ///
    /// # Errors
    ///
    /// The first problem found, naming the file and the key.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = read(path)?;
        let file: RuntimeFile = parse(path, &text)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let iggy = ConnectionSettings {
            address: expand_env(path, "iggy.address", &file.iggy.address)?,
            username: expand_env(path, "iggy.username", &file.iggy.username)?,
            password: expand_env(path, "iggy.password", &file.iggy.password)?,
            token: expand_env(path, "iggy.token", &file.iggy.token)?,
            tls: file.iggy.tls.enabled,
            tls_ca_file: file.iggy.tls.ca_file.clone(),
            tls_domain: file.iggy.tls.domain.clone(),
        };
        let instance_id = if file.runtime.instance_id.is_empty() {
            default_instance_id()
        } else {
            file.runtime.instance_id.clone()
        };
        let spool_dir = base.join(
            file.runtime
                .spool_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("local_state/dlq-spool")),
        );
        let mut connectors = Vec::new();
        if let Some(dir) = &file.connectors.config_dir {
            let dir = base.join(dir);
            let entries = std::fs::read_dir(&dir).map_err(|source| ConfigError::Read {
                path: dir.clone(),
                source,
            })?;
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            files.sort();
            for file in files {
                let connector = load_connector(&file, base)?;
                if let Some(connector) = connector {
                    if connectors
                        .iter()
                        .any(|c: &ConnectorConfig| c.key == connector.key)
                    {
                        return Err(invalid(
                            &file,
                            "key",
                            format!("`{}` is used by another connector", connector.key),
                        ));
                    }
                    connectors.push(connector);
                }
            }
        }
        let needs_credentials = connectors.iter().any(|c| {
            c.kind == ConnectorType::Source
                || !c.streams.is_empty()
                || matches!(
                    c.dlq.as_ref().map(|d| &d.target),
                    Some(DlqTarget::Iggy { .. })
                )
        });
        if needs_credentials
            && iggy.token.is_empty()
            && (iggy.username.is_empty() || iggy.password.is_empty())
        {
            return Err(invalid(
                path,
                "iggy",
                "give `username` and `password` (or `token`); `${ENV_VAR}` reads them from the environment",
            ));
        }
        Ok(Config {
            iggy,
            instance_id,
            spool_dir,
            metrics_address: file.runtime.metrics_address,
            connectors,
        })
    }
}

fn default_instance_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into());
    format!("{host}-{}", std::process::id())
}

/// Loads one connector file; `None` when it is disabled.
///
/// # Errors
///
/// As [`Config::load`].
pub fn load_connector(path: &Path, base: &Path) -> Result<Option<ConnectorConfig>, ConfigError> {
    let text = read(path)?;
    let file: ConnectorFile = parse(path, &text)?;
    if !file.enabled {
        return Ok(None);
    }
    if file.key.is_empty() {
        return Err(invalid(path, "key", "must not be empty"));
    }
    let mut plugin_path = base.join(&file.path);
    if plugin_path.extension().is_none() {
        plugin_path.set_extension(std::env::consts::DLL_EXTENSION);
    }
    for (i, stream) in file.streams.iter().enumerate() {
        let key = |k: &str| format!("streams[{i}].{k}");
        if stream.stream.is_empty() {
            return Err(invalid(path, &key("stream"), "must not be empty"));
        }
        match file.kind {
            ConnectorType::Sink if stream.topics.is_empty() => {
                return Err(invalid(
                    path,
                    &key("topics"),
                    "a sink needs at least one topic",
                ));
            }
            ConnectorType::Source if stream.topic.is_none() => {
                return Err(invalid(
                    path,
                    &key("topic"),
                    "a source needs the topic it produces to",
                ));
            }
            _ => {}
        }
        payload_schema(&stream.schema).ok_or_else(|| {
            invalid(
                path,
                &key("schema"),
                format!(
                    "unknown schema `{}` (json, raw, text, proto, flatbuffer, avro)",
                    stream.schema
                ),
            )
        })?;
        parse_duration(&stream.poll_interval)
            .map_err(|p| invalid(path, &key("poll_interval"), p))?;
        if stream.batch_length == 0 {
            return Err(invalid(path, &key("batch_length"), "must be at least 1"));
        }
    }
    let poll_interval = file
        .streams
        .first()
        .map(|s| parse_duration(&s.poll_interval).expect("checked above"))
        .unwrap_or(Duration::from_millis(5));
    let dlq = file
        .dlq
        .as_ref()
        .map(|d| dlq_config(path, base, d))
        .transpose()?;
    let plugin_config = match &file.plugin_config {
        Some(value) => serde_json::to_value(value)
            .map_err(|e| invalid(path, "plugin_config", e.to_string()))?,
        None => serde_json::Value::Object(Default::default()),
    };
    Ok(Some(ConnectorConfig {
        file: path.to_owned(),
        kind: file.kind,
        name: if file.name.is_empty() {
            file.key.clone()
        } else {
            file.name.clone()
        },
        key: file.key,
        path: plugin_path,
        streams: file.streams,
        plugin_config,
        dlq,
        poll_interval,
    }))
}

fn dlq_config(path: &Path, base: &Path, d: &DlqSection) -> Result<DlqConfig, ConfigError> {
    let target = if let Some(file) = d.target.strip_prefix("file://") {
        if file.is_empty() {
            return Err(invalid(path, "dlq.target", "file:// needs a path"));
        }
        DlqTarget::File(base.join(file))
    } else if d.target == "iggy" {
        if d.stream.is_empty() {
            return Err(invalid(path, "dlq.stream", "an Iggy DLQ needs a stream"));
        }
        if d.topic.is_empty() {
            return Err(invalid(path, "dlq.topic", "an Iggy DLQ needs a topic"));
        }
        DlqTarget::Iggy {
            stream: d.stream.clone(),
            topic: d.topic.clone(),
        }
    } else {
        return Err(invalid(
            path,
            "dlq.target",
            format!("`{}` is neither `iggy` nor `file://PATH`", d.target),
        ));
    };
    if d.max_message_size < 256 || d.max_message_size > MAX_PAYLOAD_SIZE {
        return Err(invalid(
            path,
            "dlq.max_message_size",
            format!("{} is outside 256..={MAX_PAYLOAD_SIZE}", d.max_message_size),
        ));
    }
    let payload_policy = match d.payload_policy.as_str() {
        "truncate" => PayloadPolicy::Truncate,
        "keep" => PayloadPolicy::Keep,
        "drop" => PayloadPolicy::Drop,
        other => {
            return Err(invalid(
                path,
                "dlq.payload_policy",
                format!("`{other}` is not truncate, keep or drop"),
            ));
        }
    };
    if d.partitions == 0 {
        return Err(invalid(path, "dlq.partitions", "must be at least 1"));
    }
    if d.batch_length == 0 || d.queue_capacity == 0 {
        return Err(invalid(
            path,
            "dlq.batch_length",
            "batch_length and queue_capacity must be at least 1",
        ));
    }
    let send_timeout =
        parse_duration(&d.send_timeout).map_err(|p| invalid(path, "dlq.send_timeout", p))?;
    if send_timeout.is_zero() {
        return Err(invalid(path, "dlq.send_timeout", "must be longer than 0"));
    }
    Ok(DlqConfig {
        target,
        partitions: d.partitions,
        create: d.create,
        max_message_size: d.max_message_size,
        payload_policy,
        on_batch_failure: d.on_batch_failure,
        batch_retries: d.batch_retries,
        retry_backoff: parse_duration(&d.retry_backoff)
            .map_err(|p| invalid(path, "dlq.retry_backoff", p))?,
        batch_length: d.batch_length,
        linger: parse_duration(&d.linger).map_err(|p| invalid(path, "dlq.linger", p))?,
        queue_capacity: d.queue_capacity,
        send_timeout,
        send_retries: d.send_retries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    const SINK: &str = r#"
type = "sink"
key = "orders"
path = "plugins/libjson_sink"
[[streams]]
stream = "shop"
topics = ["orders"]
[plugin_config]
target = "out.jsonl"
[dlq]
stream = "dlq"
topic = "orders-dlq"
"#;

    #[test]
    fn a_full_config_loads_with_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let main = write(
            dir.path(),
            "config.toml",
            "[iggy]\naddress = \"127.0.0.1:8090\"\nusername = \"u\"\npassword = \"${HOME}\"\n[connectors]\nconfig_dir = \"connectors\"\n",
        );
        write(dir.path(), "connectors/orders.toml", SINK);
        let home = std::env::var("HOME").unwrap();
        let config = Config::load(&main).unwrap();
        assert_eq!(config.iggy.password, home);
        assert!(
            !format!("{config:?}").contains(&format!("{home:?}")),
            "the password leaks into Debug"
        );
        let c = &config.connectors[0];
        assert_eq!(c.plugin_config["target"], "out.jsonl");
        let dlq = c.dlq.as_ref().unwrap();
        assert_eq!(
            dlq.target,
            DlqTarget::Iggy {
                stream: "dlq".into(),
                topic: "orders-dlq".into()
            }
        );
        assert_eq!(dlq.payload_policy, PayloadPolicy::Truncate);
        assert_eq!(dlq.on_batch_failure, BatchFailurePolicy::DeadLetter);
        assert_eq!(dlq.send_timeout, Duration::from_secs(5));
        assert_eq!(dlq.send_retries, 3);
        assert_eq!(c.path.extension().unwrap(), std::env::consts::DLL_EXTENSION);
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let bad = write(
            dir.path(),
            "bad.toml",
            &SINK.replace("topic = \"orders-dlq\"", "topic = \"\""),
        );
        let err = load_connector(&bad, dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("bad.toml") && err.contains("dlq.topic"),
            "{err}"
        );

        let typo = write(
            dir.path(),
            "typo.toml",
            &SINK
                .replace("partitions", "partitons")
                .replace("[dlq]", "[dlq]\npartitons = 2"),
        );
        let err = load_connector(&typo, dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("typo.toml") && err.contains("partitons"),
            "{err}"
        );

        let policy = write(
            dir.path(),
            "policy.toml",
            &SINK.replace("[dlq]", "[dlq]\npayload_policy = \"shrink\""),
        );
        let err = load_connector(&policy, dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("dlq.payload_policy") && err.contains("shrink"),
            "{err}"
        );

        let size = write(
            dir.path(),
            "size.toml",
            &SINK.replace("[dlq]", "[dlq]\nmax_message_size = 10"),
        );
        let err = load_connector(&size, dir.path()).unwrap_err().to_string();
        assert!(err.contains("dlq.max_message_size"), "{err}");

        for (value, why) in [("\"0s\"", "longer than 0"), ("\"soon\"", "soon")] {
            let timeout = write(
                dir.path(),
                "timeout.toml",
                &SINK.replace("[dlq]", &format!("[dlq]\nsend_timeout = {value}")),
            );
            let err = load_connector(&timeout, dir.path())
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("timeout.toml")
                    && err.contains("dlq.send_timeout")
                    && err.contains(why),
                "{err}"
            );
        }
    }

    #[test]
    fn a_missing_secret_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let main = write(
            dir.path(),
            "c.toml",
            "[iggy]\nusername = \"u\"\npassword = \"${IGGY_DLQ_SURELY_UNSET}\"\n",
        );
        let err = Config::load(&main).unwrap_err().to_string();
        assert!(
            err.contains("iggy.password") && err.contains("IGGY_DLQ_SURELY_UNSET"),
            "{err}"
        );
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("5ms").unwrap(), Duration::from_millis(5));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5h").is_err());
    }
}
