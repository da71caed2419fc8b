//! Fixture source of the SDK tests: reads a text file line by line; a line
//! that is JSON is produced as is, a `key=value` line as `{"key":"value"}`,
//! and any other line is dead-lettered with its position (`line:N`). Its
//! state is the number of lines already produced, committed on Ack.
//!
//! Config: `path`, optional `batch_size` (default 10), `stream` and `topic`
//! (the target named in dead letters).

use iggy_dlq_sdk::abi::{BatchResult, ConnectorState, ProducedMessage, ProducedMessages, Schema};
use iggy_dlq_sdk::{DlqWriter, Error, Result, Source, SourceOrigin};

#[derive(Debug, serde::Deserialize)]
struct Config {
    path: String,
    #[serde(default = "default_batch_size")]
    batch_size: usize,
    #[serde(default)]
    stream: String,
    #[serde(default)]
    topic: String,
}

fn default_batch_size() -> usize {
    10
}

struct LinesSource {
    config: Config,
    /// Lines produced and acknowledged.
    committed: u64,
    /// Lines produced in the batch in flight.
    staged: u64,
}

fn encode_state(lines: u64) -> ConnectorState {
    ConnectorState(lines.to_le_bytes().to_vec())
}

fn decode_state(state: &ConnectorState) -> Result<u64> {
    let bytes: [u8; 8] = state
        .0
        .as_slice()
        .try_into()
        .map_err(|_| Error::connector("saved state is not 8 bytes"))?;
    Ok(u64::from_le_bytes(bytes))
}

fn convert(line: &str) -> Option<Vec<u8>> {
    if serde_json::from_str::<serde_json::Value>(line).is_ok() {
        return Some(line.as_bytes().to_vec());
    }
    let (key, value) = line.split_once('=')?;
    let key = key.trim();
    if key.is_empty() {
        return None;
    }
    Some(
        serde_json::json!({ key: value.trim() })
            .to_string()
            .into_bytes(),
    )
}

impl Source for LinesSource {
    type Config = Config;

    fn open(_id: u32, config: Config, state: Option<ConnectorState>) -> Result<Self> {
        let committed = state.as_ref().map(decode_state).transpose()?.unwrap_or(0);
        Ok(LinesSource {
            config,
            committed,
            staged: committed,
        })
    }

    fn poll(&mut self, dlq: &DlqWriter) -> Result<ProducedMessages> {
        let text = std::fs::read_to_string(&self.config.path)
            .map_err(|e| Error::connector(format!("cannot read {}: {e}", self.config.path)))?;
        let mut messages = Vec::new();
        let mut next = self.committed;
        for (index, line) in text
            .lines()
            .enumerate()
            .skip(self.committed as usize)
            .take(self.config.batch_size)
        {
            let number = index as u64 + 1;
            match convert(line) {
                Some(payload) => messages.push(ProducedMessage::new(payload)),
                None => {
                    let mut origin = SourceOrigin::new(
                        "file",
                        format!("line:{number}").into_bytes(),
                        self.config.stream.clone(),
                        self.config.topic.clone(),
                    );
                    origin.resource = self.config.path.clone();
                    let reason = format!("line {number} is neither JSON nor key=value");
                    if let Err(err) = dlq.send_record(origin, line.as_bytes(), Schema::Text, reason)
                        && err.is_retryable()
                    {
                        // Not dead-lettered yet: produce nothing, try again.
                        return Err(err);
                    }
                }
            }
            next = number;
        }
        if next == self.committed {
            return Ok(ProducedMessages {
                schema: Schema::Json,
                messages: Vec::new(),
                state: None,
            });
        }
        self.staged = next;
        Ok(ProducedMessages {
            schema: Schema::Json,
            messages,
            state: Some(encode_state(next)),
        })
    }

    fn on_batch_result(&mut self, result: BatchResult) -> Result<()> {
        match result {
            BatchResult::Ack => self.committed = self.staged,
            BatchResult::Nack => self.staged = self.committed,
        }
        Ok(())
    }

    fn idle_interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis(20)
    }
}

iggy_dlq_sdk::source_connector!(LinesSource);
