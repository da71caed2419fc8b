#!/usr/bin/env bash
# Runs the criterion benchmarks of iggy-dlq once and prints each one's time
# and its ratio against the baseline of its group, measured in the same run
# (tests/bench_ratios.py). Benchmarks are not tests: tests/run.sh does not
# run them, it only compiles them (clippy --all-targets).
#
#   bash tests/bench.sh            # every benchmark, a few minutes
#   bash tests/bench.sh decode     # only those whose id contains "decode"
#
# Measurement is kept short (1 s warm-up, 3 s per benchmark); override with
# BENCH_ARGS, e.g. BENCH_ARGS="--warm-up-time 3 --measurement-time 10".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

export CRITERION_HOME=${CRITERION_HOME:-${CARGO_TARGET_DIR:-$ROOT/target}/criterion}
read -r -a ARGS <<<"${BENCH_ARGS:---warm-up-time 1 --measurement-time 3}"

mkdir -p "$CRITERION_HOME"
STAMP=$(mktemp "$CRITERION_HOME/.run.XXXXXX")
trap 'rm -f "$STAMP"' EXIT

# The library targets are benchmark targets too; name the criterion ones so
# that their arguments reach criterion only.
for target in iggy-dlq-envelope:envelope iggy-dlq-sdk:partition iggy-dlq-runtime:dlq_path; do
    cargo bench --quiet -p "${target%%:*}" --bench "${target#*:}" -- "${ARGS[@]}" "$@"
done

printf '\nMedian of each benchmark; ratios against the baseline of its group, same run:\n\n'
python3 tests/bench_ratios.py --since "$STAMP" "$CRITERION_HOME"
