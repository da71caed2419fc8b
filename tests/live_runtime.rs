//! The runtime against a real Iggy server: what a user would check after a
//! run. Each test finds its server with [`IggyServer::find`] (see
//! `tests/src/iggy_server.rs`) and prints `SKIPPED <test>: <why>` without one.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use iggy_dlq_envelope::{
    Connector, DlqEnvelope, ErrorCode, Failure, FailureStage, PayloadSchema, SinkOrigin, decode,
};
use iggy_dlq_runtime::app::{self, RunReport, start_dlq};
use iggy_dlq_runtime::config::{BatchFailurePolicy, Config, DlqConfig, DlqTarget};
use iggy_dlq_runtime::dlq::{
    DlqProducer, DlqProducerConfig, DlqRoute, DlqStatus, RouteConfig, Spool, read_records,
};
use iggy_dlq_runtime::iggy_client::{
    ConnectionSettings, GroupJoin, GroupMember, Headers, IggyConnection, IggyDlqTransport,
    OutgoingMessage, read_all,
};
use iggy_dlq_runtime::metrics::{ConnectorMetrics, Registry};
use iggy_dlq_runtime::replay::{self, Destination, ReplayFilter, Skip};
use iggy_dlq_tests::fixture_plugin;
use iggy_dlq_tests::iggy_server::{IggyServer, unique_name};
use tokio::sync::watch;

/// Messages per sink batch in these tests; the runtime's default.
const BATCH_LENGTH: u64 = 100;

// ---- what the tests produce ----

/// Why message `i` is poison, if it is: 1% of them, every 100th starting at
/// 37, alternately not JSON (the runtime catches it) and JSON without the
/// required `order_id` (the plugin catches it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Poison {
    NotJson,
    MissingOrderId,
}

fn poison(i: u64) -> Option<Poison> {
    (i % 100 == 37).then(|| {
        if (i / 100).is_multiple_of(2) {
            Poison::NotJson
        } else {
            Poison::MissingOrderId
        }
    })
}

fn payload(i: u64) -> Bytes {
    Bytes::from(match poison(i) {
        Some(Poison::NotJson) => format!("{{\"order_id\": {i}, \"amount\": "),
        Some(Poison::MissingOrderId) => format!("{{\"amount\": {i}, \"note\": \"no order id\"}}"),
        None => format!("{{\"order_id\":{i},\"amount\":{}}}", i % 97),
    })
}

async fn connect(server: &IggyServer) -> IggyConnection {
    IggyConnection::connect(&server.settings())
        .await
        .unwrap_or_else(|e| panic!("{e}\nserver log:\n{}", server.log()))
}

/// Creates `stream`/`topic` (one partition) and produces messages `0..n`;
/// their offsets are their numbers.
async fn produce(connection: &IggyConnection, stream: &str, topic: &str, n: u64) {
    connection
        .ensure_topic(stream, topic, 1, true)
        .await
        .unwrap();
    let mut i = 0;
    while i < n {
        let end = (i + 1000).min(n);
        let messages: Vec<OutgoingMessage> = (i..end)
            .map(|i| OutgoingMessage {
                id: None,
                payload: payload(i),
                headers: None,
            })
            .collect();
        connection.send(stream, topic, 0, &messages).await.unwrap();
        i = end;
    }
}

// ---- running the runtime from config files, as a user does ----

/// The `plugin_config` line that makes json-sink dead-letter orders without
/// an `order_id`.
const REQUIRE_ORDER_ID: &str = "required_field = \"order_id\"";

/// Writes `dir/config.toml` for `server`, with connector files in
/// `dir/connectors` and the spool in `dir/spool_dir`.
fn write_runtime_config(dir: &Path, server: &IggyServer, spool_dir: &str) {
    std::fs::create_dir_all(dir.join("connectors")).unwrap();
    std::fs::write(
        dir.join("config.toml"),
        format!(
            "[iggy]\naddress = \"{}\"\nusername = \"{}\"\npassword = \"{}\"\n\
             [runtime]\ninstance_id = \"live-test\"\nspool_dir = \"{spool_dir}\"\n\
             [connectors]\nconfig_dir = \"connectors\"\n",
            server.address(),
            server.username(),
            server.password()
        ),
    )
    .unwrap();
}

struct Setup {
    dir: tempfile::TempDir,
    stream: String,
    group: String,
    key: String,
}

impl Setup {
    fn new(prefix: &str) -> Setup {
        Setup {
            dir: tempfile::tempdir().unwrap(),
            stream: unique_name(prefix),
            group: unique_name("group"),
            key: "orders".into(),
        }
    }

    fn target(&self) -> PathBuf {
        self.dir.path().join("target.jsonl")
    }

    /// Writes the runtime file and one sink connector file for `plugin`
    /// with a DLQ topic `orders-dlq` in the same stream; returns the loaded
    /// config.
    fn config(&self, server: &IggyServer, plugin: &Path) -> Config {
        self.config_with(server, plugin, REQUIRE_ORDER_ID, "")
    }

    /// As [`config`](Self::config), with lines added to `[plugin_config]`
    /// and to `[dlq]`.
    fn config_with(
        &self,
        server: &IggyServer,
        plugin: &Path,
        plugin_config: &str,
        dlq_config: &str,
    ) -> Config {
        let dir = self.dir.path();
        write_runtime_config(dir, server, "spool");
        std::fs::write(
            dir.join("connectors/orders.toml"),
            format!(
                r#"type = "sink"
key = "{key}"
name = "Orders to JSON lines"
path = "{plugin}"
[[streams]]
stream = "{stream}"
topics = ["orders"]
schema = "json"
batch_length = {BATCH_LENGTH}
poll_interval = "5ms"
consumer_group = "{group}"
[plugin_config]
path = "{target}"
connector_key = "{key}"
{plugin_config}
[dlq]
stream = "{stream}"
topic = "orders-dlq"
{dlq_config}
"#,
                key = self.key,
                plugin = plugin.display(),
                stream = self.stream,
                group = self.group,
                target = self.target().display(),
            ),
        )
        .unwrap();
        Config::load(&dir.join("config.toml")).unwrap()
    }

    /// The order ids in the target file, in file order. Only whole lines
    /// count: the sink may be writing the file while a test reads it.
    fn target_ids(&self) -> Vec<u64> {
        let text = std::fs::read_to_string(self.target()).unwrap_or_default();
        let whole = text.rfind('\n').map_or("", |end| &text[..end]);
        whole
            .lines()
            .map(|line| {
                let value: serde_json::Value = serde_json::from_str(line).unwrap();
                value["order_id"].as_u64().unwrap()
            })
            .collect()
    }

