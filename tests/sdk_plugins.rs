//! The SDK end to end: the fixture plugins of `tests/plugins/` built as real
//! cdylibs, loaded with dlopen and driven through the upstream plugin ABI by
//! a small host that plays the runtime.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use iggy_dlq_envelope::{
    ConnectorKind, DlqEnvelope, ErrorCode, HeaderKind as EnvelopeKind, HeaderValue as Typed,
    PayloadSchema, decode,
};
use iggy_dlq_sdk::abi::{
    self, DlqCallback, HeaderField, HeaderKind, LogCallback, MessagesMetadata, ProducedMessages,
    RawMessage, RawMessages, STATUS_CONNECTOR_ERROR, STATUS_INVALID_CALL, STATUS_OK, Schema,
    SendCallback, TopicMetadata, UserHeaders,
};
use libloading::Library;
use serde_json::json;

type SinkOpen = unsafe extern "C" fn(u32, *const u8, usize, LogCallback) -> i32;
type SinkConsume =
    unsafe extern "C" fn(u32, *const u8, usize, *const u8, usize, *const u8, usize) -> i32;
type Close = unsafe extern "C" fn(u32) -> i32;
type Version = unsafe extern "C" fn() -> *const std::ffi::c_char;
type SetDlq = unsafe extern "C" fn(u32, DlqCallback) -> i32;
type SourceOpen = unsafe extern "C" fn(u32, *const u8, usize, *const u8, usize, LogCallback) -> i32;
type Handle = unsafe extern "C" fn(u32, SendCallback) -> i32;
type BatchResultFn = unsafe extern "C" fn(u32, u64, u8) -> i32;
type KeptWriterSend = unsafe extern "C" fn(u32) -> i32;

// ---- the host's callbacks: what a runtime would receive ----

static DEAD_LETTERS: Mutex<Vec<(u32, Vec<u8>)>> = Mutex::new(Vec::new());
static LOGS: Mutex<Vec<(u8, String, String)>> = Mutex::new(Vec::new());
static BATCHES: Mutex<Vec<(u32, u64, Vec<u8>)>> = Mutex::new(Vec::new());

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// # Safety
///
/// Called by the plugin with `len` bytes at `ptr`, valid during the call.
unsafe fn copied(ptr: *const u8, len: usize) -> Vec<u8> {
    if len == 0 {
        return Vec::new();
    }
    // SAFETY: the plugin passes `len` valid bytes at `ptr` for the call.
    unsafe { std::slice::from_raw_parts(ptr, len) }.to_vec()
}

extern "C" fn accept_dead_letter(plugin_id: u32, ptr: *const u8, len: usize) -> i32 {
    // SAFETY: the DlqCallback contract: `len` bytes at `ptr` during the call.
    let bytes = unsafe { copied(ptr, len) };
    locked(&DEAD_LETTERS).push((plugin_id, bytes));
    0
}

extern "C" fn record_log(level: u8, tp: *const u8, tl: usize, mp: *const u8, ml: usize) {
    // SAFETY: the LogCallback contract: both strings are valid during the call.
    let (target, message) = unsafe { (copied(tp, tl), copied(mp, ml)) };
    locked(&LOGS).push((
        level,
        String::from_utf8_lossy(&target).into_owned(),
        String::from_utf8_lossy(&message).into_owned(),
    ));
}

extern "C" fn take_batch(plugin_id: u32, batch_id: u64, ptr: *const u8, len: usize) -> i32 {
    // SAFETY: the SendCallback contract: `len` bytes at `ptr` during the call.
    let bytes = unsafe { copied(ptr, len) };
    locked(&BATCHES).push((plugin_id, batch_id, bytes));
    0
}

static REFUSED: Mutex<Vec<u32>> = Mutex::new(Vec::new());

extern "C" fn dlq_unavailable(plugin_id: u32, _ptr: *const u8, _len: usize) -> i32 {
    locked(&REFUSED).push(plugin_id);
    5
}

