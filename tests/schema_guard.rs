//! The schema guard: `buf lint` is clean, `buf breaking` finds no break
//! against the released baseline, and a deliberately breaking edit is
//! caught, so that the guard is known to be able to fail.

use std::path::Path;
use std::process::{Command, Output};

use iggy_dlq_tests::{find_tool, workspace_root};

const BASELINE: &str = "tests/schema/baseline.binpb";

fn buf(test: &str) -> Option<std::path::PathBuf> {
    find_tool(test, "BUF", "tests/tools/node_modules/.bin/buf")
}

fn run(buf: &Path, dir: &Path, args: &[&str]) -> Output {
    Command::new(buf)
        .args(args)
        .current_dir(dir)
        .env(
            "BUF_CACHE_DIR",
            std::env::temp_dir().join("iggy-dlq-buf-cache"),
        )
        .output()
        .expect("buf runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn buf_lint_is_clean() {
    let Some(buf) = buf("buf_lint_is_clean") else {
        return;
    };
    let out = run(&buf, &workspace_root(), &["lint"]);
    assert!(out.status.success(), "buf lint:\n{}", text(&out));
}

#[test]
fn schema_has_no_breaking_change_against_the_baseline() {
    let Some(buf) = buf("schema_has_no_breaking_change_against_the_baseline") else {
        return;
    };
    let root = workspace_root();
    let baseline = root.join(BASELINE);
    let out = run(
        &buf,
        &root,
        &["breaking", "--against", baseline.to_str().unwrap()],
    );
    assert!(out.status.success(), "buf breaking:\n{}", text(&out));
}

/// A copy of the module with `edit` applied to the envelope schema.
fn edited_copy(edit: impl Fn(&str) -> String) -> tempfile::TempDir {
    let root = workspace_root();
    let dir = tempfile::tempdir().unwrap();
    let proto_dir = dir.path().join("proto/iggy/dlq/v1");
    std::fs::create_dir_all(&proto_dir).unwrap();
    std::fs::copy(root.join("buf.yaml"), dir.path().join("buf.yaml")).unwrap();
    let schema = std::fs::read_to_string(root.join("proto/iggy/dlq/v1/envelope.proto")).unwrap();
    let edited = edit(&schema);
    assert_ne!(edited, schema, "the edit must change the schema");
    std::fs::write(proto_dir.join("envelope.proto"), edited).unwrap();
    dir
}

fn assert_break_detected(test: &str, edit: impl Fn(&str) -> String, expect_in_report: &str) {
    let Some(buf) = buf(test) else { return };
    let dir = edited_copy(edit);
    let baseline = workspace_root().join(BASELINE);
    let out = run(
        &buf,
        dir.path(),
        &["breaking", "--against", baseline.to_str().unwrap()],
    );
    let report = text(&out);
    assert!(
        !out.status.success(),
        "buf breaking accepted a breaking edit:\n{report}"
    );
    assert!(
        report.contains(expect_in_report),
        "unexpected report:\n{report}"
    );
}

#[test]
fn renumbering_a_field_is_reported_as_breaking() {
    assert_break_detected(
        "renumbering_a_field_is_reported_as_breaking",
        |s| s.replace("uint64 offset = 6;", "uint64 offset = 16;"),
        "\"offset\"",
    );
}

#[test]
fn retyping_a_field_is_reported_as_breaking() {
    assert_break_detected(
        "retyping_a_field_is_reported_as_breaking",
        |s| s.replace("uint32 partition_id = 5;", "string partition_id = 5;"),
        "partition_id",
    );
}

#[test]
fn adding_a_field_is_not_breaking() {
    let Some(buf) = buf("adding_a_field_is_not_breaking") else {
        return;
    };
    let dir = edited_copy(|s| {
        s.replace(
            "  uint32 replay_count = 10;\n}",
            "  uint32 replay_count = 10;\n  // A later addition.\n  string note = 11;\n}",
        )
    });
    let baseline = workspace_root().join(BASELINE);
    let out = run(
        &buf,
        dir.path(),
        &["breaking", "--against", baseline.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "adding a field was reported:\n{}",
        text(&out)
    );
}
