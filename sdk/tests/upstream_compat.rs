//! The wire types of `iggy_dlq_sdk::abi` against Apache Iggy's own: the
//! header types are `iggy_common`'s (the ones the upstream runtime encodes
//! with), the structs are laid out as upstream's connector SDK declares them.
//! Both directions must give the same bytes.

use std::collections::BTreeMap;

use iggy_common::{HeaderKey as IggyKey, HeaderValue as IggyValue};
use iggy_dlq_sdk::abi::{
    self, HeaderField, HeaderKind, MessagesMetadata, ProducedMessage, ProducedMessages, RawMessage,
    RawMessages, Schema, TopicMetadata, UserHeaders,
};
use serde::{Deserialize, Serialize};

type IggyHeaders = BTreeMap<IggyKey, IggyValue>;

/// Upstream's wire layouts, with upstream's header types.
mod upstream {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub(crate) enum Schema {
        Json,
        Raw,
        Text,
        Proto,
        FlatBuffer,
        Avro,
    }

    #[derive(Serialize, Deserialize)]
    pub(crate) struct TopicMetadata {
        pub(crate) stream: String,
        pub(crate) topic: String,
    }

    #[derive(Serialize, Deserialize)]
    pub(crate) struct MessagesMetadata {
        pub(crate) partition_id: u32,
        pub(crate) current_offset: u64,
        pub(crate) schema: Schema,
    }

    #[derive(Serialize, Deserialize)]
    pub(crate) struct RawMessages {
        pub(crate) schema: Schema,
        pub(crate) messages: Vec<RawMessage>,
    }

    #[derive(Serialize, Deserialize)]
    pub(crate) struct RawMessage {
        pub(crate) id: u128,
        pub(crate) offset: u64,
        pub(crate) checksum: u64,
        pub(crate) timestamp: u64,
        pub(crate) origin_timestamp: u64,
        pub(crate) headers: Vec<u8>,
        pub(crate) payload: Vec<u8>,
    }

    #[derive(Serialize, Deserialize)]
    pub(crate) struct ConnectorState(pub(crate) Vec<u8>);

    #[derive(Serialize, Deserialize)]
    pub(crate) struct ProducedMessages {
        pub(crate) schema: Schema,
        pub(crate) messages: Vec<ProducedMessage>,
        pub(crate) state: Option<ConnectorState>,
    }

    #[derive(Serialize, Deserialize)]
    pub(crate) struct ProducedMessage {
        pub(crate) id: Option<u128>,
        pub(crate) checksum: Option<u64>,
        pub(crate) timestamp: Option<u64>,
        pub(crate) origin_timestamp: Option<u64>,
        pub(crate) headers: Option<IggyHeaders>,
        pub(crate) payload: Vec<u8>,
    }
}

/// Every Iggy kind as a value, and keys of several kinds.
fn iggy_headers() -> IggyHeaders {
    let mut headers = IggyHeaders::new();
    headers.insert(
        IggyKey::try_from("string").unwrap(),
        IggyValue::try_from("text").unwrap(),
    );
    headers.insert(
        IggyKey::try_from("raw").unwrap(),
        IggyValue::try_from(&[0u8, 255, 7][..]).unwrap(),
    );
    headers.insert(IggyKey::try_from("bool").unwrap(), IggyValue::from(true));
    headers.insert(IggyKey::try_from("i8").unwrap(), IggyValue::from(-8i8));
    headers.insert(IggyKey::try_from("i16").unwrap(), IggyValue::from(-16i16));
    headers.insert(IggyKey::try_from("i32").unwrap(), IggyValue::from(-32i32));
    headers.insert(IggyKey::try_from("i64").unwrap(), IggyValue::from(i64::MIN));
    headers.insert(
        IggyKey::try_from("i128").unwrap(),
        IggyValue::from(i128::MIN),
    );
    headers.insert(IggyKey::try_from("u8").unwrap(), IggyValue::from(8u8));
    headers.insert(IggyKey::try_from("u16").unwrap(), IggyValue::from(16u16));
    headers.insert(IggyKey::try_from("u32").unwrap(), IggyValue::from(32u32));
    headers.insert(IggyKey::try_from("u64").unwrap(), IggyValue::from(u64::MAX));
    headers.insert(
        IggyKey::try_from("u128").unwrap(),
        IggyValue::from(u128::MAX),
    );
    headers.insert(IggyKey::try_from("f32").unwrap(), IggyValue::from(1.5f32));
    headers.insert(IggyKey::try_from("f64").unwrap(), IggyValue::from(-2.25f64));
    // Typed keys: a number and raw bytes as keys, ordered by kind first.
    headers.insert(IggyKey::from(7u64), IggyValue::from(1u8));
    headers.insert(
        IggyKey::try_from(&[9u8, 9][..]).unwrap(),
        IggyValue::from(false),
    );
    headers
}