    /// The dead letters in this setup's DLQ topic, `orders-dlq`.
    async fn dead_letters(&self, connection: &IggyConnection) -> Vec<DlqEnvelope> {
        dead_letters(
            &read_all(connection, &self.stream, "orders-dlq")
                .await
                .unwrap(),
        )
    }

    async fn committed(&self, connection: &IggyConnection) -> Option<u64> {
        connection
            .committed_offset(&self.stream, "orders", &self.group, 0)
            .await
            .ok()
            .flatten()
    }

    /// Waits until the group committed `offset`, then stops the runtime and
    /// returns its report.
    async fn stop_when_committed(
        &self,
        connection: &IggyConnection,
        offset: u64,
        stop: watch::Sender<bool>,
        run: tokio::task::JoinHandle<Result<RunReport, app::RunError>>,
        timeout: Duration,
    ) -> RunReport {
        let deadline = Instant::now() + timeout;
        while self.committed(connection).await != Some(offset) {
            assert!(
                Instant::now() < deadline,
                "the group did not commit offset {offset} within {timeout:?} (now {:?}, {} lines in the target)",
                self.committed(connection).await,
                self.target_ids().len()
            );
            assert!(
                !run.is_finished(),
                "the runtime stopped early: {:?}",
                run.await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.send(true).unwrap();
        run.await.unwrap().unwrap()
    }
}

fn dead_letters(records: &[Bytes]) -> Vec<DlqEnvelope> {
    records
        .iter()
        .map(|r| decode(r.clone()).expect("every DLQ message is a valid envelope"))
        .collect()
}

fn origin_offsets(envelopes: &[DlqEnvelope]) -> Vec<u64> {
    envelopes
        .iter()
        .map(|e| e.sink_origin().expect("a sink origin").offset)
        .collect()
}

fn metric(
    report: &RunReport,
    key: &str,
    counter: fn(&ConnectorMetrics) -> &std::sync::atomic::AtomicU64,
) -> u64 {
    ConnectorMetrics::get(counter(&report.metrics.connector(key)))
}

// ---- the Iggy client module ----

/// Polls `group` until it gets messages: a new member is assigned the
/// partition only once the server has let the old member go.
async fn poll_until_some(
    connection: &IggyConnection,
    stream: &str,
    topic: &str,
    group: &str,
) -> iggy_dlq_runtime::iggy_client::Polled {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let polled = connection
            .poll_group(stream, topic, group, 10)
            .await
            .unwrap();
        if !polled.messages.is_empty() || Instant::now() > deadline {
            return polled;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_iggy_client_creates_topics_round_trips_headers_and_redelivers_uncommitted_batches() {
    let Some(server) = IggyServer::find("live_runtime::iggy_client") else {
        return;
    };
    let connection = connect(&server).await;
    let stream = unique_name("client");

    let created = connection
        .ensure_topic(&stream, "events", 2, true)
        .await
        .unwrap();
    assert_eq!(created.partitions, 2);
    let found = connection
        .ensure_topic(&stream, "events", 1, false)
        .await
        .unwrap();
    assert_eq!(
        (found.stream_id, found.topic_id, found.partitions),
        (created.stream_id, created.topic_id, 2)
    );
    let missing = connection
        .ensure_topic(&stream, "no-such-topic", 1, false)
        .await
        .unwrap_err();
    assert!(missing.to_string().contains("does not exist"), "{missing}");

    // Headers of several kinds survive the server byte for byte.
    let parts: Vec<(u8, Bytes, u8, Bytes)> = vec![
        (2, "tenant".into(), 2, "acme".into()),
        (
            2,
            "seq".into(),
            12,
            Bytes::copy_from_slice(&42u64.to_le_bytes()),
        ),
        (2, "flag".into(), 3, Bytes::from_static(&[1])),
        (
            2,
            "delta".into(),
            6,
            Bytes::copy_from_slice(&(-7i32).to_le_bytes()),
        ),
        (
            2,
            "ratio".into(),
            15,
            Bytes::copy_from_slice(&0.25f64.to_le_bytes()),
        ),
        (
            2,
            "id128".into(),
            13,
            Bytes::copy_from_slice(&(u128::MAX - 1).to_le_bytes()),
        ),
        (
            1,
            Bytes::from_static(&[0xab, 0xcd]),
            1,
            Bytes::from_static(&[0, 1, 2, 255]),
        ),
    ];
    let headers = Headers::from_raw_parts(&parts).unwrap();
    let messages: Vec<OutgoingMessage> = (0..10u64)
        .map(|i| OutgoingMessage {
            id: Some((1u128 << 100) + u128::from(i)),
            payload: Bytes::from(format!("message {i}")),
            headers: Some(headers.clone()),
        })
        .collect();
    connection
        .send(&stream, "events", 7, &messages)
        .await
        .unwrap();
    let info = connection
        .ensure_topic(&stream, "events", 1, false)
        .await
        .unwrap();
    let mut found = None;
    for partition in 0..info.partitions {
        let polled = connection
            .poll_from(&stream, "events", partition, 0, 100)
            .await
            .unwrap();
        if !polled.messages.is_empty() {
            found = Some(polled);
        }
    }
    let polled = found.expect("the messages are in one partition");
    assert_eq!(polled.messages.len(), 10, "one key, one partition");
    let mut expected_parts = parts.clone();
    expected_parts.sort();
    for (i, message) in polled.messages.iter().enumerate() {
        assert_eq!(message.offset, i as u64);
        assert_eq!(message.id, (1u128 << 100) + i as u128);
        assert_eq!(message.payload, Bytes::from(format!("message {i}")));
        let mut got = message.headers.clone().unwrap().unwrap().raw_parts();
        got.sort();
        assert_eq!(got, expected_parts);
    }

    // A consumer group: what is polled and not committed comes again.
    connection
        .ensure_topic(&stream, "jobs", 1, true)
        .await
        .unwrap();
    let jobs: Vec<OutgoingMessage> = (0..30u64)
        .map(|i| OutgoingMessage {
            id: None,
            payload: Bytes::from(format!("job {i}")),
            headers: None,
        })
        .collect();
    connection.send(&stream, "jobs", 0, &jobs).await.unwrap();
    let _ = connection
        .join_group(&stream, "jobs", "workers")
        .await
        .unwrap();
    let offsets = |p: &iggy_dlq_runtime::iggy_client::Polled| {
        p.messages.iter().map(|m| m.offset).collect::<Vec<_>>()
    };
    let first = connection
        .poll_group(&stream, "jobs", "workers", 10)
        .await
        .unwrap();
    assert_eq!(offsets(&first), (0..10).collect::<Vec<_>>());
    assert_eq!(
        connection
            .committed_offset(&stream, "jobs", "workers", first.partition_id)
            .await
            .unwrap(),
        None,
        "polling commits nothing"
    );

    // A new member (a restarted runtime) gets the uncommitted batch again,
    // once the server has let the old member go.
    connection.close().await;
    let restarted = connect(&server).await;
    let _ = restarted
        .join_group(&stream, "jobs", "workers")
        .await
        .unwrap();
    let again = poll_until_some(&restarted, &stream, "jobs", "workers").await;
    assert_eq!(
        offsets(&again),
        (0..10).collect::<Vec<_>>(),
        "not committed, so delivered again"
    );

    restarted
        .commit(&stream, "jobs", "workers", again.partition_id, 9)
        .await
        .unwrap();
    assert_eq!(
        restarted
            .committed_offset(&stream, "jobs", "workers", again.partition_id)
            .await
            .unwrap(),
        Some(9)
    );
    let next = restarted
        .poll_group(&stream, "jobs", "workers", 10)
        .await
        .unwrap();
    assert_eq!(
        offsets(&next),
        (10..20).collect::<Vec<_>>(),
        "committed, so not again"
    );

    restarted.close().await;
    let third = connect(&server).await;
    let _ = third.join_group(&stream, "jobs", "workers").await.unwrap();
    let after_commit = poll_until_some(&third, &stream, "jobs", "workers").await;
    assert_eq!(
        offsets(&after_commit),
        (10..20).collect::<Vec<_>>(),
        "a new member starts after the committed offset"
    );
    third.close().await;
}

// ---- the runtime ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_messages_with_one_percent_poison_split_exactly_between_target_and_dlq() {
    let Some(server) = IggyServer::find("live_runtime::ten_thousand_messages") else {
        return;
    };
    const N: u64 = 10_000;
    let setup = Setup::new("orders");
    let connection = connect(&server).await;
    produce(&connection, &setup.stream, "orders", N).await;
    let config = setup.config(&server, &fixture_plugin("json_sink"));

    let started = Instant::now();
    let (stop, stop_rx) = watch::channel(false);
    let run = tokio::spawn(app::run(config, stop_rx));
    let report = setup
        .stop_when_committed(&connection, N - 1, stop, run, Duration::from_secs(300))
        .await;
    let elapsed = started.elapsed();
    assert!(
        report.connector_errors.is_empty(),
        "{:?}",
        report.connector_errors
    );

    let good: Vec<u64> = (0..N).filter(|&i| poison(i).is_none()).collect();
    let bad: Vec<u64> = (0..N).filter(|&i| poison(i).is_some()).collect();
    assert_eq!((good.len(), bad.len()), (9_900, 100));
    assert_eq!(
        setup.target_ids(),
        good,
        "the target holds exactly the good ones, in order"
    );

    let records = read_all(&connection, &setup.stream, "orders-dlq")
        .await
        .unwrap();
    let envelopes = dead_letters(&records);
    assert_eq!(
        origin_offsets(&envelopes),
        bad,
        "the DLQ holds exactly the bad ones, in origin order"
    );
    for envelope in &envelopes {
        let origin = envelope.sink_origin().unwrap();
        assert_eq!(
            (
                origin.stream.as_str(),
                origin.topic.as_str(),
                origin.partition_id
            ),
            (setup.stream.as_str(), "orders", 0)
        );
        assert_eq!(
            envelope.payload,
            payload(origin.offset),
            "the payload byte for byte"
        );
        let failure = envelope.failure.as_ref().unwrap();
        match poison(origin.offset).unwrap() {
            Poison::NotJson => {
                assert_eq!(failure.code(), ErrorCode::MalformedPayload);
                assert_eq!(failure.stage(), FailureStage::RuntimeDecode);
            }
            Poison::MissingOrderId => {
                assert_eq!(failure.code(), ErrorCode::MissingField);
                assert_eq!(failure.stage(), FailureStage::ConnectorProcess);
                assert!(failure.reason.contains("order_id"), "{}", failure.reason);
            }
        }
        let connector = envelope.connector.as_ref().unwrap();
        assert_eq!(connector.key, "orders");
    }
    assert_eq!(
        setup.committed(&connection).await,
        Some(N - 1),
        "committed to the end"
    );
    assert_eq!(metric(&report, "orders", |m| &m.consumed), N);
    assert_eq!(metric(&report, "orders", |m| &m.dead_lettered), 100);
    assert_eq!(metric(&report, "orders", |m| &m.dlq_confirmed), 100);
    assert_eq!(metric(&report, "orders", |m| &m.unprotected), 0);
    eprintln!(
        "live_runtime: {N} messages, {} in the target, {} dead letters, committed to {}, in {elapsed:.2?}",
        good.len(),
        envelopes.len(),
        N - 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_without_the_dlq_symbol_runs_and_its_unprotected_messages_are_counted() {
    let Some(server) = IggyServer::find("live_runtime::plugin_without_dlq") else {
        return;
    };
    const N: u64 = 1_000;
    let setup = Setup::new("plain");
    let connection = connect(&server).await;
    produce(&connection, &setup.stream, "orders", N).await;
    let config = setup.config(&server, &fixture_plugin("plain_sink"));

    let (stop, stop_rx) = watch::channel(false);
    let run = tokio::spawn(app::run(config, stop_rx));
    let report = setup
        .stop_when_committed(&connection, N - 1, stop, run, Duration::from_secs(120))
        .await;
    assert!(
        report.connector_errors.is_empty(),
        "{:?}",
        report.connector_errors
    );

    // The runtime still catches what it can see (not JSON); the rest goes to
    // a plugin that cannot dead-letter, and is counted as unprotected.
    let not_json: Vec<u64> = (0..N)
        .filter(|&i| poison(i) == Some(Poison::NotJson))
        .collect();
    let handed: Vec<Bytes> = (0..N)
        .filter(|&i| poison(i) != Some(Poison::NotJson))
        .map(payload)
        .collect();
    let target = std::fs::read(setup.target()).unwrap();
    let lines: Vec<Bytes> = target
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(Bytes::copy_from_slice)
        .collect();
    assert_eq!(lines, handed, "plain-sink wrote everything it was handed");
    let envelopes = setup.dead_letters(&connection).await;
    assert_eq!(origin_offsets(&envelopes), not_json);
    assert_eq!(
        metric(&report, "orders", |m| &m.unprotected),
        handed.len() as u64
    );
    assert!(
        report
            .metrics
            .summary()
            .contains(&format!("unprotected       {}", handed.len())),
        "the run's summary reports the unprotected messages:\n{}",
        report.metrics.summary()
    );
    assert!(
        report.metrics.prometheus().contains(&format!(
            "iggy_dlq_unprotected_total{{connector=\"orders\"}} {}",
            handed.len()
        )),
        "{}",
        report.metrics.prometheus()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_stops_mid_run_and_no_dead_letter_is_lost() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "warn,iggy_dlq_runtime=debug",
        ))
        .with_test_writer()
        .try_init();
    let Some(mut server) = IggyServer::find_restartable("live_runtime::server_outage") else {
        return;
    };
    const N: u64 = 10_000;
    let setup = Setup::new("outage");
    let connection = connect(&server).await;
    produce(&connection, &setup.stream, "orders", N).await;
    connection.close().await;
    // The batch of offset 3,100 stalls in the plugin for 1 s, and the server
    // goes away meanwhile for 4 s. The batch's dead letter then meets a
    // stopped server: a send waits 1 s, is retried once, and the letter goes
    // to the spool; the batch's commit fails, and the batch comes again
    // after the server is back.
    let marker = setup.dir.path().join("stalled");
    let config = setup.config_with(
        &server,
        &fixture_plugin("json_sink"),
        &format!(
            "{REQUIRE_ORDER_ID}\nstall_at_offset = 3100\nstall_ms = 1000\nstall_marker = \"{}\"",
            marker.display()
        ),
        "send_timeout = \"1s\"\nsend_retries = 1",
    );

    let started = Instant::now();
    let (stop, stop_rx) = watch::channel(false);
    let run = tokio::spawn(app::run(config, stop_rx));
    let deadline = Instant::now() + Duration::from_secs(120);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "no progress before the outage");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::task::block_in_place(|| server.stop());
    let at_stop = setup.target_ids().len();
    tokio::time::sleep(Duration::from_secs(4)).await;
    tokio::task::block_in_place(|| server.start());
    let outage_end = started.elapsed();

    let connection = connect(&server).await;
    let report = setup
        .stop_when_committed(&connection, N - 1, stop, run, Duration::from_secs(300))
        .await;
    let elapsed = started.elapsed();
    assert!(
        report.connector_errors.is_empty(),
        "{:?}",
        report.connector_errors
    );

    // The target: every good one, duplicates only from redelivered batches.
    let ids = setup.target_ids();
    let mut counts: BTreeMap<u64, u64> = BTreeMap::new();
    for id in &ids {
        *counts.entry(*id).or_default() += 1;
    }
    let good: Vec<u64> = (0..N).filter(|&i| poison(i).is_none()).collect();
    let missing: Vec<u64> = good
        .iter()
        .copied()
        .filter(|i| !counts.contains_key(i))
        .collect();
    assert!(missing.is_empty(), "good messages lost: {missing:?}");
    assert!(
        counts.keys().all(|i| poison(*i).is_none()),
        "only good ones in the target"
    );
    let duplicates = ids.len() as u64 - good.len() as u64;
    // sink.rs: a batch whose commit did not happen is consumed again, once
    // per interruption; this run had one.
    assert!(
        duplicates <= BATCH_LENGTH,
        "{duplicates} duplicates, more than one batch of {BATCH_LENGTH}"
    );

    // The DLQ: every bad offset, at least once, and nothing else.
    let envelopes = setup.dead_letters(&connection).await;
    let offsets = origin_offsets(&envelopes);
    let bad: Vec<u64> = (0..N).filter(|&i| poison(i).is_some()).collect();
    let lost: Vec<u64> = bad
        .iter()
        .copied()
        .filter(|o| !offsets.contains(o))
        .collect();
    assert!(lost.is_empty(), "dead letters lost in the outage: {lost:?}");
    assert!(
        offsets.iter().all(|o| poison(*o).is_some()),
        "only bad ones in the DLQ"
    );
    let dlq_duplicates = offsets.len() - bad.len();
    assert!(
        dlq_duplicates as u64 <= BATCH_LENGTH / 100 + 1,
        "{dlq_duplicates} DLQ duplicates"
    );
    assert_eq!(setup.committed(&connection).await, Some(N - 1));
    let (spooled, drained) = (
        metric(&report, "orders", |m| &m.spooled),
        metric(&report, "orders", |m| &m.drained),
    );
    assert!(
        spooled >= 1,
        "the stalled batch's dead letter met a stopped server and was spooled:\n{}",
        report.metrics.summary()
    );
    assert_eq!(drained, spooled, "the spool was drained");
    assert!(metric(&report, "orders", |m| &m.iggy_failures) >= 1);
    assert_eq!(
        metric(&report, "orders", |m| &m.group_repairs),
        1,
        "the group the restart left with a stale member was repaired once"
    );
    eprintln!(
        "live_runtime: outage after {at_stop} target lines, server back at {outage_end:.2?}; \
         {N} messages, {} target lines ({duplicates} duplicates), {} dead letters \
         ({dlq_duplicates} duplicates), spooled {spooled}, drained {drained}, done in \
         {elapsed:.2?}",
        ids.len(),
        offsets.len(),
    );
}

// ---- a runtime killed with dead letters in its spool ----

const SPOOL_HELPER_ENV: &str = "IGGY_DLQ_LIVE_SPOOL_HELPER";
const SPOOLED_MARKER: &str = "ALL-SPOOLED";
const SPOOL_KEY: &str = "spooled";

fn spool_dlq_config(stream: &str) -> DlqConfig {
    DlqConfig {
        target: DlqTarget::Iggy {
            stream: stream.to_owned(),
            topic: "orders-dlq".into(),
        },
        partitions: 1,
        create: true,
        max_message_size: 1024 * 1024,
        payload_policy: iggy_dlq_envelope::PayloadPolicy::Truncate,
        on_batch_failure: BatchFailurePolicy::DeadLetter,
        batch_retries: 0,
        retry_backoff: Duration::from_millis(10),
        batch_length: 10,
        linger: Duration::from_millis(1),
        queue_capacity: 1000,
        send_timeout: iggy_dlq_runtime::iggy_client::DLQ_REQUEST_TIMEOUT,
        send_retries: 3,
    }
}

fn spooled_envelope(stream: &str, offset: u64) -> DlqEnvelope {
    DlqEnvelope::for_sink(SinkOrigin::new(
        stream,
        "orders",
        0,
        offset,
        u128::from(offset) + 1,
    ))
    .payload(payload(offset), PayloadSchema::Json)
    .failure(Failure::new(
        FailureStage::ConnectorProcess,
        ErrorCode::MissingField,
        "required field `order_id` is missing",
    ))
    .connector(Connector::sink(SPOOL_KEY, "spool test", "0.1.0"))
    .build()
    .unwrap()
}

/// Not a test: the runtime process that the spool test starts while the
/// server is down and kills with SIGKILL once its dead letters are spooled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a helper process of dead_letters_spooled_by_a_killed_runtime_reach_the_dlq_after_restart"]
async fn spool_helper_process() {
    let Ok(spec) = std::env::var(SPOOL_HELPER_ENV) else {
        return;
    };
    let [address, username, password, spool_dir, stream, count]: [String; 6] = spec
        .split('\n')
        .map(str::to_owned)
        .collect::<Vec<_>>()
        .try_into()
        .expect("six lines");
    let count: u64 = count.parse().unwrap();
    let settings = ConnectionSettings {
        address,
        username,
        password,
        ..ConnectionSettings::default()
    };
    let registry = Registry::default();
    let (spool, _) = Spool::open(Path::new(&spool_dir).join(format!("{SPOOL_KEY}.spool"))).unwrap();
    let transport = IggyDlqTransport::new(settings, stream.clone(), "orders-dlq".into(), None);
    let producer = DlqProducer::start(
        iggy_dlq_runtime::dlq::Destination::Iggy {
            transport: Box::new(transport),
            spool,
        },
        DlqProducerConfig {
            batch_length: 10,
            max_retries: 1,
            retry_backoff: Duration::from_millis(10),
            ..DlqProducerConfig::default()
        },
        registry.connector(SPOOL_KEY),
    );
    let route = DlqRoute::new(
        RouteConfig {
            connector_key: SPOOL_KEY.into(),
            max_message_size: 1024 * 1024,
            payload_policy: iggy_dlq_envelope::PayloadPolicy::Truncate,
            enqueue_timeout: None,
            runtime_instance_id: "live-test".into(),
        },
        producer.sender(),
        &registry,
    );
    let (tracker, _) = route.begin_batch();
    for offset in 0..count {
        let status = route.submit_envelope(spooled_envelope(&stream, offset), None);
        assert_eq!(status, DlqStatus::Accepted);
    }
    assert_eq!(tracker.wait().await, 0, "every dead letter is durable");
    let spooled = ConnectorMetrics::get(&registry.connector(SPOOL_KEY).spooled);
    println!("{SPOOLED_MARKER} {spooled}");
    // Wait to be killed, as a runtime would run on.
    tokio::time::sleep(Duration::from_secs(600)).await;
    drop(producer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_spooled_by_a_killed_runtime_reach_the_dlq_after_restart() {
    let Some(mut server) = IggyServer::find_restartable("live_runtime::killed_with_spool") else {
        return;
    };
    const N: u64 = 50;
    let dir = tempfile::tempdir().unwrap();
    let spool_dir = dir.path().join("spool");
    let stream = unique_name("spool");
    {
        let connection = connect(&server).await;
        connection
            .ensure_topic(&stream, "orders-dlq", 1, true)
            .await
            .unwrap();
        connection.close().await;
    }
    tokio::task::block_in_place(|| server.stop());

    // The runtime, in a process of its own, spools while Iggy is down...
    let started = Instant::now();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "spool_helper_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            SPOOL_HELPER_ENV,
            [
                server.address(),
                server.username(),
                server.password(),
                &spool_dir.display().to_string(),
                &stream,
                &N.to_string(),
            ]
            .join("\n"),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // libtest prints `test spool_helper_process ... ` before the
            // helper's own output on the same line.
            if let Some(n) = line.split_once(SPOOLED_MARKER).map(|(_, n)| n) {
                let _ = tx.send(n.trim().parse::<u64>().unwrap_or(0));
                return;
            }
        }
    });
    let spooled = rx.recv_timeout(Duration::from_secs(120));
    // ...and is killed, with no chance to flush anything.
    child.kill().unwrap();
    let _ = child.wait();
    let spooled = spooled.expect("the helper spooled its dead letters while Iggy was down");
    assert_eq!(spooled, N, "every dead letter went to the spool");
    let spool_path = spool_dir.join(format!("{SPOOL_KEY}.spool"));
    let (on_disk, _) = read_records(&spool_path, 0, usize::MAX).unwrap();
    assert_eq!(on_disk.len() as u64, N, "the spool survived SIGKILL");
    let spooled_in = started.elapsed();

    // The server comes back and the runtime starts again: the spool drains.
    tokio::task::block_in_place(|| server.start());
    let settings = server.settings();
    let connection = connect(&server).await;
    let registry = Registry::default();
    let (producer, _route): (DlqProducer, Arc<DlqRoute>) = start_dlq(
        SPOOL_KEY,
        &spool_dlq_config(&stream),
        Some((&settings, &connection)),
        &spool_dir,
        "live-test",
        &registry,
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut records = Vec::new();
    while (records.len() as u64) < N && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        records = read_all(&connection, &stream, "orders-dlq").await.unwrap();
    }
    let report = producer.shutdown().await;
    let envelopes = dead_letters(&records);
    assert_eq!(
        origin_offsets(&envelopes),
        (0..N).collect::<Vec<_>>(),
        "every spooled dead letter reached the DLQ topic, once, in order"
    );
    assert_eq!(envelopes[7].payload, payload(7), "unchanged by the spool");
    assert_eq!(
        envelopes[7].failure.as_ref().map(|f| f.reason.as_str()),
        Some("required field `order_id` is missing")
    );
    assert_eq!(report.drained, N);
    assert_eq!(report.spool_pending_bytes, 0);
    eprintln!(
        "live_runtime: {N} dead letters spooled while the server was down (in {spooled_in:.2?}), \
         runtime killed, all {N} in the DLQ topic after the restart ({:.2?} in all)",
        started.elapsed()
    );
}

// ---- consumer group members left over from a server restart ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_with_members_left_over_from_a_restart_is_recreated_with_its_offsets() {
    let Some(mut server) = IggyServer::find_restartable("live_runtime::stale_group_members") else {
        return;
    };
    let stream = unique_name("stale");
    let before = connect(&server).await;
    produce(&before, &stream, "orders", 100).await;
    assert!(matches!(
        before.join_group(&stream, "orders", "g").await.unwrap(),
        GroupJoin::Joined
    ));
    let polled = before.poll_group(&stream, "orders", "g", 50).await.unwrap();
    assert_eq!(polled.messages.len(), 50);
    before.commit(&stream, "orders", "g", 0, 41).await.unwrap();

    // The restart ends `before`'s session but not its membership: the server
    // still shows a member holding partition 0.
    tokio::task::block_in_place(|| server.stop());
    tokio::task::block_in_place(|| server.start());
    let after = connect(&server).await;
    let members = after.group_members(&stream, "orders", "g").await.unwrap();
    assert_eq!(
        members.as_deref().map(<[_]>::len),
        Some(1),
        "this server keeps the member of the session from before the restart: {members:?}"
    );

    match after.join_group(&stream, "orders", "g").await.unwrap() {
        GroupJoin::Repaired(repair) => {
            assert_eq!(repair.stale_members, 1);
            assert_eq!(repair.restored_offsets, vec![(0, 41)]);
        }
        other => panic!("expected the group to be repaired, got {other:?}"),
    }
    assert_eq!(
        after.group_members(&stream, "orders", "g").await.unwrap(),
        Some(vec![GroupMember {
            id: 0,
            partitions: vec![0]
        }]),
        "one member, the live one, with the partition"
    );
    assert_eq!(
        after
            .committed_offset(&stream, "orders", "g", 0)
            .await
            .unwrap(),
        Some(41),
        "the committed offset survives the repair"
    );
    let next = after.poll_group(&stream, "orders", "g", 10).await.unwrap();
    assert_eq!(
        next.messages.iter().map(|m| m.offset).collect::<Vec<_>>(),
        (42..52).collect::<Vec<_>>(),
        "the group goes on after its committed offset"
    );

    // A second live member is not stale: joining beside it repairs nothing.
    let beside = connect(&server).await;
    assert!(matches!(
        beside.join_group(&stream, "orders", "g").await.unwrap(),
        GroupJoin::Joined
    ));
    assert_eq!(
        after
            .group_members(&stream, "orders", "g")
            .await
            .unwrap()
            .map(|m| m.len()),
        Some(2)
    );
    beside.close().await;
    after.close().await;
}

// ---- replaying dead letters ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_dead_letters_reach_the_sink_again_and_a_second_failure_is_counted() {
    let Some(server) = IggyServer::find("live_runtime::replay") else {
        return;
    };
    const N: u64 = 1_000;
    let setup = Setup::new("replay");
    let connection = connect(&server).await;
    produce(&connection, &setup.stream, "orders", N).await;
    let plugin = fixture_plugin("json_sink");

