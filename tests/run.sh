#!/usr/bin/env bash
# The whole iggy-dlq test suite, the same on a laptop and in CI.
#
# Installs what it needs on first use and reuses it afterwards:
#   .venv/                      Python venv with tests/requirements.txt
#   tests/tools/node_modules/   buf, from the npm package @bufbuild/buf (pinned)
# Then runs: rustfmt, clippy (-D warnings), rustdoc (-D warnings), every
# cargo test, buf lint, buf breaking, builds the Python module's wheel with
# maturin and installs it into .venv, checks its type stubs with
# mypy.stubtest, and runs pytest (tests/python, bindings-python/tests).
#
# Tests that need a real Iggy server run when IGGY_TEST_ADDRESS or
# IGGY_SERVER_BIN is set, and print why they were skipped otherwise.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

step() { printf '\n==> %s\n' "$*"; }

step "tools: buf (npm @bufbuild/buf)"
if [ ! -x tests/tools/node_modules/.bin/buf ]; then
    npm ci --prefix tests/tools --no-audit --no-fund --loglevel=error
fi
BUF=$ROOT/tests/tools/node_modules/.bin/buf
"$BUF" --version

step "tools: Python venv (.venv)"
if [ ! -x .venv/bin/python ] || ! cmp -s tests/requirements.txt .venv/requirements.installed; then
    python3 -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -r tests/requirements.txt
    cp tests/requirements.txt .venv/requirements.installed
fi
.venv/bin/python --version

export IGGY_DLQ_REQUIRE_TOOLS=1 BUF
export PATH="$ROOT/.venv/bin:$PATH"

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

step "cargo test"
cargo test --workspace

step "buf lint"
"$BUF" lint

step "buf breaking against tests/schema/baseline.binpb"
"$BUF" breaking --against tests/schema/baseline.binpb

step "bindings-python: build the wheel (maturin build --release) and install it"
rm -f target/wheels/iggy_dlq-*.whl
maturin build --release --quiet --manifest-path bindings-python/Cargo.toml --out target/wheels
python -m pip install --quiet --force-reinstall --no-deps target/wheels/iggy_dlq-*.whl

step "bindings-python: type stubs (mypy.stubtest iggy_dlq)"
# From target/, so that mypy keeps its cache there and sees only the installed package.
(cd target && python -m mypy.stubtest iggy_dlq)

step "pytest"
python -m pytest -q -rs -W error -p no:cacheprovider tests/python
python -m pytest -q -rs -W error -p no:cacheprovider bindings-python/tests

if [ -z "${IGGY_TEST_ADDRESS:-}" ] && [ -z "${IGGY_SERVER_BIN:-}" ]; then
    step "all checks passed; the live tests against an Iggy server were SKIPPED (no IGGY_TEST_ADDRESS or IGGY_SERVER_BIN; see README, Live tests)"
else
    step "all checks passed, live tests included"
fi