/// The same headers, built with the SDK's types.
fn sdk_headers() -> UserHeaders {
    let mut headers = UserHeaders::new();
    headers.insert("string".into(), "text".into());
    headers.insert(
        "raw".into(),
        HeaderField::new(HeaderKind::Raw, [0u8, 255, 7]),
    );
    headers.insert("bool".into(), true.into());
    headers.insert("i8".into(), (-8i8).into());
    headers.insert("i16".into(), (-16i16).into());
    headers.insert("i32".into(), (-32i32).into());
    headers.insert("i64".into(), i64::MIN.into());
    headers.insert("i128".into(), i128::MIN.into());
    headers.insert("u8".into(), 8u8.into());
    headers.insert("u16".into(), 16u16.into());
    headers.insert("u32".into(), 32u32.into());
    headers.insert("u64".into(), u64::MAX.into());
    headers.insert("u128".into(), u128::MAX.into());
    headers.insert("f32".into(), 1.5f32.into());
    headers.insert("f64".into(), (-2.25f64).into());
    headers.insert(7u64.into(), 1u8.into());
    headers.insert(HeaderField::new(HeaderKind::Raw, [9u8, 9]), false.into());
    headers
}

#[test]
fn headers_encode_to_the_same_bytes_as_iggy_common() {
    let iggy = postcard::to_allocvec(&iggy_headers()).unwrap();
    let sdk = abi::to_bytes("headers", &sdk_headers()).unwrap();
    assert_eq!(sdk, iggy);
}

#[test]
fn headers_iggy_encodes_decode_with_their_kinds() {
    let bytes = postcard::to_allocvec(&iggy_headers()).unwrap();
    let decoded: UserHeaders = abi::from_bytes("headers", &bytes).unwrap();
    assert_eq!(decoded, sdk_headers());
    for (key, value) in iggy_headers() {
        let ours = decoded
            .get(&HeaderField::new(
                HeaderKind::from_code(key.kind().as_code()).unwrap(),
                key.as_bytes(),
            ))
            .unwrap_or_else(|| panic!("key {key:?} missing"));
        assert_eq!(ours.kind.code(), value.kind().as_code());
        assert_eq!(ours.value, value.as_bytes());
    }
    // And back: Iggy decodes what the SDK encodes.
    let back: IggyHeaders =
        postcard::from_bytes(&abi::to_bytes("headers", &decoded).unwrap()).unwrap();
    assert_eq!(back, iggy_headers());
}

#[test]
fn header_kinds_have_iggys_codes_and_order() {
    let mut codes = Vec::new();
    for code in 1..=15u8 {
        let iggy = iggy_common::HeaderKind::from_code(code).unwrap();
        let ours = HeaderKind::from_code(code).unwrap();
        assert_eq!(
            postcard::to_allocvec(&iggy).unwrap(),
            postcard::to_allocvec(&ours).unwrap()
        );
        codes.push(ours);
    }
    let mut sorted = codes.clone();
    sorted.sort();
    assert_eq!(sorted, codes);
}

