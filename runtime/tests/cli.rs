//! The `iggy-dlq` command line on a DLQ file: `inspect`, `stats` and
//! `replay --dry-run`, and its errors. Replays that reach a server are in
//! `tests/live_runtime.rs`.

use std::path::Path;
use std::process::{Command, Output};

use bytes::Bytes;
use iggy_dlq_envelope::{
    Connector, DlqEnvelope, ErrorCode, Failure, FailureStage, Header, HeaderValue, PayloadSchema,
    REPLAY_COUNT_HEADER, SinkOrigin,
};
use iggy_dlq_runtime::dlq::DlqFileWriter;

fn letter(offset: u64, code: ErrorCode, replayed: u32) -> DlqEnvelope {
    let mut builder = DlqEnvelope::for_sink(SinkOrigin::new("shop", "orders", 0, offset, 1))
        .payload(
            Bytes::from(format!("{{\"n\": {offset}}}")),
            PayloadSchema::Json,
        )
        .failure(Failure::new(FailureStage::ConnectorProcess, code, "failed"))
        .connector(Connector::sink("orders", "Orders", "1.0.0"));
    if replayed > 0 {
        builder = builder.header(Header::new(
            REPLAY_COUNT_HEADER.into(),
            HeaderValue::Uint32(replayed),
        ));
    }
    builder.build().unwrap()
}

fn dlq_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("orders.dlq");
    let (mut writer, _) = DlqFileWriter::open(&path).unwrap();
    let records: Vec<Bytes> = [
        letter(3, ErrorCode::MissingField, 0),
        letter(7, ErrorCode::MalformedPayload, 0),
        letter(9, ErrorCode::MissingField, 3),
        letter(12, ErrorCode::MissingField, 1),
    ]
    .iter()
    .map(DlqEnvelope::encode_to_bytes)
    .collect();
    writer.append(records.iter().map(|r| &r[..])).unwrap();
    path
}

fn iggy_dlq(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iggy-dlq"))
        .args(args)
        .env("IGGY_DLQ_LOG", "error")
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn inspect_and_stats_read_a_dlq_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dlq_file(dir.path());
    let path = path.to_str().unwrap();
    let inspect = stdout(&iggy_dlq(&["inspect", path]));
    assert_eq!(inspect.lines().count(), 4, "{inspect}");
    assert!(inspect.contains("shop/orders p0 @7"), "{inspect}");
    assert!(inspect.contains("MALFORMED_PAYLOAD"), "{inspect}");
    let stats = stdout(&iggy_dlq(&["stats", &format!("file://{path}")]));
    assert!(stats.starts_with("4 dead letters"), "{stats}");
    assert!(
        stats.contains("3  connector_process / missing_field"),
        "{stats}"
    );
}

#[test]
fn a_dry_run_replay_shows_what_would_go_where() {
    let dir = tempfile::tempdir().unwrap();
    let path = dlq_file(dir.path());
    let out = stdout(&iggy_dlq(&[
        "replay",
        path.to_str().unwrap(),
        "--code",
        "missing_field",
        "--to-topic",
        "orders-retry",
        "--dry-run",
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..2],
        [
            "      0  -> shop/orders-retry p0  replay 1",
            "      3  -> shop/orders-retry p0  replay 2"
        ],
        "{out}"
    );
    assert!(out.contains("2 to replay (dry run: nothing sent)"), "{out}");
    assert!(
        out.contains("skipped 1 that do not match the filter"),
        "{out}"
    );
    assert!(
        out.contains("skipped 1 that were replayed too often already"),
        "{out}"
    );
    assert!(out.contains("--skip 4"), "{out}");

    let rest = stdout(&iggy_dlq(&[
        "replay",
        path.to_str().unwrap(),
        "--skip",
        "2",
        "--max-replays",
        "5",
        "--dry-run",
    ]));
    assert!(
        rest.contains("      2  -> shop/orders p0  replay 4"),
        "{rest}"
    );
    assert!(rest.contains("2 to replay"), "{rest}");
}

#[test]
fn replay_errors_say_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dlq_file(dir.path());
    let path = path.to_str().unwrap();

    let no_target = iggy_dlq(&["replay", path]);
    assert!(!no_target.status.success());
    let err = String::from_utf8_lossy(&no_target.stderr);
    assert!(err.contains("needs --to iggy://"), "{err}");

    let bad_stage = iggy_dlq(&["replay", path, "--stage", "writing", "--dry-run"]);
    assert!(!bad_stage.status.success());
    let err = String::from_utf8_lossy(&bad_stage.stderr);
    assert!(
        err.contains("writing") && err.contains("connector_write"),
        "{err}"
    );

    let bad_origin = iggy_dlq(&["replay", path, "--origin", "orders", "--dry-run"]);
    let err = String::from_utf8_lossy(&bad_origin.stderr);
    assert!(err.contains("STREAM/TOPIC"), "{err}");

    let unreachable = iggy_dlq(&["replay", path, "--to", "iggy://u:p@127.0.0.1:1"]);
    assert!(!unreachable.status.success());
    let err = String::from_utf8_lossy(&unreachable.stderr);
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(!err.contains(":p@"), "no password in errors: {err}");
}

#[test]
fn a_reader_that_goes_away_stops_inspect_without_a_panic() {
    use std::io::Read as _;
    use std::process::Stdio;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.dlq");
    let (mut writer, _) = DlqFileWriter::open(&path).unwrap();
    let record = letter(1, ErrorCode::MissingField, 0).encode_to_bytes();
    // Far more output than a pipe holds, so that inspect is still writing
    // when its reader leaves.
    writer
        .append(std::iter::repeat_n(&record[..], 20_000))
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_iggy-dlq"))
        .args(["inspect", path.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 64];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take()); // as `| head` does
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