    // 1. A run that requires order_id: 5 not JSON, 5 without order_id.
    let (stop, stop_rx) = watch::channel(false);
    let run = tokio::spawn(app::run(setup.config(&server, &plugin), stop_rx));
    setup
        .stop_when_committed(&connection, N - 1, stop, run, Duration::from_secs(120))
        .await;
    let dlq = read_all(&connection, &setup.stream, "orders-dlq")
        .await
        .unwrap();
    assert_eq!(dlq.len(), 10);

    // 2. The sink is fixed (order_id no longer required): replay the missing
    //    field ones, and the not-JSON ones too, which are still broken.
    let destination = Destination::default();
    let missing = ReplayFilter {
        codes: vec![ErrorCode::MissingField],
        ..ReplayFilter::default()
    };
    let plan = replay::plan(&dlq, &missing, &destination, None);
    assert_eq!(plan.replays.len(), 5);
    assert_eq!(plan.skipped(Skip::NotMatching), 5);
    let report = replay::send(&connection, &plan).await.unwrap();
    assert_eq!(
        report.sent,
        BTreeMap::from([((setup.stream.clone(), "orders".to_owned(), 0), 5)])
    );
    let broken = ReplayFilter {
        codes: vec![ErrorCode::MalformedPayload],
        ..ReplayFilter::default()
    };
    let plan = replay::plan(&dlq, &broken, &destination, None);
    assert_eq!(replay::send(&connection, &plan).await.unwrap().total(), 5);

