//! Support for the end-to-end tests of iggy-dlq: the golden vectors, and
//! helpers to find the workspace and the tools the tests drive.

#![warn(missing_docs)]

pub mod iggy_server;
pub mod vectors;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

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
    print_skip(test, &why);
    None
}

/// Prints `SKIPPED <test>: <why>` straight to the process's stderr: the
/// test harness captures what `eprintln!` prints in a passing test, and a
/// skip must be seen.
pub fn print_skip(test: &str, why: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED {test}: {why}");
}

/// Builds the fixture plugins of `tests/plugins/` and the `iggy-dlq`
/// binary once per test process, with the cargo that runs the tests, into
/// the target directory the test runs from, and returns that profile
/// directory (where `libjson_sink.so`, ... and `iggy-dlq` are).
///
/// # Panics
///
/// When the build fails.
pub fn built_artifacts() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // <target>/<profile>/deps/<test>-<hash>
        let profile_dir = exe.parent().and_then(Path::parent).expect("profile dir");
        let target_dir = profile_dir.parent().expect("target dir");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(&cargo);
        // Without the variables cargo sets for a test process: build
        // scripts that watch them (ring's, through cc) would otherwise see
        // a change, and the Iggy client be built again, on every run.
        for (name, _) in std::env::vars_os() {
            if let Some(name) = name.to_str()
                && name.starts_with("CARGO_")
                && name != "CARGO_HOME"
                && !name.starts_with("CARGO_BUILD_")
                && !name.starts_with("CARGO_REGISTRIES_")
                && !name.starts_with("CARGO_NET_")
            {
                build.env_remove(name);
            }
        }
        build
            .current_dir(workspace_root())
            .args([
                "build",
                "-p",
                "json-sink",
                "-p",
                "lines-source",
                "-p",
                "plain-sink",
                "-p",
                "iggy-dlq-runtime",
            ])
            .arg("--target-dir")
            .arg(target_dir);
        if profile_dir
            .file_name()
            .is_some_and(|name| name == "release")
        {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(
            status.success(),
            "building the fixture plugins and iggy-dlq failed"
        );
        profile_dir.to_path_buf()
    })
}

/// The path of fixture plugin `crate_name` (`json_sink`, `plain_sink`, ...),
/// built by [`built_artifacts`].
pub fn fixture_plugin(crate_name: &str) -> PathBuf {
    built_artifacts().join(format!(
        "{}{crate_name}.{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_EXTENSION
    ))
}

/// The path of the `iggy-dlq` binary, built by [`built_artifacts`].
pub fn iggy_dlq_binary() -> PathBuf {
    built_artifacts().join(format!("iggy-dlq{}", std::env::consts::EXE_SUFFIX))
}
