//! The golden vectors: envelopes that cover every part of the schema, built
//! with fixed times so that their encoding never changes. The committed
//! `tests/vectors/NAME.bin` and `NAME.json` files are these, encoded; the
//! `generate-vectors` binary writes them, and the tests check that the
//! committed files still decode to the same JSON and re-encode to the same
//! bytes in Rust and in Google's Python `protobuf`.

use std::path::PathBuf;

use bytes::Bytes;
use iggy_dlq_envelope::{
    Connector, DlqEnvelope, ErrorCode, Failure, FailureStage, Header, HeaderValue, PayloadPolicy,
    PayloadSchema, SinkOrigin, SourceOrigin,
};

/// 2026-08-21T12:00:00Z in microseconds: every vector's write time.
pub const WRITTEN_AT: u64 = 1_787_313_600_000_000;

/// Where the committed vectors live.
pub fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

fn sink_connector() -> Connector {
    Connector::sink("orders-to-postgres", "Orders to Postgres", "0.3.1")
        .with_runtime_instance_id("runtime-7f3a")
}

fn full_sink_origin(message_id: u128) -> SinkOrigin {
    let mut origin = SinkOrigin::new("orders", "created", 3, 918_273, message_id);
    origin.stream_id = Some(1);
    origin.topic_id = Some(2);
    origin.checksum = 0xDEAD_BEEF_CAFE_F00D;
    origin.timestamp_micros = WRITTEN_AT - 2_000_000;
    origin.origin_timestamp_micros = WRITTEN_AT - 2_500_000;
    origin.consumer_group = "postgres-sink".into();
    origin
}