    let before = std::fs::read_to_string(setup.target())
        .unwrap()
        .lines()
        .count();
    let (stop, stop_rx) = watch::channel(false);
    let run = tokio::spawn(app::run(
        setup.config_with(&server, &plugin, "", ""),
        stop_rx,
    ));
    setup
        .stop_when_committed(&connection, N + 9, stop, run, Duration::from_secs(120))
        .await;

    // The fixed sink wrote the 5 replayed orders, byte for byte as JSON.
    let target = std::fs::read_to_string(setup.target()).unwrap();
    let written: Vec<serde_json::Value> = target
        .lines()
        .skip(before)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let missing_offsets: Vec<u64> = (0..N)
        .filter(|&i| poison(i) == Some(Poison::MissingOrderId))
        .collect();
    let expected: Vec<serde_json::Value> = missing_offsets
        .iter()
        .map(|&i| serde_json::from_slice(&payload(i)).unwrap())
        .collect();
    assert_eq!(written, expected);

    // The still-broken ones failed again: 5 new dead letters, at their new
    // offsets, that know they were replayed once.
    let dlq = read_all(&connection, &setup.stream, "orders-dlq")
        .await
        .unwrap();
    assert_eq!(dlq.len(), 15);
    let again = dead_letters(&dlq[10..]);
    assert_eq!(origin_offsets(&again), (N + 5..N + 10).collect::<Vec<_>>());
    let not_json: Vec<u64> = (0..N)
        .filter(|&i| poison(i) == Some(Poison::NotJson))
        .collect();
    for (envelope, original) in again.iter().zip(&not_json) {
        assert_eq!(envelope.replay_count, 1);
        assert_eq!(envelope.payload, payload(*original));
        assert_eq!(
            envelope.failure.as_ref().unwrap().code(),
            ErrorCode::MalformedPayload
        );
    }