fn dead_letters(plugin_id: u32) -> Vec<DlqEnvelope> {
    locked(&DEAD_LETTERS)
        .iter()
        .filter(|(id, _)| *id == plugin_id)
        .map(|(_, bytes)| decode(bytes.clone()).expect("every dead letter decodes"))
        .collect()
}

// ---- building and loading the plugins ----

struct Plugin {
    library: Library,
}

impl Plugin {
    fn load(crate_name: &str) -> Plugin {
        let path = iggy_dlq_tests::built_artifacts().join(libloading::library_filename(crate_name));
        // SAFETY: the fixture plugins run no initialisation code on load.
        let library = unsafe { Library::new(&path) }
            .unwrap_or_else(|e| panic!("cannot load {}: {e}", path.display()));
        Plugin { library }
    }

    fn has(&self, symbol: &str) -> bool {
        // SAFETY: the symbol is only looked up, not called.
        unsafe { self.library.get::<*const ()>(symbol.as_bytes()) }.is_ok()
    }

    fn sym<T: Copy>(&self, symbol: &str) -> T {
        // SAFETY: every caller names `T` as the ABI's signature of `symbol`.
        unsafe { *self.library.get::<T>(symbol.as_bytes()).expect(symbol) }
    }

    fn sink_open(&self, id: u32, config: &serde_json::Value) -> i32 {
        let config = config.to_string();
        let open: SinkOpen = self.sym("iggy_sink_open");
        // SAFETY: the config is valid for the call.
        unsafe { open(id, config.as_ptr(), config.len(), record_log) }
    }

    fn consume_bytes(&self, id: u32, topic: &[u8], meta: &[u8], messages: &[u8]) -> i32 {
        let consume: SinkConsume = self.sym("iggy_sink_consume");
        // SAFETY: every slice is valid for the call.
        unsafe {
            consume(
                id,
                topic.as_ptr(),
                topic.len(),
                meta.as_ptr(),
                meta.len(),
                messages.as_ptr(),
                messages.len(),
            )
        }
    }

    fn consume(&self, id: u32, messages: &[RawMessage]) -> i32 {
        let (topic, meta) = sink_batch_metadata();
        let batch = RawMessages {
            schema: Schema::Json,
            messages: messages.to_vec(),
        };
        self.consume_bytes(
            id,
            &abi::to_bytes("topic", &topic).unwrap(),
            &abi::to_bytes("meta", &meta).unwrap(),
            &abi::to_bytes("batch", &batch).unwrap(),
        )
    }

    fn call_id(&self, symbol: &str, id: u32) -> i32 {
        let call: Close = self.sym(symbol);
        // SAFETY: takes only an id.
        unsafe { call(id) }
    }

    fn set_dlq(&self, symbol: &str, id: u32, callback: DlqCallback) -> i32 {
        let set: SetDlq = self.sym(symbol);
        // SAFETY: the callback is a valid function for the life of the test.
        unsafe { set(id, callback) }
    }

    fn version(&self, symbol: &str) -> String {
        let version: Version = self.sym(symbol);
        // SAFETY: the plugin returns a static NUL-terminated string.
        unsafe { std::ffi::CStr::from_ptr(version()) }
            .to_str()
            .unwrap()
            .to_owned()
    }

    fn source_open(&self, id: u32, config: &serde_json::Value, state: Option<&[u8]>) -> i32 {
        let config = config.to_string();
        let open: SourceOpen = self.sym("iggy_source_open");
        let (state_ptr, state_len) = state.map_or((std::ptr::null(), 0), |s| (s.as_ptr(), s.len()));
        // SAFETY: config and state are valid for the call.
        unsafe {
            open(
                id,
                config.as_ptr(),
                config.len(),
                state_ptr,
                state_len,
                record_log,
            )
        }
    }

