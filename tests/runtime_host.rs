//! The runtime hosting real plugins (`cdylib`s loaded with dlopen), with no
//! Iggy server: batches come from memory, dead letters go to the embedded
//! file target or to a scripted DLQ topic. What runs here runs for real: the
//! plugin host, the callback wiring, the confirm-before-commit ordering, the
//! batch-failure policy, the demo.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use iggy_dlq_envelope::{
    DlqEnvelope, ErrorCode, FailureStage, PayloadPolicy, PayloadSchema, decode,
};
use iggy_dlq_runtime::app::start_dlq;
use iggy_dlq_runtime::config::{BatchFailurePolicy, DlqConfig, DlqTarget};
use iggy_dlq_runtime::dlq::{
    Destination, DlqProducer, DlqProducerConfig, DlqRoute, DlqTransport, RouteConfig, Spool,
    TransportError, read_records,
};
use iggy_dlq_runtime::metrics::{ConnectorMetrics, Registry};
use iggy_dlq_runtime::sink::{Commit, SinkError, SinkInput, SinkRunner, SinkSpec, memory_batch};
use iggy_dlq_runtime::source::{SourceOutput, SourceRunner, SourceSpec};
use iggy_dlq_tests::fixture_plugin;
use tokio::sync::watch;

fn dlq_config(target: DlqTarget, policy: BatchFailurePolicy) -> DlqConfig {
    DlqConfig {
        target,
        partitions: 1,
        create: true,
        max_message_size: 64 * 1024,
        payload_policy: PayloadPolicy::Truncate,
        on_batch_failure: policy,
        batch_retries: 1,
        retry_backoff: Duration::from_millis(1),
        batch_length: 100,
        linger: Duration::from_millis(1),
        queue_capacity: 64,
        send_timeout: Duration::from_secs(5),
        send_retries: 3,
    }
}

fn sink_spec(plugin: &str, config: serde_json::Value, dlq: Option<DlqConfig>) -> SinkSpec {
    SinkSpec {
        key: "orders".into(),
        name: "Orders".into(),
        plugin_path: fixture_plugin(plugin),
        plugin_config: config,
        dlq,
        poll_interval: Duration::from_millis(1),
        instance_id: "test-runtime".into(),
    }
}

/// Offsets 0..300 in three batches of 100. Every 37th message is broken
/// JSON (the runtime catches it), every 41st lacks `order_id` (the plugin
/// catches it).
fn payload(offset: u64) -> Bytes {
    if offset % 37 == 36 {
        Bytes::from(format!("{{\"order_id\": {offset}, "))
    } else if offset % 41 == 40 {
        Bytes::from(format!("{{\"amount\": {offset}}}"))
    } else {
        Bytes::from(format!("{{\"order_id\":{offset}}}"))
    }
}

fn bad_offsets() -> BTreeSet<u64> {
    (0..300).filter(|o| o % 37 == 36 || o % 41 == 40).collect()
}

fn memory_input(commits: &Arc<Mutex<Vec<Commit>>>) -> SinkInput {
    let batches = (0..3)
        .map(|b| {
            memory_batch(
                "shop",
                "orders",
                1,
                b * 100,
                PayloadSchema::Json,
                (b * 100..b * 100 + 100).map(payload),
            )
        })
        .collect();
    SinkInput::Memory {
        batches,
        commits: commits.clone(),
    }
}

fn committed(commits: &Arc<Mutex<Vec<Commit>>>) -> Vec<u64> {
    commits.lock().unwrap().iter().map(|c| c.offset).collect()
}

