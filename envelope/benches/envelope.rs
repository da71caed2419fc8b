//! What an envelope costs: building and encoding one, decoding it (against
//! plain prost and against the same content as canonical JSON), and cutting
//! a large payload to a size budget.
//!
//! In each group, the benchmark named `baseline_*` is what the others are
//! compared with; `tests/bench.sh` prints the ratios.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use iggy_dlq_envelope::{
    Connector, Decoder, DlqEnvelope, ErrorCode, Failure, FailureStage, Header, HeaderValue,
    PayloadPolicy, PayloadSchema, SinkOrigin, decode,
};
use prost::Message;
use sha2::{Digest, Sha256};

/// A typical dead letter: a sink origin with every field set, two headers,
/// a failure with a one-line reason, and `payload`.
fn envelope(payload: Bytes) -> DlqEnvelope {
    let mut origin = SinkOrigin::new("orders", "created", 3, 4_711, u128::MAX - 17);
    origin.checksum = 0x1234_5678;
    origin.timestamp_micros = 1_700_000_000_000_000;
    origin.origin_timestamp_micros = 1_699_999_999_999_000;
    origin.consumer_group = "postgres-sink".into();
    DlqEnvelope::for_sink(origin)
        .payload(payload, PayloadSchema::Json)
        .header(Header::new(
            HeaderValue::from("tenant"),
            HeaderValue::from("acme"),
        ))
        .header(Header::new(
            HeaderValue::from("attempt"),
            HeaderValue::Uint64(1),
        ))
        .failure(Failure::new(
            FailureStage::ConnectorProcess,
            ErrorCode::MalformedPayload,
            "EOF while parsing an object at line 1 column 1024",
        ))
        .connector(Connector::sink(
            "orders-to-postgres",
            "Orders to Postgres",
            "0.1.0",
        ))
        .build()
        .expect("the benchmark envelope is valid")
}

/// `len` bytes of JSON-looking text.
fn payload(len: usize) -> Bytes {
    let pattern = b"{\"id\": 1, \"note\": \"abcdefghij\"} ";
    Bytes::from(
        (0..len)
            .map(|i| pattern[i % pattern.len()])
            .collect::<Vec<u8>>(),
    )
}

fn build_and_encode(c: &mut Criterion) {
    let payload = payload(1024);
    let mut group = c.benchmark_group("envelope_build_encode_1k");
    group.throughput(Throughput::Elements(1));
    group.bench_function("build_encode", |b| {
        b.iter(|| black_box(envelope(black_box(payload.clone())).encode_to_bytes()))
    });
    group.finish();
}

fn decoding(c: &mut Criterion) {
    let original = envelope(payload(1024));
    let bytes = original.encode_to_bytes();
    let json = serde_json::to_string(&original.to_canonical_json()).expect("JSON serializes");
    let mut group = c.benchmark_group("envelope_decode_1k");
    group.throughput(Throughput::Elements(1));
    // prost alone: no size check, no validation; zero-copy like `decode`.
    group.bench_function("baseline_prost_decode", |b| {
        b.iter(|| black_box(DlqEnvelope::decode(black_box(bytes.clone())).unwrap()))
    });
    group.bench_function("decode", |b| {
        b.iter(|| black_box(decode(black_box(bytes.clone())).unwrap()))
    });
    let unvalidated = Decoder::new().validate(false);
    group.bench_function("decode_without_validation", |b| {
        b.iter(|| black_box(unvalidated.decode(black_box(bytes.clone())).unwrap()))
    });
    // The same envelope as canonical protobuf JSON (payload in base64).
    group.bench_function("serde_json_decode", |b| {
        b.iter(|| black_box(serde_json::from_str::<DlqEnvelope>(black_box(&json)).unwrap()))
    });
    group.finish();
}

fn fitting(c: &mut Criterion) {
    const PAYLOAD: usize = 1024 * 1024;
    const BUDGET: usize = 64 * 1024;
    let large = envelope(payload(PAYLOAD));
    let mut group = c.benchmark_group("envelope_fit_1m_to_64k");
    group.throughput(Throughput::Bytes(PAYLOAD as u64));
    // A cut records the SHA-256 of the original payload; hashing it is the
    // floor of what a cut can cost.
    group.bench_function("baseline_sha256_1m", |b| {
        b.iter(|| black_box(Sha256::digest(black_box(&large.payload[..]))))
    });
    group.bench_function("fit_to_truncate", |b| {
        b.iter_batched(
            || large.clone(),
            |envelope| black_box(envelope.fit_to(BUDGET, PayloadPolicy::Truncate).unwrap()),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, build_and_encode, decoding, fitting);
criterion_main!(benches);