#[test]
fn a_sink_batch_from_upstream_decodes() {
    let headers = postcard::to_allocvec(&iggy_headers()).unwrap();
    let topic = upstream::TopicMetadata {
        stream: "orders".into(),
        topic: "created".into(),
    };
    let meta = upstream::MessagesMetadata {
        partition_id: 3,
        current_offset: 1 << 40,
        schema: upstream::Schema::FlatBuffer,
    };
    let batch = upstream::RawMessages {
        schema: upstream::Schema::Avro,
        messages: vec![
            upstream::RawMessage {
                id: u128::MAX - 1,
                offset: 1 << 40,
                checksum: u64::MAX,
                timestamp: 1_700_000_000_000_000,
                origin_timestamp: 1_699_999_999_000_000,
                headers: headers.clone(),
                payload: b"\x00\xffpayload".to_vec(),
            },
            upstream::RawMessage {
                id: 0,
                offset: 0,
                checksum: 0,
                timestamp: 0,
                origin_timestamp: 0,
                headers: Vec::new(),
                payload: Vec::new(),
            },
        ],
    };
    let topic_bytes = postcard::to_allocvec(&topic).unwrap();
    let meta_bytes = postcard::to_allocvec(&meta).unwrap();
    let batch_bytes = postcard::to_allocvec(&batch).unwrap();

    let ours: TopicMetadata = abi::from_bytes("topic", &topic_bytes).unwrap();
    assert_eq!(
        (ours.stream.as_str(), ours.topic.as_str()),
        ("orders", "created")
    );
    let ours_meta: MessagesMetadata = abi::from_bytes("meta", &meta_bytes).unwrap();
    assert_eq!(
        ours_meta,
        MessagesMetadata {
            partition_id: 3,
            current_offset: 1 << 40,
            schema: Schema::FlatBuffer
        }
    );
    let ours_batch: RawMessages = abi::from_bytes("batch", &batch_bytes).unwrap();
    assert_eq!(ours_batch.schema, Schema::Avro);
    let first = &ours_batch.messages[0];
    assert_eq!(
        (first.id, first.offset, first.checksum),
        (u128::MAX - 1, 1 << 40, u64::MAX)
    );
    assert_eq!(
        (first.timestamp, first.origin_timestamp),
        (1_700_000_000_000_000, 1_699_999_999_000_000)
    );
    assert_eq!(first.payload, b"\x00\xffpayload");
    assert_eq!(first.user_headers().unwrap(), sdk_headers());
    assert!(ours_batch.messages[1].user_headers().unwrap().is_empty());

    // The SDK's encoding of the same values is byte for byte upstream's.
    assert_eq!(abi::to_bytes("topic", &ours).unwrap(), topic_bytes);
    assert_eq!(abi::to_bytes("meta", &ours_meta).unwrap(), meta_bytes);
    assert_eq!(abi::to_bytes("batch", &ours_batch).unwrap(), batch_bytes);
    let _: &RawMessage = first;
}

#[test]
fn a_source_batch_decodes_in_upstream() {
    let ours = ProducedMessages {
        schema: Schema::Text,
        messages: vec![
            ProducedMessage {
                id: Some(u128::MAX),
                checksum: Some(5),
                timestamp: Some(6),
                origin_timestamp: None,
                headers: Some(sdk_headers()),
                payload: b"line".to_vec(),
            },
            ProducedMessage::new(b"bare".to_vec()),
        ],
        state: Some(abi::ConnectorState(vec![1, 2, 3])),
    };
    let bytes = abi::to_bytes("produced", &ours).unwrap();
    let theirs: upstream::ProducedMessages = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(theirs.schema, upstream::Schema::Text);
    assert_eq!(theirs.messages[0].id, Some(u128::MAX));
    assert_eq!(theirs.messages[0].headers, Some(iggy_headers()));
    assert_eq!(theirs.messages[1].payload, b"bare");
    assert!(theirs.messages[1].headers.is_none());
    assert_eq!(theirs.state.as_ref().unwrap().0, vec![1, 2, 3]);
    assert_eq!(postcard::to_allocvec(&theirs).unwrap(), bytes);
}

#[test]
fn every_schema_has_upstreams_index() {
    let pairs = [
        (Schema::Json, upstream::Schema::Json),
        (Schema::Raw, upstream::Schema::Raw),
        (Schema::Text, upstream::Schema::Text),
        (Schema::Proto, upstream::Schema::Proto),
        (Schema::FlatBuffer, upstream::Schema::FlatBuffer),
        (Schema::Avro, upstream::Schema::Avro),
    ];
    for (ours, theirs) in pairs {
        assert_eq!(
            abi::to_bytes("schema", &ours).unwrap(),
            postcard::to_allocvec(&theirs).unwrap()
        );
        assert_eq!(
            serde_json::to_string(&ours).unwrap(),
            serde_json::to_string(&theirs).unwrap()
        );
    }
}