fn target_ids(path: &Path) -> BTreeSet<u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["order_id"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

fn dlq_file(path: &Path) -> Vec<DlqEnvelope> {
    read_records(path, 0, usize::MAX)
        .unwrap()
        .0
        .into_iter()
        .map(|r| decode(r).expect("every dead letter decodes"))
        .collect()
}

#[tokio::test]
async fn failed_messages_only_reach_the_dlq_in_origin_order_and_every_batch_is_committed() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target.jsonl");
    let dlq_path = dir.path().join("orders.dlq");
    let metrics = Registry::default();
    let dlq = dlq_config(
        DlqTarget::File(dlq_path.clone()),
        BatchFailurePolicy::DeadLetter,
    );
    let (producer, route) = start_dlq("orders", &dlq, None, dir.path(), "test-runtime", &metrics)
        .await
        .unwrap();
    let config = serde_json::json!({ "path": target, "required_field": "order_id" });
    let runner = SinkRunner::start(
        sink_spec("json_sink", config, Some(dlq)),
        Some(route),
        metrics.connector("orders"),
    )
    .unwrap();
    assert!(runner.plugin_has_dlq());

    let commits = Arc::new(Mutex::new(Vec::new()));
    let (_stop_tx, stop) = watch::channel(false);
    runner.run(&mut memory_input(&commits), stop).await.unwrap();
    runner.close();
    producer.shutdown().await;

    let bad = bad_offsets();
    let good: BTreeSet<u64> = (0..300).filter(|o| !bad.contains(o)).collect();
    assert_eq!(
        target_ids(&target),
        good,
        "the target holds exactly the good messages"
    );
    let envelopes = dlq_file(&dlq_path);
    let offsets: Vec<u64> = envelopes
        .iter()
        .map(|e| e.sink_origin().unwrap().offset)
        .collect();
    assert_eq!(
        offsets,
        bad.iter().copied().collect::<Vec<_>>(),
        "exactly the bad ones, in origin order"
    );
    for envelope in &envelopes {
        let offset = envelope.sink_origin().unwrap().offset;
        let failure = envelope.failure.as_ref().unwrap();
        assert_eq!(envelope.payload, payload(offset), "payload byte for byte");
        let expected = if offset % 37 == 36 {
            (FailureStage::RuntimeDecode, ErrorCode::MalformedPayload)
        } else {
            (FailureStage::ConnectorProcess, ErrorCode::MissingField)
        };
        assert_eq!(
            (failure.stage(), failure.code()),
            expected,
            "offset {offset}"
        );
        assert_eq!(
            envelope.connector.as_ref().unwrap().runtime_instance_id,
            "test-runtime"
        );
    }
    assert_eq!(committed(&commits), vec![99, 199, 299]);
    let m = metrics.connector("orders");
    assert_eq!(ConnectorMetrics::get(&m.consumed), 300);
    assert_eq!(ConnectorMetrics::get(&m.dead_lettered), bad.len() as u64);
    assert_eq!(ConnectorMetrics::get(&m.written), good.len() as u64);
}

/// A DLQ topic that acknowledges slowly, and records how many batches were
/// committed when each of its sends arrived.
struct SlowTopic {
    commits: Arc<Mutex<Vec<Commit>>>,
    commits_seen_at_send: Arc<Mutex<Vec<usize>>>,
}

impl DlqTransport for SlowTopic {
    fn send<'a>(
        &'a mut self,
        batch: &'a [(u64, Bytes)],
    ) -> Pin<Box<dyn Future<Output = Result<(), TransportError>> + Send + 'a>> {
        Box::pin(async move {
            let seen = self.commits.lock().unwrap().len();
            self.commits_seen_at_send
                .lock()
                .unwrap()
                .extend(std::iter::repeat_n(seen, batch.len()));
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(())
        })
    }

    fn describe(&self) -> String {
        "slow topic".into()
    }
}

#[tokio::test]
async fn an_offset_is_committed_only_after_its_dead_letters_are_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let commits = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (spool, _) = Spool::open(dir.path().join("orders.spool")).unwrap();
    let metrics = Registry::default();
    let producer = DlqProducer::start(
        Destination::Iggy {
            transport: Box::new(SlowTopic {
                commits: commits.clone(),
                commits_seen_at_send: seen.clone(),
            }),
            spool,
        },
        DlqProducerConfig {
            linger: Duration::from_millis(1),
            ..DlqProducerConfig::default()
        },
        metrics.connector("orders"),
    );
    let route = DlqRoute::new(
        RouteConfig {
            connector_key: "orders".into(),
            max_message_size: 64 * 1024,
            payload_policy: PayloadPolicy::Truncate,
            enqueue_timeout: None,
            runtime_instance_id: "test-runtime".into(),
        },
        producer.sender(),
        &metrics,
    );
    let dlq = dlq_config(
        DlqTarget::Iggy {
            stream: "dlq".into(),
            topic: "orders".into(),
        },
        BatchFailurePolicy::DeadLetter,
    );
    let config =
        serde_json::json!({ "path": dir.path().join("t.jsonl"), "required_field": "order_id" });
    let runner = SinkRunner::start(
        sink_spec("json_sink", config, Some(dlq)),
        Some(route),
        metrics.connector("orders"),
    )
    .unwrap();
    let (_stop_tx, stop) = watch::channel(false);
    runner.run(&mut memory_input(&commits), stop).await.unwrap();
    runner.close();
    producer.shutdown().await;

    // Batch b's dead letters reached the topic while exactly b batches were
    // committed: its own commit waited for their acknowledgement.
    let per_batch: Vec<usize> = bad_offsets().iter().map(|o| (o / 100) as usize).collect();
    assert_eq!(*seen.lock().unwrap(), per_batch);
    assert_eq!(committed(&commits), vec![99, 199, 299]);
}