    // 3. With at most one replay, they are not sent round again.
    let once = ReplayFilter {
        max_replays: 1,
        ..ReplayFilter::default()
    };
    let plan = replay::plan_from(10, &dlq[10..], &once, &destination, None);
    assert!(plan.replays.is_empty());
    assert_eq!(plan.skipped(Skip::ReplayedTooOften), 5);
    assert_eq!(plan.next_index, 15);
}

// ---- a source, from its config file to the Iggy topics ----

/// Line `n` of the source tests' input: every tenth is garbage, the others
/// JSON or `key=value`.
fn source_line(n: u64) -> String {
    if n.is_multiple_of(10) {
        format!("garbage line {n}")
    } else if n.is_multiple_of(2) {
        format!("sku=item-{n}")
    } else {
        format!("{{\"line\":{n}}}")
    }
}

/// What lines-source produces for a good line `n`.
fn source_json(n: u64) -> serde_json::Value {
    if n.is_multiple_of(2) {
        serde_json::json!({ "sku": format!("item-{n}") })
    } else {
        serde_json::json!({ "line": n })
    }
}

/// Writes `lines` input lines, the target topic `items` and the runtime's
/// config files for the lines-source fixture into `dir`; returns the config.
async fn source_setup(
    server: &IggyServer,
    connection: &IggyConnection,
    dir: &Path,
    stream: &str,
    lines: u64,
) -> Config {
    let text: String = (1..=lines).map(|n| source_line(n) + "\n").collect();
    std::fs::write(dir.join("items.txt"), text).unwrap();
    // The target topic exists already: a source never creates it.
    connection
        .ensure_topic(stream, "items", 1, true)
        .await
        .unwrap();
    write_runtime_config(dir, server, "state/spool");
    std::fs::write(
        dir.join("connectors/items.toml"),
        format!(
            r#"type = "source"
key = "items"
name = "Items from a text file"
path = "{plugin}"
[[streams]]
stream = "{stream}"
topic = "items"
[plugin_config]
path = "{input}"
batch_size = 25
stream = "{stream}"
topic = "items"
[dlq]
stream = "{stream}"
topic = "items-dlq"
send_timeout = "1s"
send_retries = 1
"#,
            plugin = fixture_plugin("lines_source").display(),
            input = dir.join("items.txt").display(),
        ),
    )
    .unwrap();
    Config::load(&dir.join("config.toml")).unwrap()
}

