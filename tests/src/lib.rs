//! Support for the end-to-end tests of iggy-dlq: the golden vectors, and
//! helpers to find the workspace and the tools the tests drive.

#![warn(missing_docs)]

pub mod vectors;

use std::path::PathBuf;

/// The root of the workspace.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace root")
        .to_path_buf()
}

/// Finds a command-line tool a test drives: the path in environment
/// variable `env_var`, else `default` relative to the workspace root.
///
/// Returns `None`, after printing that the test is skipped and why, when the
/// tool is missing, unless `IGGY_DLQ_REQUIRE_TOOLS=1` (set by the project's
/// test command), where a missing tool fails the test instead.
///
/// # Panics
///
/// When the tool is missing and `IGGY_DLQ_REQUIRE_TOOLS=1`.
pub fn find_tool(test: &str, env_var: &str, default: &str) -> Option<PathBuf> {
    let path = std::env::var_os(env_var)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(default));
    if path.is_file() {
        return Some(path);
    }
    let why = format!(
        "{} not found (set {env_var}, or run tests/run.sh, which installs it)",
        path.display()
    );
    if std::env::var("IGGY_DLQ_REQUIRE_TOOLS").as_deref() == Ok("1") {
        panic!("{test}: {why}");
    }
    eprintln!("SKIPPED {test}: {why}");
    None
}