#[tokio::test]
async fn a_plugin_without_the_dlq_symbol_runs_and_what_it_could_lose_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Registry::default();
    let dlq = dlq_config(
        DlqTarget::File(dir.path().join("d.dlq")),
        BatchFailurePolicy::DeadLetter,
    );
    let (producer, route) = start_dlq("orders", &dlq, None, dir.path(), "test-runtime", &metrics)
        .await
        .unwrap();
    let config = serde_json::json!({ "path": dir.path().join("plain.out") });
    let runner = SinkRunner::start(
        sink_spec("plain_sink", config, Some(dlq)),
        Some(route),
        metrics.connector("orders"),
    )
    .unwrap();
    assert!(!runner.plugin_has_dlq());
    let commits = Arc::new(Mutex::new(Vec::new()));
    let (_stop_tx, stop) = watch::channel(false);
    runner.run(&mut memory_input(&commits), stop).await.unwrap();
    runner.close();
    producer.shutdown().await;

    let m = metrics.connector("orders");
    let runtime_caught = (0..300).filter(|o| o % 37 == 36).count() as u64;
    assert_eq!(ConnectorMetrics::get(&m.unprotected), 300 - runtime_caught);
    // What the runtime itself sees still reaches the DLQ.
    assert_eq!(
        dlq_file(&dir.path().join("d.dlq")).len() as u64,
        runtime_caught
    );
    assert_eq!(committed(&commits), vec![99, 199, 299]);
    assert!(
        metrics
            .prometheus()
            .contains("iggy_dlq_unprotected_total{connector=\"orders\"}")
    );
}

#[tokio::test]
async fn a_batch_whose_consume_keeps_failing_is_dead_lettered_once_then_committed() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Registry::default();
    let dlq_path = dir.path().join("d.dlq");
    let dlq = dlq_config(
        DlqTarget::File(dlq_path.clone()),
        BatchFailurePolicy::DeadLetter,
    );
    let (producer, route) = start_dlq("orders", &dlq, None, dir.path(), "test-runtime", &metrics)
        .await
        .unwrap();
    let config =
        serde_json::json!({ "path": dir.path().join("t.jsonl"), "panic_on_consume": true });
    let runner = SinkRunner::start(
        sink_spec("json_sink", config, Some(dlq)),
        Some(route),
        metrics.connector("orders"),
    )
    .unwrap();
    let commits = Arc::new(Mutex::new(Vec::new()));
    let (_stop_tx, stop) = watch::channel(false);
    runner.run(&mut memory_input(&commits), stop).await.unwrap();
    runner.close();
    producer.shutdown().await;

    let envelopes = dlq_file(&dlq_path);
    let runtime_caught = (0..300).filter(|o| o % 37 == 36).count();
    assert_eq!(
        envelopes.len(),
        300,
        "every message once: no duplicates from the retries"
    );
    let batch_failed: Vec<_> = envelopes
        .iter()
        .filter(|e| e.failure.as_ref().unwrap().code() == ErrorCode::BatchFailed)
        .collect();
    assert_eq!(batch_failed.len(), 300 - runtime_caught);
    let failure = batch_failed[0].failure.as_ref().unwrap();
    assert_eq!(failure.stage(), FailureStage::ConnectorWrite);
    assert_eq!(failure.attempts, 2, "one try and one retry");
    assert!(failure.retryable);
    assert_eq!(
        ConnectorMetrics::get(&metrics.connector("orders").batch_failures),
        6
    );
    assert_eq!(committed(&commits), vec![99, 199, 299]);
}