/// Waits until the topic `items` holds `count` messages.
async fn wait_for_items(
    connection: &IggyConnection,
    stream: &str,
    count: u64,
    run: &tokio::task::JoinHandle<Result<RunReport, app::RunError>>,
) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let produced = read_all(connection, stream, "items")
            .await
            .map_or(0, |m| m.len() as u64);
        if produced >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{produced} of {count} lines produced"
        );
        assert!(!run.is_finished(), "the runtime stopped early");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What the source tests expect of `lines` input lines: the good ones as
/// produced, and the positions of the bad ones.
fn source_expected(lines: u64) -> (Vec<serde_json::Value>, Vec<String>) {
    let produced = (1..=lines)
        .filter(|n| !n.is_multiple_of(10))
        .map(source_json)
        .collect();
    let bad = (1..=lines)
        .filter(|n| n.is_multiple_of(10))
        .map(|n| format!("line:{n}"))
        .collect();
    (produced, bad)
}

/// What a source test's run left: the messages of `items` and the dead
/// letters of `items-dlq`.
async fn source_results(
    connection: &IggyConnection,
    stream: &str,
) -> (Vec<serde_json::Value>, Vec<DlqEnvelope>) {
    let produced = read_all(connection, stream, "items")
        .await
        .unwrap()
        .iter()
        .map(|p| serde_json::from_slice(p).unwrap())
        .collect();
    let dlq = read_all(connection, stream, "items-dlq").await.unwrap();
    (produced, dead_letters(&dlq))
}