    fn handle(&self, id: u32) -> i32 {
        let handle: Handle = self.sym("iggy_source_handle_v2");
        // SAFETY: the callback is a valid function for the life of the test.
        unsafe { handle(id, take_batch) }
    }

    fn batch_result(&self, id: u32, batch_id: u64, result: u8) -> i32 {
        let answer: BatchResultFn = self.sym("iggy_source_batch_result");
        // SAFETY: plain values.
        unsafe { answer(id, batch_id, result) }
    }
}

// ---- the data ----

fn sink_batch_metadata() -> (TopicMetadata, MessagesMetadata) {
    (
        TopicMetadata {
            stream: "orders".into(),
            topic: "created".into(),
        },
        MessagesMetadata {
            partition_id: 3,
            current_offset: 1000,
            schema: Schema::Json,
        },
    )
}

/// The indexes of the 7 bad messages among 100: four are not JSON, three
/// lack the required field `id`.
const NOT_JSON: [u64; 4] = [3, 29, 58, 99];
const MISSING_ID: [u64; 3] = [17, 41, 77];

fn headers_of(i: u64) -> UserHeaders {
    let mut headers = UserHeaders::new();
    headers.insert("tenant".into(), "acme".into());
    headers.insert("seq".into(), i.into());
    headers.insert(
        HeaderField::new(HeaderKind::Raw, [0xab]),
        i.is_multiple_of(2).into(),
    );
    headers
}

fn hundred_messages() -> Vec<RawMessage> {
    (0..100u64)
        .map(|i| {
            let payload = if NOT_JSON.contains(&i) {
                let mut bytes = format!("{{\"id\": {i}, ").into_bytes();
                bytes.push(0xff);
                bytes
            } else if MISSING_ID.contains(&i) {
                format!("{{\"name\": \"no id {i}\"}}").into_bytes()
            } else {
                format!("{{\"id\":{i},\"name\":\"order {i}\"}}").into_bytes()
            };
            RawMessage {
                id: (1u128 << 100) + u128::from(i),
                offset: 1000 + i,
                checksum: 0xc0ffee + i,
                timestamp: 1_700_000_000_000_000 + i,
                origin_timestamp: 1_690_000_000_000_000 + i,
                headers: abi::to_bytes("headers", &headers_of(i)).unwrap(),
                payload,
            }
        })
        .collect()
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("a UTF-8 file")
        .lines()
        .map(str::to_owned)
        .collect()
}

// ---- sinks ----