#[tokio::test]
async fn with_the_stop_policy_a_failing_batch_stops_the_sink_uncommitted() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Registry::default();
    let dlq = dlq_config(
        DlqTarget::File(dir.path().join("d.dlq")),
        BatchFailurePolicy::Stop,
    );
    let (producer, route) = start_dlq("orders", &dlq, None, dir.path(), "test-runtime", &metrics)
        .await
        .unwrap();
    let config =
        serde_json::json!({ "path": dir.path().join("t.jsonl"), "panic_on_consume": true });
    let runner = SinkRunner::start(
        sink_spec("json_sink", config, Some(dlq)),
        Some(route),
        metrics.connector("orders"),
    )
    .unwrap();
    let commits = Arc::new(Mutex::new(Vec::new()));
    let (_stop_tx, stop) = watch::channel(false);
    let error = runner
        .run(&mut memory_input(&commits), stop)
        .await
        .unwrap_err();
    runner.close();
    producer.shutdown().await;
    assert!(
        matches!(
            error,
            SinkError::BatchFailed {
                offset: 0,
                attempts: 2,
                ..
            }
        ),
        "{error}"
    );
    assert!(
        committed(&commits).is_empty(),
        "nothing committed: the batch is consumed again"
    );
}

#[tokio::test]
async fn the_demo_accounts_for_every_message() {
    let dir = tempfile::tempdir().unwrap();
    let report = iggy_dlq_runtime::demo::run(iggy_dlq_runtime::demo::DemoOptions {
        dir: dir.path().to_path_buf(),
        messages: 500,
        poison_every: 25,
        plugin: fixture_plugin("json_sink"),
        iggy: None,
    })
    .await
    .unwrap();
    assert!(
        report.contains("every message is accounted for: 480 in the target + 20 in the DLQ = 500"),
        "{report}"
    );
    let envelopes = dlq_file(&dir.path().join("orders.dlq"));
    assert!(
        envelopes
            .iter()
            .any(|e| e.payload_integrity.as_ref().unwrap().truncated),
        "the large poison message is cut to fit"
    );
}

#[tokio::test]
async fn a_source_produces_its_good_records_and_dead_letters_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("items.txt");
    let mut lines = Vec::new();
    for i in 1..=25 {
        lines.push(if i % 6 == 0 {
            format!("garbage line {i}")
        } else {
            format!("item=sku-{i}")
        });
    }
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let metrics = Registry::default();
    let dlq_path = dir.path().join("src.dlq");
    let dlq = dlq_config(
        DlqTarget::File(dlq_path.clone()),
        BatchFailurePolicy::DeadLetter,
    );
    let (producer, route) = start_dlq("items", &dlq, None, dir.path(), "test-runtime", &metrics)
        .await
        .unwrap();
    let state_path = dir.path().join("items.state");
    let runner = Arc::new(
        SourceRunner::start(
            SourceSpec {
                key: "items".into(),
                plugin_path: fixture_plugin("lines_source"),
                plugin_config: serde_json::json!({ "path": input, "batch_size": 10, "stream": "inv", "topic": "items" }),
                state_path: state_path.clone(),
            },
            Some(route),
            metrics.connector("items"),
        )
        .unwrap(),
    );
    let produced = Arc::new(Mutex::new(Vec::new()));
    let output = SourceOutput::Memory(produced.clone());
    let (stop_tx, stop) = watch::channel(false);
    let task = {
        let runner = runner.clone();
        tokio::spawn(async move { runner.run(&output, stop).await })
    };
    for _ in 0..200 {
        if produced.lock().unwrap().len() >= 21 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    stop_tx.send(true).unwrap();
    task.await.unwrap();
    runner.close();
    producer.shutdown().await;

    assert_eq!(
        produced.lock().unwrap().len(),
        21,
        "the 21 convertible lines"
    );
    let envelopes = dlq_file(&dlq_path);
    let positions: Vec<String> = envelopes
        .iter()
        .map(|e| String::from_utf8_lossy(&e.source_origin().unwrap().position).into_owned())
        .collect();
    assert_eq!(positions, vec!["line:6", "line:12", "line:18", "line:24"]);
    assert!(
        state_path.is_file(),
        "the source's position is saved after an acknowledged batch"
    );
}

