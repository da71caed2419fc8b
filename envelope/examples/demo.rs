//! Builds a dead-letter envelope for a poison message, encodes it, cuts it
//! to a small size budget, decodes both and prints what a reader sees.
//!
//! `cargo run -p iggy-dlq-envelope --example demo`

use bytes::Bytes;
use iggy_dlq_envelope::{
    Connector, DlqEnvelope, ErrorCode, Failure, FailureStage, Header, HeaderValue, PayloadPolicy,
    PayloadSchema, SinkOrigin, decode,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut origin = SinkOrigin::new("orders", "created", 1, 4711, 0xfeed_beef_u128 << 64);
    origin.consumer_group = "postgres-sink".into();
    let poison = Bytes::from(format!(
        "{{\"order_id\": 17, \"note\": \"{}",
        "x".repeat(2000)
    ));
    let envelope = DlqEnvelope::for_sink(origin)
        .payload(poison, PayloadSchema::Json)
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
            "EOF while parsing a string",
        ))
        .connector(Connector::sink(
            "orders-to-postgres",
            "Orders to Postgres",
            "0.1.0",
        ))
        .build()?;

    let whole = envelope.encode_to_bytes();
    let cut = envelope
        .clone()
        .fit_to(512, PayloadPolicy::Truncate)?
        .encode_to_bytes();
    for (label, bytes) in [("whole", whole), ("cut to 512 bytes", cut)] {
        let decoded = decode(bytes.clone())?;
        let integrity = decoded.payload_integrity.as_ref().expect("validated");
        println!(
            "{label}: {} bytes encoded, payload {} of {} bytes{}",
            bytes.len(),
            decoded.payload.len(),
            integrity.original_length,
            if integrity.truncated {
                " (truncated)"
            } else {
                ""
            }
        );
    }
    println!(
        "{}",
        serde_json::to_string_pretty(
            &decode(
                envelope
                    .fit_to(400, PayloadPolicy::Truncate)?
                    .encode_to_bytes()
            )?
            .to_canonical_json()
        )?
    );
    Ok(())
}
