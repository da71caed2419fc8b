//! The golden vectors in `tests/vectors/` are the envelope's contract: every
//! decoder must agree with them. Here: Rust decodes each to its committed
//! JSON and re-encodes it to the same bytes, and the committed files match
//! what the generator builds today.

use std::collections::BTreeSet;

use bytes::Bytes;
use iggy_dlq_envelope::{DlqEnvelope, decode};
use iggy_dlq_tests::vectors::{golden_vectors, vector_json, vectors_dir};

fn committed(name: &str) -> (Bytes, serde_json::Value) {
    let dir = vectors_dir();
    let bin = std::fs::read(dir.join(format!("{name}.bin"))).expect("vector .bin");
    let json = std::fs::read_to_string(dir.join(format!("{name}.json"))).expect("vector .json");
    (
        Bytes::from(bin),
        serde_json::from_str(&json).expect("vector .json parses"),
    )
}

#[test]
fn every_vector_decodes_to_its_json_and_reencodes_to_its_bytes() {
    for (name, _) in golden_vectors() {
        let (bin, json) = committed(name);
        let envelope = decode(bin.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(envelope.to_canonical_json(), json, "{name}: JSON differs");
        assert_eq!(
            envelope.encode_to_bytes(),
            bin,
            "{name}: re-encoding differs"
        );
    }
}

#[test]
fn every_vector_json_parses_back_to_the_same_envelope() {
    for (name, _) in golden_vectors() {
        let (bin, json) = committed(name);
        let from_json: DlqEnvelope = serde_json::from_value(json).expect("canonical JSON parses");
        assert_eq!(from_json.encode_to_bytes(), bin, "{name}");
    }
}

#[test]
fn committed_vectors_match_the_generator() {
    for (name, envelope) in golden_vectors() {
        let (bin, _) = committed(name);
        assert_eq!(
            envelope.encode_to_bytes(),
            bin,
            "{name}.bin is not what generate-vectors builds; the encoding changed"
        );
        let json = std::fs::read_to_string(vectors_dir().join(format!("{name}.json"))).unwrap();
        assert_eq!(
            vector_json(&envelope),
            json,
            "{name}.json differs from the generator"
        );
    }
}

#[test]
fn the_vector_directory_holds_exactly_the_vectors() {
    let expected: BTreeSet<String> = golden_vectors()
        .into_iter()
        .flat_map(|(name, _)| [format!("{name}.bin"), format!("{name}.json")])
        .collect();
    let found: BTreeSet<String> = std::fs::read_dir(vectors_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(found, expected);
}

#[test]
fn the_vectors_cover_what_the_contract_promises() {
    let vectors: Vec<_> = golden_vectors().into_iter().map(|(_, e)| e).collect();
    assert!(vectors.iter().any(|e| e.sink_origin().is_some()));
    assert!(vectors.iter().any(|e| e.source_origin().is_some()));
    assert!(
        vectors
            .iter()
            .any(|e| e.payload.is_empty() && !e.payload_integrity.as_ref().unwrap().truncated)
    );
    assert!(
        vectors
            .iter()
            .any(|e| e.payload_integrity.as_ref().unwrap().truncated && !e.payload.is_empty())
    );
    assert!(vectors.iter().any(|e| {
        e.sink_origin()
            .is_some_and(|o| o.message_id() > u128::from(u64::MAX))
    }));
    let kinds: BTreeSet<i32> = vectors
        .iter()
        .flat_map(|e| e.headers.iter().map(|h| h.value.as_ref().unwrap().kind))
        .collect();
    assert_eq!(kinds, (1..=15).collect(), "every Iggy header kind appears");
}