#[test]
fn a_library_of_the_wrong_kind_or_no_library_is_refused_by_name() {
    use iggy_dlq_runtime::plugin::{PluginError, SinkPlugin, SourcePlugin};

    let sink = SinkPlugin::load(&fixture_plugin("json_sink")).unwrap();
    assert_eq!(sink.version(), "0.1.0");
    assert!(sink.supports_dlq());
    assert!(
        !SinkPlugin::load(&fixture_plugin("plain_sink"))
            .unwrap()
            .supports_dlq()
    );
    assert!(
        SourcePlugin::load(&fixture_plugin("lines_source"))
            .unwrap()
            .supports_dlq()
    );

    let err = SourcePlugin::load(&fixture_plugin("json_sink")).unwrap_err();
    assert!(
        matches!(err, PluginError::MissingSymbol { kind: "source", .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("it is not a source connector plugin"),
        "{err}"
    );
    let err = SinkPlugin::load(&fixture_plugin("lines_source")).unwrap_err();
    assert!(
        err.to_string()
            .contains("it is not a sink connector plugin"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let not_a_library = dir.path().join("libnot_a_plugin.so");
    std::fs::write(&not_a_library, b"not an ELF file").unwrap();
    let err = SinkPlugin::load(&not_a_library).unwrap_err();
    assert!(matches!(err, PluginError::Load { .. }), "{err:?}");
    assert!(err.to_string().contains("libnot_a_plugin.so"), "{err}");
}

/// The first ```toml block of the README after `marker`.
fn readme_toml(marker: &str) -> String {
    let readme =
        std::fs::read_to_string(iggy_dlq_tests::workspace_root().join("README.md")).unwrap();
    let after = &readme[readme
        .find(marker)
        .unwrap_or_else(|| panic!("README: no {marker:?}"))..];
    let start = after.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let end = start + after[start..].find("```").expect("the block ends");
    after[start..end].to_owned()
}

#[test]
fn the_readme_config_examples_pass_iggy_dlq_check() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("connectors")).unwrap();
    std::fs::write(
        dir.path().join("runtime.toml"),
        readme_toml("The runtime file:"),
    )
    .unwrap();
    let connector = readme_toml("with a `[dlq]` section:");
    let plugin = fixture_plugin("json_sink");
    let plugin_stem = plugin.with_extension("");
    assert!(connector.contains("path = \"target/release/libjson_sink\""));
    std::fs::write(
        dir.path().join("connectors/orders.toml"),
        connector.replace("target/release/libjson_sink", plugin_stem.to_str().unwrap()),
    )
    .unwrap();
    let check = |env: &[(&str, &str)]| {
        let mut command = std::process::Command::new(iggy_dlq_tests::iggy_dlq_binary());
        command
            .args(["check", "--config"])
            .arg(dir.path().join("runtime.toml"))
            .env_remove("IGGY_USERNAME")
            .env_remove("IGGY_PASSWORD")
            .env("IGGY_DLQ_LOG", "error");
        for (k, v) in env {
            command.env(k, v);
        }
        command.output().unwrap()
    };

    let out = check(&[("IGGY_USERNAME", "dlq-user"), ("IGGY_PASSWORD", "s3cret")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Iggy at localhost:8090"), "{stdout}");
    assert!(
        stdout.contains("sink orders (Orders to JSON lines): shop/orders"),
        "{stdout}"
    );
    assert!(
        stdout.contains("dlq: Iggy topic dlq/orders-dlq"),
        "{stdout}"
    );
    assert!(stdout.contains("0.1.0, can dead-letter"), "{stdout}");
    assert!(stdout.contains("ok: 1 connector(s)"), "{stdout}");
    assert!(!stdout.contains("s3cret"), "no secret in the output");

    let out = check(&[("IGGY_USERNAME", "dlq-user")]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("IGGY_PASSWORD"),
        "the missing variable is named: {stderr}"
    );

    // The plain sink cannot dead-letter: check says so.
    std::fs::write(
        dir.path().join("connectors/orders.toml"),
        connector.replace(
            "target/release/libjson_sink",
            fixture_plugin("plain_sink")
                .with_extension("")
                .to_str()
                .unwrap(),
        ),
    )
    .unwrap();
    let out = check(&[("IGGY_USERNAME", "u"), ("IGGY_PASSWORD", "p")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(stdout.contains("cannot dead-letter"), "{stdout}");
    assert!(stdout.contains("warning: a DLQ is configured"), "{stdout}");

    // A plugin that is not there fails the check, by path.
    std::fs::write(
        dir.path().join("connectors/orders.toml"),
        connector.replace("target/release/libjson_sink", "/nowhere/libmissing"),
    )
    .unwrap();
    let out = check(&[("IGGY_USERNAME", "u"), ("IGGY_PASSWORD", "p")]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("/nowhere/libmissing"), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 plugin(s) cannot be loaded"));
}