/// Every golden vector, by file stem.
///
/// # Panics
///
/// Never for the fixed inputs here; a panic means the envelope crate no
/// longer accepts an envelope it accepted before.
pub fn golden_vectors() -> Vec<(&'static str, DlqEnvelope)> {
    let every_kind = [
        HeaderValue::Raw(Bytes::from_static(&[0x00, 0xFF, 0x10])),
        HeaderValue::from("text value"),
        HeaderValue::Bool(true),
        HeaderValue::Int8(-128),
        HeaderValue::Int16(-32_768),
        HeaderValue::Int32(-2_147_483_648),
        HeaderValue::Int64(i64::MIN),
        HeaderValue::Int128(i128::MIN),
        HeaderValue::Uint8(255),
        HeaderValue::Uint16(65_535),
        HeaderValue::Uint32(u32::MAX),
        HeaderValue::Uint64(u64::MAX),
        HeaderValue::Uint128(u128::MAX),
        HeaderValue::Float32(1.5),
        HeaderValue::Float64(-0.125),
    ];
    let mut headers: Vec<Header> = every_kind
        .iter()
        .map(|v| {
            Header::new(
                HeaderValue::from(format!("{:?}", v.kind()).to_lowercase()),
                v.clone(),
            )
        })
        .collect();
    // Keys are typed too in Iggy: a numeric and a raw key.
    headers.push(Header::new(
        HeaderValue::Uint64(7),
        HeaderValue::from("numeric key"),
    ));
    headers.push(Header::new(
        HeaderValue::Raw(Bytes::from_static(b"\x01\x02")),
        HeaderValue::Bool(false),
    ));

    let malformed_json = DlqEnvelope::for_sink(full_sink_origin(0x0123_4567_89AB_CDEF))
        .payload(
            Bytes::from_static(b"{\"order_id\": 17, \"total\": "),
            PayloadSchema::Json,
        )
        .header(Header::new(
            HeaderValue::from("tenant"),
            HeaderValue::from("acme"),
        ))
        .failure(Failure::new(
            FailureStage::ConnectorProcess,
            ErrorCode::MalformedPayload,
            "EOF while parsing a value at line 1 column 27",
        ))
        .connector(sink_connector())
        .written_at_micros(WRITTEN_AT)
        .build()
        .expect("valid vector");

    let mut source_origin =
        SourceOrigin::new("file", Bytes::from_static(b"line:42"), "inventory", "items");
    source_origin.resource = "/var/spool/items.csv".into();
    source_origin.record_key = Some(Bytes::from_static(b"sku-00042"));
    let source = DlqEnvelope::for_source(source_origin)
        .payload(
            Bytes::from_static(b"sku-00042;;not-a-number"),
            PayloadSchema::Text,
        )
        .failure(Failure::new(
            FailureStage::SourceConversion,
            ErrorCode::ConversionFailed,
            "column `quantity`: invalid digit found in string",
        ))
        .connector(
            Connector::source("items-from-csv", "Items from CSV", "1.0.0")
                .with_runtime_instance_id("runtime-7f3a"),
        )
        .written_at_micros(WRITTEN_AT)
        .build()
        .expect("valid vector");

    let all_headers = DlqEnvelope::for_sink(full_sink_origin(1))
        .payload(
            Bytes::from_static(&[0xCA, 0xFE, 0x00, 0x01]),
            PayloadSchema::Raw,
        )
        .headers(headers)
        .failure(Failure::new(
            FailureStage::RuntimeDecode,
            ErrorCode::MalformedHeaders,
            "headers kept for inspection",
        ))
        .connector(sink_connector())
        .written_at_micros(WRITTEN_AT)
        .build()
        .expect("valid vector");

    let big_payload: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
    let truncated = DlqEnvelope::for_sink(full_sink_origin(2))
        .payload(Bytes::from(big_payload.clone()), PayloadSchema::Avro)
        .failure(Failure::new(
            FailureStage::ConnectorWrite,
            ErrorCode::TooLarge,
            "row larger than the target's 1 KiB limit",
        ))
        .connector(sink_connector())
        .written_at_micros(WRITTEN_AT)
        .build()
        .expect("valid vector")
        .fit_to(1024, PayloadPolicy::Truncate)
        .expect("fits");

    let dropped = DlqEnvelope::for_sink(full_sink_origin(3))
        .payload(Bytes::from(big_payload), PayloadSchema::Proto)
        .failure(Failure::new(
            FailureStage::ConnectorWrite,
            ErrorCode::TooLarge,
            "payload dropped by policy",
        ))
        .connector(sink_connector())
        .written_at_micros(WRITTEN_AT)
        .build()
        .expect("valid vector")
        .fit_to(512, PayloadPolicy::Drop)
        .expect("fits");

    let empty_payload = DlqEnvelope::for_sink(full_sink_origin(4))
        .payload(Bytes::new(), PayloadSchema::Json)
        .failure(Failure::new(
            FailureStage::ConnectorProcess,
            ErrorCode::MissingField,
            "empty message: field `order_id` is required",
        ))
        .connector(sink_connector())
        .written_at_micros(WRITTEN_AT)
        .build()
        .expect("valid vector");

    let large_id = DlqEnvelope::for_sink(full_sink_origin(u128::MAX - 0x1234))
        .payload(Bytes::from_static(b"{}"), PayloadSchema::Json)
        .failure(
            Failure::new(
                FailureStage::ConnectorWrite,
                ErrorCode::TargetUnavailable,
                "connection refused",
            )
            .retryable(true)
            .with_attempts(5)
            .with_detail(["pool timed out", "tcp connect to 127.0.0.1:5432: refused"])
            .failed_at(WRITTEN_AT - 60_000_000, WRITTEN_AT - 1_000_000),
        )
        .connector(sink_connector())
        .written_at_micros(WRITTEN_AT)
        .replay_count(2)
        .build()
        .expect("valid vector");

    vec![
        ("sink_malformed_json", malformed_json),
        ("source_conversion_failed", source),
        ("every_header_kind", all_headers),
        ("truncated_payload", truncated),
        ("dropped_payload", dropped),
        ("empty_payload", empty_payload),
        ("large_message_id_retried", large_id),
    ]
}

/// The canonical JSON of a vector as committed: pretty-printed, with a
/// final newline.
pub fn vector_json(envelope: &DlqEnvelope) -> String {
    let mut text = serde_json::to_string_pretty(&envelope.to_canonical_json())
        .expect("JSON values always print");
    text.push('\n');
    text
}