#[test]
fn failed_messages_only_reach_the_dlq_and_successes_are_one_batch_write() {
    const ID: u32 = 101;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.jsonl");
    let batch_log = dir.path().join("writes.log");
    let sink = Plugin::load("json_sink");
    let config = json!({
        "path": target, "required_field": "id", "batch_log": batch_log,
        "connector_key": "orders-to-file", "connector_name": "Orders to a file",
    });
    assert_eq!(sink.sink_open(ID, &config), STATUS_OK);
    assert_eq!(
        sink.set_dlq("iggy_sink_set_dlq_callback", ID, accept_dead_letter),
        STATUS_OK
    );
    let messages = hundred_messages();
    assert_eq!(sink.consume(ID, &messages), STATUS_OK);

    let bad: BTreeSet<u64> = NOT_JSON.iter().chain(&MISSING_ID).copied().collect();
    let good: Vec<serde_json::Value> = messages
        .iter()
        .filter(|m| !bad.contains(&(m.offset - 1000)))
        .map(|m| serde_json::from_slice(&m.payload).unwrap())
        .collect();
    let written: Vec<serde_json::Value> = lines(&target)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(written.len(), 93);
    assert_eq!(written, good, "exactly the good messages, in order");
    assert_eq!(lines(&batch_log), vec!["93"], "one batch write of 93 lines");

    let envelopes = dead_letters(ID);
    assert_eq!(
        envelopes.len(),
        7,
        "exactly the bad messages are dead-lettered"
    );
    let offsets: BTreeSet<u64> = envelopes
        .iter()
        .map(|e| e.sink_origin().unwrap().offset)
        .collect();
    assert_eq!(offsets, bad.iter().map(|i| 1000 + i).collect());
    for envelope in &envelopes {
        let origin = envelope.sink_origin().unwrap();
        let i = origin.offset - 1000;
        let original = &messages[i as usize];
        assert_eq!(
            &envelope.payload[..],
            &original.payload[..],
            "payload byte for byte"
        );
        assert_eq!(origin.message_id(), original.id);
        assert_eq!(origin.checksum, original.checksum);
        assert_eq!(origin.timestamp_micros, original.timestamp);
        assert_eq!(origin.origin_timestamp_micros, original.origin_timestamp);
        assert_eq!(
            (
                origin.stream.as_str(),
                origin.topic.as_str(),
                origin.partition_id
            ),
            ("orders", "created", 3)
        );
        assert_eq!(envelope.payload_schema, PayloadSchema::Json as i32);

        let headers: BTreeMap<_, _> = envelope
            .headers
            .iter()
            .map(|h| {
                let key = h.key.as_ref().unwrap();
                let value = h.value.as_ref().unwrap();
                ((key.kind, key.value.to_vec()), value.typed().unwrap())
            })
            .collect();
        assert_eq!(headers.len(), 3);
        let string_key = |k: &str| (EnvelopeKind::String as i32, k.as_bytes().to_vec());
        assert_eq!(headers[&string_key("seq")], Typed::Uint64(i), "kinds kept");
        assert_eq!(headers[&string_key("tenant")], Typed::String("acme".into()));
        assert_eq!(
            headers[&(EnvelopeKind::Raw as i32, vec![0xab])],
            Typed::Bool(i.is_multiple_of(2))
        );

        let failure = envelope.failure.as_ref().unwrap();
        if NOT_JSON.contains(&i) {
            assert_eq!(failure.code, ErrorCode::MalformedPayload as i32);
            assert!(failure.reason.starts_with("not JSON"), "{}", failure.reason);
        } else {
            assert_eq!(failure.code, ErrorCode::MissingField as i32);
            assert_eq!(failure.reason, "required field `id` is missing");
        }
        let connector = envelope.connector.as_ref().unwrap();
        assert_eq!(connector.key, "orders-to-file");
        assert_eq!(connector.name, "Orders to a file");
        assert_eq!(connector.kind, ConnectorKind::Sink as i32);
        assert_eq!(connector.plugin_version, env!("CARGO_PKG_VERSION"));
        assert!(failure.last_failed_at_micros > 0);
    }

    // A batch without failures reaches the target and never the DLQ.
    let all_good: Vec<RawMessage> = messages
        .iter()
        .filter(|m| !bad.contains(&(m.offset - 1000)))
        .take(10)
        .cloned()
        .collect();
    assert_eq!(sink.consume(ID, &all_good), STATUS_OK);
    assert_eq!(lines(&batch_log), vec!["93", "10"]);
    assert_eq!(dead_letters(ID).len(), 7);
    assert_eq!(sink.call_id("iggy_sink_close", ID), STATUS_OK);
}

#[test]
fn without_a_dlq_sends_are_not_configured_counted_and_logged_once() {
    const ID: u32 = 501;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.jsonl");
    let report = dir.path().join("report.json");
    let sink = Plugin::load("json_sink");
    let config = json!({ "path": target, "required_field": "id", "report_path": report });
    assert_eq!(sink.sink_open(ID, &config), STATUS_OK);
    let read_report = || -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap()
    };

    assert_eq!(sink.consume(ID, &hundred_messages()), STATUS_OK);
    let first = read_report();
    assert_eq!(first["written"], 93);
    assert_eq!(first["dead_lettered"], 0);
    assert_eq!(first["not_configured"], 7);
    assert_eq!(first["lost_count"], 7);

    assert_eq!(sink.consume(ID, &hundred_messages()), STATUS_OK);
    assert_eq!(read_report()["lost_count"], 14);
    assert_eq!(lines(&target).len(), 186, "successes are still written");
    assert!(dead_letters(ID).is_empty());

    let warnings: Vec<_> = locked(&LOGS)
        .iter()
        .filter(|(_, _, m)| {
            m.contains(&format!("connector {ID} ")) && m.contains("no dlq configured")
        })
        .cloned()
        .collect();
    assert_eq!(warnings.len(), 1, "logged once per instance: {warnings:?}");
    assert_eq!(warnings[0].0, 3, "at WARN");
    assert_eq!(sink.call_id("iggy_sink_close", ID), STATUS_OK);
}

