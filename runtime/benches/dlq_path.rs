//! What the runtime's DLQ path costs: `DlqRoute::submit` of one encoded
//! envelope into the producer's queue, `DlqFileWriter::append` of 100
//! envelopes to the file target, and `replay::plan` of 1,000 dead letters
//! (decode, filter, rebuild the message with its headers) against decoding
//! them alone.
//!
//! In each group, the benchmark named `baseline_*` is what the others are
//! compared with; `tests/bench.sh` prints the ratios. The file benchmarks
//! are bound by the disk's `fdatasync`, so their figures say more about the
//! machine than about the code.

use std::fs::File;
use std::hint::black_box;
use std::io::Write as _;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use iggy_dlq_envelope::{
    Connector, DlqEnvelope, ErrorCode, Failure, FailureStage, PayloadPolicy, PayloadSchema,
    SinkOrigin, dlq_file,
};
use iggy_dlq_runtime::dlq::{DeadLetter, DlqFileWriter, DlqRoute, DlqStatus, RouteConfig};
use iggy_dlq_runtime::metrics::Registry;
use iggy_dlq_runtime::replay::{self, Destination, ReplayFilter};

/// One encoded dead letter with a 1 KiB payload.
fn encoded_envelope(offset: u64) -> Bytes {
    DlqEnvelope::for_sink(SinkOrigin::new("orders", "created", 1, offset, 42))
        .payload(Bytes::from(vec![b'x'; 1024]), PayloadSchema::Raw)
        .failure(Failure::new(
            FailureStage::ConnectorProcess,
            ErrorCode::MalformedPayload,
            "EOF while parsing an object",
        ))
        // Key and instance id as the route's own: the route passes the
        // plugin's bytes through without re-encoding.
        .connector(
            Connector::sink("bench", "Bench", "0.1.0").with_runtime_instance_id("bench-runtime"),
        )
        .build()
        .expect("the benchmark envelope is valid")
        .encode_to_bytes()
}

fn submit(c: &mut Criterion) {
    let bytes = encoded_envelope(7);
    let (tx, rx) = flume::unbounded();
    let route = DlqRoute::new(
        RouteConfig {
            connector_key: "bench".into(),
            max_message_size: 1024 * 1024,
            payload_policy: PayloadPolicy::Truncate,
            enqueue_timeout: None,
            runtime_instance_id: "bench-runtime".into(),
        },
        tx.clone(),
        &Registry::default(),
    );
    let (tracker, _) = route.begin_batch();
    assert_eq!(route.submit(&bytes), DlqStatus::Accepted);
    rx.try_recv()
        .expect("queued")
        .tracker
        .expect("tracked")
        .confirm(true);
    let mut group = c.benchmark_group("runtime_route_submit_1k");
    group.throughput(Throughput::Elements(1));
    // What submit cannot avoid: copy the bytes out of the plugin's buffer
    // and queue them. The producer's side (receive) is in both.
    group.bench_function("baseline_copy_and_queue", |b| {
        b.iter(|| {
            tracker.add();
            let letter = DeadLetter {
                bytes: Bytes::copy_from_slice(black_box(&bytes[..])),
                partition_key: 1,
                tracker: Some(tracker.clone()),
            };
            tx.send(letter).expect("the receiver is alive");
            let letter = rx.try_recv().expect("just queued");
            letter.tracker.as_ref().expect("tracked").confirm(true);
            black_box(letter)
        })
    });
    // Decode, validate, check the size, track the batch, queue.
    group.bench_function("submit", |b| {
        b.iter(|| {
            let status = route.submit(black_box(&bytes[..]));
            let letter = rx.try_recv().expect("just queued");
            letter.tracker.as_ref().expect("tracked").confirm(true);
            black_box((status, letter))
        })
    });
    group.finish();
}

