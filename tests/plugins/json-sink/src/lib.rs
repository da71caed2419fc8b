//! Fixture sink of the SDK tests: writes each valid JSON message to a
//! JSON-lines file in one batch write per batch, and dead-letters each
//! message that is not JSON or lacks the configured required field.
//!
//! Config: `path` (the JSON-lines target), optional `required_field`,
//! `batch_log` (a file that gets one line per batch write: how many lines it
//! wrote), `report_path` (the outcome of the last batch, as JSON),
//! `panic_on_consume` (to test that a panic does not cross the boundary) and
//! `stall_at_offset` with `stall_ms` and `stall_marker`: the batch holding
//! that offset first creates the marker file and then waits `stall_ms`
//! before it does anything, each time it is consumed (to take a server
//! away while a batch is in the plugin).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::Mutex;

use iggy_dlq_sdk::abi::{MessagesMetadata, RawMessage, TopicMetadata};
use iggy_dlq_sdk::{DlqWriter, Error, ErrorCode, Failure, FailureStage, Result, Sink};

#[derive(Debug, serde::Deserialize)]
struct Config {
    path: String,
    required_field: Option<String>,
    batch_log: Option<String>,
    report_path: Option<String>,
    #[serde(default)]
    panic_on_consume: bool,
    stall_at_offset: Option<u64>,
    #[serde(default)]
    stall_ms: u64,
    stall_marker: Option<String>,
}

struct JsonSink {
    id: u32,
    config: Config,
}

/// Each instance's writer, kept past close to show that a kept writer
/// cannot reach a closed runtime.
static KEPT_WRITERS: Mutex<BTreeMap<u32, DlqWriter>> = Mutex::new(BTreeMap::new());

fn append(path: &str, bytes: &[u8]) -> Result<()> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(bytes))
        .map_err(|e| Error::connector(format!("cannot write {path}: {e}")))
}

impl JsonSink {
    fn check(&self, message: &RawMessage) -> std::result::Result<String, Failure> {
        let value: serde_json::Value = serde_json::from_slice(&message.payload).map_err(|e| {
            Failure::new(
                FailureStage::ConnectorProcess,
                ErrorCode::MalformedPayload,
                format!("not JSON: {e}"),
            )
        })?;
        if let Some(field) = &self.config.required_field
            && value.get(field).is_none()
        {
            return Err(Failure::new(
                FailureStage::ConnectorProcess,
                ErrorCode::MissingField,
                format!("required field `{field}` is missing"),
            ));
        }
        Ok(value.to_string())
    }
}

impl Sink for JsonSink {
    type Config = Config;

    fn open(id: u32, config: Config) -> Result<Self> {
        Ok(JsonSink { id, config })
    }

    fn consume(
        &mut self,
        topic: &TopicMetadata,
        metadata: &MessagesMetadata,
        messages: Vec<RawMessage>,
        dlq: &DlqWriter,
    ) -> Result<()> {
        assert!(!self.config.panic_on_consume, "json-sink told to panic");
        if let Some(offset) = self.config.stall_at_offset
            && messages.iter().any(|m| m.offset == offset)
        {
            if let Some(marker) = &self.config.stall_marker {
                append(marker, b"stalled\n")?;
            }
            std::thread::sleep(std::time::Duration::from_millis(self.config.stall_ms));
        }
        KEPT_WRITERS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(self.id, dlq.clone());
        let batch = dlq.partition(topic, metadata, &messages, |m| self.check(m));
        if !batch.succeeded.is_empty() {
            let mut lines = batch.succeeded.join("\n");
            lines.push('\n');
            append(&self.config.path, lines.as_bytes())?;
            if let Some(log) = &self.config.batch_log {
                append(log, format!("{}\n", batch.succeeded.len()).as_bytes())?;
            }
        }
        if let Some(report) = &self.config.report_path {
            let report_json = serde_json::json!({
                "written": batch.succeeded.len(),
                "dead_lettered": batch.dead_lettered,
                "not_configured": batch
                    .undelivered
                    .iter()
                    .filter(|(_, e)| matches!(e, Error::NotConfigured))
                    .count(),
                "undelivered_offsets": batch.undelivered.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
                "lost_count": dlq.lost_count(),
                "sent_count": dlq.sent_count(),
            });
            std::fs::write(report, report_json.to_string())
                .map_err(|e| Error::connector(format!("cannot write {report}: {e}")))?;
        }
        Ok(())
    }
}

iggy_dlq_sdk::sink_connector!(JsonSink);

/// Test hook: sends one dead letter through the writer kept from instance
/// `id`'s last batch. Returns 0 when the runtime took it, the DLQ status code of a
/// refusal, 100 when the writer refused because the connector is closed,
/// 101 when no writer was kept, 102 for any other error.
#[unsafe(no_mangle)]
extern "C" fn json_sink_send_with_kept_writer(id: u32) -> i32 {
    let kept = KEPT_WRITERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&id)
        .cloned();
    let Some(writer) = kept else {
        return 101;
    };
    let topic = TopicMetadata {
        stream: "s".into(),
        topic: "t".into(),
    };
    let message = RawMessage {
        id: 1,
        offset: 0,
        checksum: 0,
        timestamp: 0,
        origin_timestamp: 0,
        headers: Vec::new(),
        payload: b"late".to_vec(),
    };
    match writer.send(&topic, 1, &message, "sent after close") {
        Ok(()) => 0,
        Err(Error::Closed) => 100,
        Err(err) => err.dlq_status().map_or(102, i32::from),
    }
}
