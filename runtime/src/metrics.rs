//! Counters per connector, printed on shutdown and exposed in Prometheus
//! text format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use iggy_dlq_envelope::{ErrorCode, FailureStage};

/// The counters of one connector. Cheap to update from any thread.
#[derive(Debug, Default)]
pub struct ConnectorMetrics {
    /// Messages polled from Iggy (sinks) or received from the plugin (sources).
    pub consumed: AtomicU64,
    /// Messages the plugin accepted without dead-lettering (sinks), or
    /// produced to the target topic (sources).
    pub written: AtomicU64,
    /// Dead letters accepted by the DLQ route.
    pub dead_lettered: AtomicU64,
    /// Dead letters confirmed by the DLQ target (Iggy or file).
    pub dlq_confirmed: AtomicU64,
    /// Retries of DLQ sends to Iggy.
    pub dlq_send_retries: AtomicU64,
    /// Dead letters written to the local spool during an outage.
    pub spooled: AtomicU64,
    /// Dead letters drained from the spool to Iggy.
    pub drained: AtomicU64,
    /// Envelopes the DLQ callback refused as invalid or too large.
    pub dlq_refused: AtomicU64,
    /// Messages handed to a plugin that has no DLQ support: a failure the
    /// plugin hides inside a successful `consume()` is lost, and the runtime
    /// cannot see it.
    pub unprotected: AtomicU64,
    /// Batches whose `consume()` failed as a whole, per attempt.
    pub batch_failures: AtomicU64,
    /// Offsets committed.
    pub commits: AtomicU64,
    /// Iggy requests of a sink that failed or got no answer in time; the
    /// sink connected afresh and rejoined its consumer groups after each.
    pub iggy_failures: AtomicU64,
    /// Consumer groups recreated because the server kept members of
    /// sessions that no longer exist (see
    /// [`IggyConnection::join_group`](crate::iggy_client::IggyConnection::join_group)).
    pub group_repairs: AtomicU64,
    by_reason: Mutex<BTreeMap<(i32, i32), u64>>,
}

impl ConnectorMetrics {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Counts one dead letter by its stage and code.
    pub fn count_dead_letter(&self, stage: i32, code: i32) {
        Self::add(&self.dead_lettered, 1);
        let mut by_reason = self.by_reason.lock().unwrap_or_else(|e| e.into_inner());
        *by_reason.entry((stage, code)).or_default() += 1;
    }

    /// Dead letters by (stage, code), with their protobuf names.
    pub fn dead_letters_by_reason(&self) -> Vec<(String, String, u64)> {
        let by_reason = self.by_reason.lock().unwrap_or_else(|e| e.into_inner());
        by_reason
            .iter()
            .map(|(&(stage, code), &n)| (stage_name(stage), code_name(code), n))
            .collect()
    }

    fn counters(&self) -> [(&'static str, &'static str, u64); 13] {
        [
            ("consumed", "Messages consumed", Self::get(&self.consumed)),
            (
                "written",
                "Messages written to the target",
                Self::get(&self.written),
            ),
            (
                "dead_lettered",
                "Dead letters accepted",
                Self::get(&self.dead_lettered),
            ),
            (
                "dlq_confirmed",
                "Dead letters confirmed by the DLQ target",
                Self::get(&self.dlq_confirmed),
            ),
            (
                "dlq_send_retries",
                "DLQ send retries",
                Self::get(&self.dlq_send_retries),
            ),
            (
                "spooled",
                "Dead letters spooled during an outage",
                Self::get(&self.spooled),
            ),
            (
                "drained",
                "Dead letters drained from the spool",
                Self::get(&self.drained),
            ),
            (
                "dlq_refused",
                "Envelopes refused by the DLQ callback",
                Self::get(&self.dlq_refused),
            ),
            (
                "unprotected",
                "Messages given to a plugin without DLQ support",
                Self::get(&self.unprotected),
            ),
            (
                "batch_failures",
                "Failed consume() calls",
                Self::get(&self.batch_failures),
            ),
            ("commits", "Offset commits", Self::get(&self.commits)),
            (
                "iggy_failures",
                "Failed or unanswered Iggy requests of a sink",
                Self::get(&self.iggy_failures),
            ),
            (
                "group_repairs",
                "Consumer groups recreated for stale members",
                Self::get(&self.group_repairs),
            ),
        ]
    }
}

fn stage_name(stage: i32) -> String {
    FailureStage::try_from(stage)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("FAILURE_STAGE_")
                .to_lowercase()
        })
        .unwrap_or_else(|_| format!("unknown_{stage}"))
}

fn code_name(code: i32) -> String {
    ErrorCode::try_from(code)
        .map(|c| {
            c.as_str_name()
                .trim_start_matches("ERROR_CODE_")
                .to_lowercase()
        })
        .unwrap_or_else(|_| format!("unknown_{code}"))
}

/// The counters of every connector of a runtime.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    connectors: Arc<Mutex<BTreeMap<String, Arc<ConnectorMetrics>>>>,
}

impl Registry {
    /// The counters of connector `key`, created on first use.
    pub fn connector(&self, key: &str) -> Arc<ConnectorMetrics> {
        let mut connectors = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
        connectors.entry(key.to_owned()).or_default().clone()
    }

    /// Every counter in Prometheus text exposition format.
    pub fn prometheus(&self) -> String {
        let connectors = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        let Some(first) = connectors.values().next() else {
            return out;
        };
        for (i, (name, help, _)) in first.counters().iter().enumerate() {
            let _ = writeln!(out, "# HELP iggy_dlq_{name}_total {help}.");
            let _ = writeln!(out, "# TYPE iggy_dlq_{name}_total counter");
            for (key, m) in connectors.iter() {
                let value = m.counters()[i].2;
                let _ = writeln!(
                    out,
                    "iggy_dlq_{name}_total{{connector=\"{}\"}} {value}",
                    escape(key)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP iggy_dlq_dead_letters_total Dead letters by failure stage and code."
        );
        let _ = writeln!(out, "# TYPE iggy_dlq_dead_letters_total counter");
        for (key, m) in connectors.iter() {
            for (stage, code, n) in m.dead_letters_by_reason() {
                let _ = writeln!(
                    out,
                    "iggy_dlq_dead_letters_total{{connector=\"{}\",stage=\"{stage}\",code=\"{code}\"}} {n}",
                    escape(key)
                );
            }
        }
        out
    }

    /// A human-readable summary, one block per connector.
    pub fn summary(&self) -> String {
        let connectors = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        for (key, m) in connectors.iter() {
            let _ = writeln!(out, "connector {key}:");
            for (name, _, value) in m.counters() {
                let _ = writeln!(out, "  {name:<17} {value}");
            }
            for (stage, code, n) in m.dead_letters_by_reason() {
                let _ = writeln!(out, "  dead letters at {stage} / {code}: {n}");
            }
        }
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_names_every_connector_and_reason() {
        let registry = Registry::default();
        let m = registry.connector("orders");
        ConnectorMetrics::add(&m.consumed, 100);
        m.count_dead_letter(
            FailureStage::ConnectorProcess as i32,
            ErrorCode::MalformedPayload as i32,
        );
        let text = registry.prometheus();
        assert!(
            text.contains("iggy_dlq_consumed_total{connector=\"orders\"} 100"),
            "{text}"
        );
        assert!(text.contains(
            "iggy_dlq_dead_letters_total{connector=\"orders\",stage=\"connector_process\",code=\"malformed_payload\"} 1"
        ), "{text}");
    }
}