/// The source positions of `envelopes`.
fn positions(envelopes: &[DlqEnvelope]) -> Vec<String> {
    envelopes
        .iter()
        .map(|e| String::from_utf8_lossy(&e.source_origin().unwrap().position).into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_produces_its_good_lines_to_iggy_and_dead_letters_the_rest_to_its_dlq() {
    let Some(server) = IggyServer::find("live_runtime::source") else {
        return;
    };
    const LINES: u64 = 300;
    let dir = tempfile::tempdir().unwrap();
    let stream = unique_name("source");
    let connection = connect(&server).await;
    let config = source_setup(&server, &connection, dir.path(), &stream, LINES).await;

    let (stop, stop_rx) = watch::channel(false);
    let run = tokio::spawn(app::run(config, stop_rx));
    let good = LINES - LINES / 10;
    wait_for_items(&connection, &stream, good, &run).await;
    // A little longer, to see that nothing more comes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.send(true).unwrap();
    let report = run.await.unwrap().unwrap();
    assert!(
        report.connector_errors.is_empty(),
        "{:?}",
        report.connector_errors
    );

    let (produced, envelopes) = source_results(&connection, &stream).await;
    let (expected, bad) = source_expected(LINES);
    assert_eq!(produced, expected, "every good line, once, in order");
    assert_eq!(positions(&envelopes), bad, "every bad line, once, in order");
    for envelope in &envelopes {
        let origin = envelope.source_origin().unwrap();
        assert_eq!(
            (origin.target_stream.as_str(), origin.target_topic.as_str()),
            (stream.as_str(), "items")
        );
        assert_eq!(envelope.connector.as_ref().unwrap().key, "items");
    }
    let state = std::fs::read(dir.path().join("state/items.state")).unwrap();
    assert_eq!(
        state,
        LINES.to_le_bytes(),
        "the source's position is saved: every line handled"
    );
    assert_eq!(metric(&report, "items", |m| &m.written), good);
    assert_eq!(metric(&report, "items", |m| &m.dlq_confirmed), LINES / 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_rides_out_a_server_outage_without_losing_a_line() {
    let Some(mut server) = IggyServer::find_restartable("live_runtime::source_outage") else {
        return;
    };
    const LINES: u64 = 4_000;
    let dir = tempfile::tempdir().unwrap();
    let stream = unique_name("source-outage");
    let connection = connect(&server).await;
    let config = source_setup(&server, &connection, dir.path(), &stream, LINES).await;

    let (stop, stop_rx) = watch::channel(false);
    let run = tokio::spawn(app::run(config, stop_rx));
    wait_for_items(&connection, &stream, 500, &run).await;
    let at_stop = read_all(&connection, &stream, "items").await.unwrap().len();
    connection.close().await;
    tokio::task::block_in_place(|| server.stop());
    tokio::time::sleep(Duration::from_secs(3)).await;
    tokio::task::block_in_place(|| server.start());
    let connection = connect(&server).await;
    let good = LINES - LINES / 10;
    wait_for_items(&connection, &stream, good, &run).await;
    let state_path = dir.path().join("state/items.state");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read(&state_path).ok().as_deref() != Some(&LINES.to_le_bytes()[..]) {
        assert!(
            Instant::now() < deadline,
            "the source did not finish its input"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    let report = run.await.unwrap().unwrap();
    assert!(
        report.connector_errors.is_empty(),
        "{:?}",
        report.connector_errors
    );

    // Every good line at least once; a repeat only from a batch whose
    // acknowledgement the outage cut (at least once).
    let (produced, envelopes) = source_results(&connection, &stream).await;
    let (expected, bad) = source_expected(LINES);
    let missing: Vec<&serde_json::Value> =
        expected.iter().filter(|e| !produced.contains(e)).collect();
    assert!(missing.is_empty(), "lines lost in the outage: {missing:?}");
    let duplicates = produced.len() - expected.len();
    assert!(
        duplicates <= 25,
        "{duplicates} duplicates, more than a batch"
    );

    let positions = positions(&envelopes);
    let lost: Vec<&String> = bad.iter().filter(|p| !positions.contains(p)).collect();
    assert!(lost.is_empty(), "dead letters lost in the outage: {lost:?}");
    eprintln!(
        "live_runtime: source outage after {at_stop} lines: {LINES} lines, {} produced \
         ({duplicates} duplicates), {} dead letters, spooled {}, drained {}",
        produced.len(),
        positions.len(),
        metric(&report, "items", |m| &m.spooled),
        metric(&report, "items", |m| &m.drained),
    );
}

// ---- the iggy-dlq binary: SIGTERM, and the DLQ tools on a topic ----

fn iggy_dlq(args: &[&str]) -> std::process::Output {
    Command::new(iggy_dlq_tests::iggy_dlq_binary())
        .args(args)
        .env("IGGY_DLQ_LOG", "warn")
        .output()
        .unwrap()
}

fn connection_string(server: &IggyServer) -> String {
    format!(
        "iggy://{}:{}@{}",
        server.username(),
        server.password(),
        server.address()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_iggy_dlq_run_between_batches_and_a_second_run_finishes_exactly() {
    let Some(server) = IggyServer::find("live_runtime::sigterm") else {
        return;
    };
    const N: u64 = 20_000;
    let setup = Setup::new("sigterm");
    let connection = connect(&server).await;
    produce(&connection, &setup.stream, "orders", N).await;
    let _ = setup.config(&server, &fixture_plugin("json_sink"));
    let config_path = setup.dir.path().join("config.toml");

    let run = || {
        let mut child = Command::new(iggy_dlq_tests::iggy_dlq_binary())
            .args(["run", "--config", config_path.to_str().unwrap()])
            .env("IGGY_DLQ_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        (child.id(), child.stderr.take(), child)
    };

    // 1. SIGTERM once a fifth of the messages are through.
    let (pid, stderr, mut child) = run();
    let deadline = Instant::now() + Duration::from_secs(120);
    while setup.target_ids().len() < 4_000 {
        assert!(Instant::now() < deadline, "no progress");
        assert!(child.try_wait().unwrap().is_none(), "iggy-dlq run exited");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let status = tokio::task::block_in_place(|| child.wait()).unwrap();
    let mut log = String::new();
    std::io::Read::read_to_string(&mut stderr.unwrap(), &mut log).unwrap();
    assert!(
        status.success(),
        "iggy-dlq run after SIGTERM: {status}\n{log}"
    );
    assert!(
        log.contains("connector orders:") && log.contains("commits"),
        "the counters are printed on shutdown:\n{log}"
    );

    // Everything written is committed and nothing committed is missing: the
    // batch under way was finished and committed before the exit.
    let committed = setup.committed(&connection).await.expect("a commit");
    assert!(committed < N - 1, "SIGTERM came too late to test anything");
    let good_until =
        |last: u64| -> Vec<u64> { (0..=last).filter(|&i| poison(i).is_none()).collect() };
    assert_eq!(setup.target_ids(), good_until(committed));
    let dlq = setup.dead_letters(&connection).await;
    let bad_until =
        |last: u64| -> Vec<u64> { (0..=last).filter(|&i| poison(i).is_some()).collect() };
    assert_eq!(origin_offsets(&dlq), bad_until(committed));

    // 2. A second run goes on from the commit: together, exactly once. Its
    //    stderr is closed, as by a supervisor that went away: the counters
    //    it prints at the end must not turn a clean stop into a panic.
    let (pid, stderr, mut child) = run();
    drop(stderr);
    let deadline = Instant::now() + Duration::from_secs(120);
    while setup.committed(&connection).await != Some(N - 1) {
        assert!(Instant::now() < deadline, "the second run did not finish");
        assert!(child.try_wait().unwrap().is_none(), "iggy-dlq run exited");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    let status = tokio::task::block_in_place(|| child.wait()).unwrap();
    assert!(
        status.success(),
        "iggy-dlq run after SIGINT, with its stderr closed: {status}"
    );
    assert_eq!(setup.target_ids(), good_until(N - 1), "no duplicates");
    let dlq = setup.dead_letters(&connection).await;
    assert_eq!(origin_offsets(&dlq), bad_until(N - 1), "no duplicates");
    eprintln!(
        "live_runtime: SIGTERM after offset {committed} of {N}; two runs wrote every message once"
    );

    // 3. The DLQ tools on the topic.
    let address = connection_string(&server);
    let topic = ["--stream", setup.stream.as_str(), "--topic", "orders-dlq"];
    let out = iggy_dlq(&[&["inspect", address.as_str()][..], &topic[..]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 200);
    let out = iggy_dlq(&[&["stats", address.as_str()][..], &topic[..]].concat());
    let stats = String::from_utf8_lossy(&out.stdout);
    assert!(stats.starts_with("200 dead letters"), "{stats}");
    assert!(
        stats.contains("100  connector_process / missing_field"),
        "{stats}"
    );
    assert!(
        stats.contains("100  runtime_decode / malformed_payload"),
        "{stats}"
    );

    // Replay the missing-field ones into a retry topic: refused, and nothing
    // sent, until the topic exists.
    let replay = |extra: &[&str]| {
        iggy_dlq(
            &[
                &["replay", address.as_str()][..],
                &topic[..],
                &["--code", "missing_field", "--to-topic", "orders-retry"][..],
                extra,
            ]
            .concat(),
        )
    };
    let out = replay(&[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nothing replayed") && err.contains("orders-retry"),
        "{err}"
    );
    connection
        .ensure_topic(&setup.stream, "orders-retry", 1, true)
        .await
        .unwrap();
    let out = replay(&["--limit", "60"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains(&format!(
            "replayed 60 to {}/orders-retry partition 0",
            setup.stream
        )),
        "{printed}"
    );
    let next: usize = printed
        .rsplit("--skip ")
        .next()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no resume point in:\n{printed}"));
    let skip = next.to_string();
    let out = replay(&["--skip", skip.as_str()]);
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains(&format!(
            "replayed 40 to {}/orders-retry partition 0",
            setup.stream
        )),
        "going on from --skip {next} replays the rest:\n{printed}"
    );
    let retried = read_all(&connection, &setup.stream, "orders-retry")
        .await
        .unwrap();
    let missing: Vec<Bytes> = (0..N)
        .filter(|&i| poison(i) == Some(Poison::MissingOrderId))
        .map(payload)
        .collect();
    assert_eq!(retried, missing, "each once, in DLQ order");
}