#[test]
fn a_plugin_without_dlq_support_does_not_export_the_symbol_and_still_works() {
    const ID: u32 = 301;
    let plain = Plugin::load("plain_sink");
    assert!(plain.has("iggy_sink_open") && plain.has("iggy_sink_consume"));
    assert!(!plain.has("iggy_sink_set_dlq_callback"));
    assert!(Plugin::load("json_sink").has("iggy_sink_set_dlq_callback"));
    assert!(Plugin::load("lines_source").has("iggy_source_set_dlq_callback"));
    assert!(!Plugin::load("lines_source").has("iggy_sink_set_dlq_callback"));

    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("plain.txt");
    assert_eq!(plain.sink_open(ID, &json!({ "path": target })), STATUS_OK);
    let messages = hundred_messages();
    assert_eq!(plain.consume(ID, &messages), STATUS_OK);
    let mut expected = Vec::new();
    for message in &messages {
        expected.extend_from_slice(&message.payload);
        expected.push(b'\n');
    }
    assert_eq!(
        std::fs::read(&target).unwrap(),
        expected,
        "all 100 payloads as written"
    );
    assert_eq!(
        plain.version("iggy_sink_version"),
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(plain.call_id("iggy_sink_close", ID), STATUS_OK);
}

#[test]
fn abuse_returns_error_statuses_and_crashes_nothing() {
    let sink = Plugin::load("json_sink");
    let dir = tempfile::tempdir().unwrap();
    let config = json!({ "path": dir.path().join("out.jsonl"), "required_field": "id" });
    let open: SinkOpen = sink.sym("iggy_sink_open");

    // Null config with a length, bad JSON, a config of the wrong shape.
    // SAFETY: the plugin must refuse the null pointer without reading it.
    let status = unsafe { open(401, std::ptr::null(), 5, record_log) };
    assert_eq!(status, STATUS_INVALID_CALL);
    assert_eq!(
        sink.sink_open(401, &json!("not an object")),
        STATUS_INVALID_CALL
    );
    let junk = b"{not json";
    // SAFETY: valid bytes.
    let status = unsafe { open(401, junk.as_ptr(), junk.len(), record_log) };
    assert_eq!(status, STATUS_INVALID_CALL);

    // Double open.
    assert_eq!(sink.sink_open(401, &config), STATUS_OK);
    assert_eq!(sink.sink_open(401, &config), STATUS_INVALID_CALL);

    // Null pointers with lengths, undecodable metadata, bogus ids.
    let (topic, meta) = sink_batch_metadata();
    let topic = abi::to_bytes("topic", &topic).unwrap();
    let meta = abi::to_bytes("meta", &meta).unwrap();
    let consume: SinkConsume = sink.sym("iggy_sink_consume");
    // SAFETY: the plugin must refuse the null pointers without reading them.
    let status = unsafe {
        consume(
            401,
            std::ptr::null(),
            7,
            meta.as_ptr(),
            meta.len(),
            std::ptr::null(),
            0,
        )
    };
    assert_eq!(status, STATUS_INVALID_CALL);
    // SAFETY: as above.
    let status = unsafe {
        consume(
            401,
            topic.as_ptr(),
            topic.len(),
            meta.as_ptr(),
            meta.len(),
            std::ptr::null(),
            1 << 20,
        )
    };
    assert_eq!(status, STATUS_INVALID_CALL);
    assert_eq!(
        sink.consume_bytes(401, &topic, &meta, &[0xff, 0xff, 0xff]),
        STATUS_INVALID_CALL
    );
    assert_eq!(sink.consume_bytes(401, b"", b"", b""), STATUS_INVALID_CALL);
    assert_eq!(
        sink.consume(999_999, &hundred_messages()),
        STATUS_INVALID_CALL
    );
    assert_eq!(
        sink.set_dlq("iggy_sink_set_dlq_callback", 999_999, accept_dead_letter),
        STATUS_INVALID_CALL
    );
    assert_eq!(
        sink.call_id("iggy_sink_close", 999_999),
        STATUS_INVALID_CALL
    );

    // Still healthy after all that.
    assert_eq!(sink.consume(401, &hundred_messages()[..5]), STATUS_OK);

    // Close, then everything on that id is refused.
    assert_eq!(sink.call_id("iggy_sink_close", 401), STATUS_OK);
    assert_eq!(sink.consume(401, &hundred_messages()), STATUS_INVALID_CALL);
    assert_eq!(
        sink.set_dlq("iggy_sink_set_dlq_callback", 401, accept_dead_letter),
        STATUS_INVALID_CALL
    );
    assert_eq!(sink.call_id("iggy_sink_close", 401), STATUS_INVALID_CALL);
    // The id can be opened again after close.
    assert_eq!(sink.sink_open(401, &config), STATUS_OK);
    assert_eq!(sink.call_id("iggy_sink_close", 401), STATUS_OK);
}

#[test]
fn a_dlq_send_after_close_is_refused_without_calling_the_runtime() {
    const ID: u32 = 402;
    let sink = Plugin::load("json_sink");
    let dir = tempfile::tempdir().unwrap();
    let config = json!({ "path": dir.path().join("out.jsonl"), "required_field": "id" });
    assert_eq!(sink.sink_open(ID, &config), STATUS_OK);
    assert_eq!(
        sink.set_dlq("iggy_sink_set_dlq_callback", ID, accept_dead_letter),
        STATUS_OK
    );
    assert_eq!(sink.consume(ID, &hundred_messages()[..5]), STATUS_OK);
    assert_eq!(dead_letters(ID).len(), 1, "message 3 of 0..5 is bad");

    let send_kept: KeptWriterSend = sink.sym("json_sink_send_with_kept_writer");
    // SAFETY: the fixture's test hook takes only an id.
    let status = unsafe { send_kept(ID) };
    assert_eq!(status, 0, "while open, a kept writer works");
    assert_eq!(dead_letters(ID).len(), 2);
    assert_eq!(sink.call_id("iggy_sink_close", ID), STATUS_OK);
    // SAFETY: as above.
    let status = unsafe { send_kept(ID) };
    assert_eq!(status, 100, "refused as closed");
    assert_eq!(
        dead_letters(ID).len(),
        2,
        "the runtime's callback was not called"
    );
}

#[test]
fn a_panicking_connector_returns_an_error_status() {
    const ID: u32 = 403;
    let sink = Plugin::load("json_sink");
    let dir = tempfile::tempdir().unwrap();
    let config = json!({ "path": dir.path().join("out.jsonl"), "panic_on_consume": true });
    assert_eq!(sink.sink_open(ID, &config), STATUS_OK);
    assert_eq!(
        sink.consume(ID, &hundred_messages()),
        STATUS_CONNECTOR_ERROR
    );
    assert_eq!(
        sink.consume(ID, &hundred_messages()),
        STATUS_CONNECTOR_ERROR
    );
    assert!(
        locked(&LOGS)
            .iter()
            .any(|(level, _, m)| *level == 4 && m.contains("json-sink told to panic")),
        "the panic is logged as an error"
    );
    assert_eq!(sink.call_id("iggy_sink_close", ID), STATUS_OK);
}

// ---- sources ----

/// Waits for the next batch source `id` hands over.
fn next_batch(id: u32) -> (u64, ProducedMessages) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        {
            let mut batches = locked(&BATCHES);
            if let Some(at) = batches.iter().position(|(plugin, _, _)| *plugin == id) {
                let (_, batch_id, bytes) = batches.remove(at);
                return (batch_id, abi::from_bytes("batch", &bytes).unwrap());
            }
        }
        assert!(Instant::now() < deadline, "source {id} sent no batch");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn state_lines(batch: &ProducedMessages) -> u64 {
    u64::from_le_bytes(
        batch
            .state
            .as_ref()
            .unwrap()
            .0
            .as_slice()
            .try_into()
            .unwrap(),
    )
}

const BAD_LINES: [usize; 4] = [4, 11, 19, 25];

fn write_records(path: &Path) -> Vec<Vec<u8>> {
    let mut text = String::new();
    let mut expected = Vec::new();
    for n in 1..=25usize {
        if BAD_LINES.contains(&n) {
            text.push_str(&format!("neither json nor a pair {n}\n"));
        } else if n % 2 == 0 {
            text.push_str(&format!("key{n} = value {n}\n"));
            expected.push(format!("{{\"key{n}\":\"value {n}\"}}").into_bytes());
        } else {
            text.push_str(&format!("{{\"n\":{n}}}\n"));
            expected.push(format!("{{\"n\":{n}}}").into_bytes());
        }
    }
    std::fs::write(path, text).unwrap();
    expected
}

#[test]
fn the_source_dead_letters_exactly_its_unconvertible_records() {
    const ID: u32 = 201;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("records.txt");
    let expected = write_records(&path);
    let source = Plugin::load("lines_source");
    let config = json!({ "path": path, "batch_size": 10, "stream": "logs", "topic": "lines" });
    assert_eq!(source.source_open(ID, &config, None), STATUS_OK);
    assert_eq!(
        source.set_dlq("iggy_source_set_dlq_callback", ID, accept_dead_letter),
        STATUS_OK
    );
    assert_eq!(source.handle(ID), STATUS_OK);
    assert_eq!(
        source.handle(ID),
        STATUS_INVALID_CALL,
        "handled once per open"
    );

    let mut produced = Vec::new();
    let mut last_batch = 0;
    while produced.len() < expected.len() {
        let (batch_id, batch) = next_batch(ID);
        assert!(batch_id > last_batch);
        last_batch = batch_id;
        assert_eq!(
            source.batch_result(ID, batch_id + 7, 0),
            STATUS_INVALID_CALL,
            "wrong batch id"
        );
        produced.extend(batch.messages.into_iter().map(|m| m.payload));
        assert_eq!(source.batch_result(ID, batch_id, 0), STATUS_OK);
        assert_eq!(
            source.batch_result(ID, batch_id, 0),
            STATUS_INVALID_CALL,
            "answered twice"
        );
    }
    assert_eq!(produced, expected, "every convertible record, in order");

    let envelopes = dead_letters(ID);
    assert_eq!(envelopes.len(), BAD_LINES.len());
    for (envelope, n) in envelopes.iter().zip(BAD_LINES) {
        let origin = envelope.source_origin().unwrap();
        assert_eq!(origin.system, "file");
        assert_eq!(origin.resource, path.to_str().unwrap());
        assert_eq!(&origin.position[..], format!("line:{n}").as_bytes());
        assert_eq!(
            (origin.target_stream.as_str(), origin.target_topic.as_str()),
            ("logs", "lines")
        );
        assert_eq!(
            &envelope.payload[..],
            format!("neither json nor a pair {n}").as_bytes()
        );
        assert_eq!(envelope.payload_schema, PayloadSchema::Text as i32);
        let failure = envelope.failure.as_ref().unwrap();
        assert_eq!(failure.code, ErrorCode::ConversionFailed as i32);
        assert_eq!(
            failure.reason,
            format!("line {n} is neither JSON nor key=value")
        );
        let connector = envelope.connector.as_ref().unwrap();
        assert_eq!(
            (connector.key.as_str(), connector.kind),
            ("lines-source", ConnectorKind::Source as i32)
        );
    }
    assert_eq!(
        source.version("iggy_source_version"),
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(source.call_id("iggy_source_close", ID), STATUS_OK);
    assert_eq!(source.call_id("iggy_source_close", ID), STATUS_INVALID_CALL);
    assert_eq!(
        source.batch_result(ID, last_batch + 1, 0),
        STATUS_INVALID_CALL
    );
}

#[test]
fn the_source_resumes_from_its_saved_state_and_replays_a_nacked_batch() {
    const ID: u32 = 202;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("records.txt");
    let expected = write_records(&path);
    let source = Plugin::load("lines_source");
    let config = json!({ "path": path, "batch_size": 10 });

    // Garbage state: the connector's own open fails.
    assert_eq!(
        source.source_open(ID, &config, Some(b"xyz")),
        STATUS_CONNECTOR_ERROR
    );
    // Resume after line 12: lines 13..=22 come first.
    assert_eq!(
        source.source_open(ID, &config, Some(&12u64.to_le_bytes())),
        STATUS_OK
    );
    assert_eq!(
        source.source_open(ID, &config, None),
        STATUS_INVALID_CALL,
        "double open"
    );
    assert_eq!(source.handle(ID), STATUS_OK);

    let (first_id, first) = next_batch(ID);
    assert_eq!(state_lines(&first), 22);
    let payloads = |b: &ProducedMessages| {
        b.messages
            .iter()
            .map(|m| m.payload.clone())
            .collect::<Vec<_>>()
    };
    // Lines 13..=22 minus bad line 19: expected indexes 10..19 of the 21 good ones.
    assert_eq!(payloads(&first), expected[10..19].to_vec());
    assert_eq!(source.batch_result(ID, first_id, 1), STATUS_OK, "Nack");

    let (again_id, again) = next_batch(ID);
    assert!(again_id > first_id);
    assert_eq!(
        payloads(&again),
        payloads(&first),
        "a Nacked batch is produced again"
    );
    assert_eq!(source.batch_result(ID, again_id, 0), STATUS_OK);

    let (last_id, last) = next_batch(ID);
    assert_eq!(state_lines(&last), 25);
    assert_eq!(payloads(&last), expected[19..].to_vec());
    // An invalid result code is taken as Nack and reported as a bad call.
    assert_eq!(source.batch_result(ID, last_id, 9), STATUS_INVALID_CALL);
    assert_eq!(source.call_id("iggy_source_close", ID), STATUS_OK);
    assert!(
        dead_letters(ID).is_empty(),
        "no dlq wired for this instance"
    );
}

#[test]
fn a_source_does_not_move_past_a_record_the_dlq_did_not_take() {
    const ID: u32 = 203;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("records.txt");
    write_records(&path);
    let source = Plugin::load("lines_source");
    let config = json!({ "path": path, "batch_size": 10 });
    assert_eq!(source.source_open(ID, &config, None), STATUS_OK);
    assert_eq!(
        source.set_dlq("iggy_source_set_dlq_callback", ID, dlq_unavailable),
        STATUS_OK
    );
    assert_eq!(source.handle(ID), STATUS_OK);

    // Line 4 cannot be dead-lettered while the DLQ is unavailable, so the
    // batch holding it is never handed over: nothing is lost or skipped.
    let deadline = Instant::now() + Duration::from_secs(20);
    while locked(&REFUSED).iter().filter(|id| **id == ID).count() < 3 {
        assert!(Instant::now() < deadline, "the source did not retry");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!locked(&BATCHES).iter().any(|(id, _, _)| *id == ID));
    assert_eq!(source.call_id("iggy_source_close", ID), STATUS_OK);
}