/// Runs `append` `iterations` times on a file, emptying it now and then
/// (untimed) so that the benchmark does not fill the disk.
fn timed_appends(
    iterations: u64,
    file_len: impl Fn() -> u64,
    mut reset: impl FnMut(),
    mut append: impl FnMut(),
) -> Duration {
    const MAX_FILE_LEN: u64 = 64 * 1024 * 1024;
    let mut elapsed = Duration::ZERO;
    for _ in 0..iterations {
        if file_len() > MAX_FILE_LEN {
            reset();
        }
        let start = Instant::now();
        append();
        elapsed += start.elapsed();
    }
    elapsed
}

fn file_append(c: &mut Criterion) {
    const RECORDS: usize = 100;
    let envelopes: Vec<Bytes> = (0..RECORDS as u64).map(encoded_envelope).collect();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut group = c.benchmark_group("runtime_file_append_100");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.sample_size(20);

    // The same records, framed the same way, written without a sync: what
    // the file target would cost if an acknowledged dead letter were
    // allowed to be lost in a crash.
    let unsynced = std::cell::RefCell::new(
        File::options()
            .create(true)
            .append(true)
            .open(dir.path().join("unsynced.dlq"))
            .expect("open"),
    );
    let mut buf = Vec::new();
    group.bench_function("baseline_write_without_sync", |b| {
        b.iter_custom(|iterations| {
            timed_appends(
                iterations,
                || unsynced.borrow().metadata().map_or(0, |m| m.len()),
                || unsynced.borrow().set_len(0).expect("truncate"),
                || {
                    buf.clear();
                    for envelope in &envelopes {
                        dlq_file::encode_record(black_box(&envelope[..]), &mut buf);
                    }
                    unsynced.borrow_mut().write_all(&buf).expect("write");
                },
            )
        })
    });

    let (writer, _) = DlqFileWriter::open(dir.path().join("synced.dlq")).expect("open");
    let writer = std::cell::RefCell::new(writer);
    group.bench_function("append_with_fdatasync", |b| {
        b.iter_custom(|iterations| {
            timed_appends(
                iterations,
                || writer.borrow().len(),
                || writer.borrow_mut().reset().expect("reset"),
                || {
                    writer
                        .borrow_mut()
                        .append(envelopes.iter().map(|e| black_box(&e[..])))
                        .expect("append")
                },
            )
        })
    });
    group.finish();
}

fn replay_plan(c: &mut Criterion) {
    const RECORDS: usize = 1000;
    let records: Vec<Bytes> = (0..RECORDS as u64)
        .map(|offset| {
            DlqEnvelope::for_sink(SinkOrigin::new("orders", "created", 1, offset, 42))
                .payload(Bytes::from(vec![b'x'; 1024]), PayloadSchema::Json)
                .header(iggy_dlq_envelope::Header::new(
                    "tenant".into(),
                    iggy_dlq_envelope::HeaderValue::Uint64(offset),
                ))
                .failure(Failure::new(
                    FailureStage::ConnectorProcess,
                    if offset % 2 == 0 {
                        ErrorCode::MissingField
                    } else {
                        ErrorCode::MalformedPayload
                    },
                    "failed",
                ))
                .connector(Connector::sink("bench", "Bench", "0.1.0"))
                .build()
                .expect("the benchmark envelope is valid")
                .encode_to_bytes()
        })
        .collect();
    let mut group = c.benchmark_group("runtime_replay_plan_1k");
    group.throughput(Throughput::Elements(RECORDS as u64));
    let decoder = iggy_dlq_envelope::Decoder::new();
    group.bench_function("baseline_decode", |b| {
        b.iter(|| {
            for record in &records {
                black_box(decoder.decode(record.clone()).expect("valid"));
            }
        })
    });
    let half = ReplayFilter {
        codes: vec![ErrorCode::MissingField],
        ..ReplayFilter::default()
    };
    group.bench_function("plan_half_matching", |b| {
        b.iter(|| {
            black_box(replay::plan(
                black_box(&records),
                &half,
                &Destination::default(),
                None,
            ))
        })
    });
    group.finish();
}

criterion_group!(benches, submit, file_append, replay_plan);
criterion_main!(benches);
