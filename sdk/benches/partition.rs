//! What the DLQ costs a sink on its happy path: `DlqWriter::partition` over
//! a batch of 1,000 messages, against the same loop without any DLQ.
//!
//! With no failures the two should take the same time: a batch without
//! failures costs the DLQ nothing. With 1% failures the difference is the
//! price of 10 dead letters (envelope built, encoded, handed to a callback
//! that only counts them).
//!
//! In each group, the benchmark named `baseline_*` is what the others are
//! compared with; `tests/bench.sh` prints the ratios.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use iggy_dlq_sdk::DlqWriter;
use iggy_dlq_sdk::abi::{MessagesMetadata, RawMessage, Schema, TopicMetadata, UserHeaders};
use iggy_dlq_sdk::iggy_dlq_envelope::Connector;

const BATCH: usize = 1_000;

static DEAD_LETTERS: AtomicU64 = AtomicU64::new(0);

/// A runtime's DLQ callback that takes every dead letter and only counts it.
extern "C" fn count(_plugin_id: u32, _envelope: *const u8, envelope_len: usize) -> i32 {
    black_box(envelope_len);
    DEAD_LETTERS.fetch_add(1, Ordering::Relaxed);
    0
}

/// A batch of JSON messages with one header each; every `fail_every`-th
/// payload is not UTF-8 (0: none is).
fn batch(fail_every: usize) -> Vec<RawMessage> {
    let mut headers = UserHeaders::new();
    headers.insert("tenant".into(), "acme".into());
    let headers = iggy_dlq_sdk::abi::to_bytes("headers", &headers).expect("headers encode");
    (0..BATCH)
        .map(|i| {
            let mut payload =
                format!("{{\"order_id\": {i}, \"customer\": \"c-{i:06}\", \"amount\": 12.5}}")
                    .into_bytes();
            if fail_every != 0 && i % fail_every == fail_every - 1 {
                payload[0] = 0xff;
            }
            RawMessage {
                id: i as u128,
                offset: i as u64,
                checksum: 0,
                timestamp: 1_700_000_000_000_000,
                origin_timestamp: 1_700_000_000_000_000,
                headers: headers.clone(),
                payload,
            }
        })
        .collect()
}

/// The connector's own work on one message: a light one, so that any cost
/// of the DLQ would show.
fn process(message: &RawMessage) -> Result<usize, &'static str> {
    std::str::from_utf8(&message.payload)
        .map(str::len)
        .map_err(|_| "payload is not UTF-8")
}

/// The same loop a connector without any DLQ writes: keep the successes,
/// count the failures.
fn without_dlq(messages: &[RawMessage]) -> (Vec<usize>, usize) {
    let mut succeeded = Vec::with_capacity(messages.len());
    let mut failed = 0;
    for message in messages {
        match process(message) {
            Ok(value) => succeeded.push(value),
            Err(_) => failed += 1,
        }
    }
    (succeeded, failed)
}

fn partition(c: &mut Criterion) {
    let topic = TopicMetadata {
        stream: "orders".into(),
        topic: "created".into(),
    };
    let metadata = MessagesMetadata {
        partition_id: 1,
        current_offset: 0,
        schema: Schema::Json,
    };
    let writer = DlqWriter::with_callback(1, Connector::sink("bench", "Bench", "0.1.0"), count);
    for (group_name, fail_every) in [
        ("sdk_partition_1000_no_failures", 0),
        ("sdk_partition_1000_1pct_failures", 100),
    ] {
        let messages = batch(fail_every);
        let check = writer.partition(&topic, &metadata, &messages, process);
        assert!(
            check.undelivered.is_empty(),
            "the counting DLQ takes every failure"
        );
        assert_eq!(
            check.dead_lettered,
            BATCH.checked_div(fail_every).unwrap_or(0)
        );
        let mut group = c.benchmark_group(group_name);
        group.throughput(Throughput::Elements(BATCH as u64));
        group.bench_function("baseline_without_dlq", |b| {
            b.iter(|| black_box(without_dlq(black_box(&messages))))
        });
        group.bench_function("partition", |b| {
            b.iter(|| black_box(writer.partition(&topic, &metadata, black_box(&messages), process)))
        });
        group.finish();
    }
}

criterion_group!(benches, partition);
criterion_main!(benches);
