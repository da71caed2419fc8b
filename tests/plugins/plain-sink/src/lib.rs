//! Fixture sink of the SDK tests that knows nothing of DLQs: it writes every
//! payload as one line to `path`, and its plugin does not export
//! `iggy_sink_set_dlq_callback`.

use std::io::Write as _;

use iggy_dlq_sdk::abi::{MessagesMetadata, RawMessage, TopicMetadata};
use iggy_dlq_sdk::{DlqWriter, Error, Result, Sink};

#[derive(Debug, serde::Deserialize)]
struct Config {
    path: String,
}

struct PlainSink {
    path: String,
}

impl Sink for PlainSink {
    type Config = Config;

    fn open(_id: u32, config: Config) -> Result<Self> {
        Ok(PlainSink { path: config.path })
    }

    fn consume(
        &mut self,
        _topic: &TopicMetadata,
        _metadata: &MessagesMetadata,
        messages: Vec<RawMessage>,
        _dlq: &DlqWriter,
    ) -> Result<()> {
        let mut lines = Vec::new();
        for message in &messages {
            lines.extend_from_slice(&message.payload);
            lines.push(b'\n');
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut file| file.write_all(&lines))
            .map_err(|e| Error::connector(format!("cannot write {}: {e}", self.path)))
    }
}

iggy_dlq_sdk::sink_connector!(PlainSink, dlq = false);
