#!/usr/bin/env bash
# Runs the test suite. With no argument: sets up the machine and runs everything (what CI
# runs). With --quick: the edit loop — formatting, clippy, unit tests and the compositor
# and layout tests (tests/core), no services (run the full suite or scripts/setup.sh once
# first on a fresh machine).
#
# The full run builds the tests first, then runs them while the lints (clippy, and the
# build without the `egress` feature) run beside them at the lowest CPU and IO priority in
# their own target directory (target/lint): the tests mostly wait on real time and leave a
# core idle. Either failing fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=false
case "${1:-}" in
  --quick) quick=true ;;
  "") ;;
  *) echo "usage: scripts/test.sh [--quick]" >&2; exit 2 ;;
esac
$quick || bash scripts/setup.sh
# The Vulkan loader complains on stderr without a runtime directory (the binary sets its own).
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
export lint_dir="$PWD/target/lint"
# Chained with &&: in the background it runs in a shell of its own, without `set -e`.
lint() {
  local start=$SECONDS
  CARGO_TARGET_DIR="$lint_dir" cargo clippy --all-targets --quiet -- -D warnings &&
    # The GPU bench builds without GStreamer.
    CARGO_TARGET_DIR="$lint_dir" cargo check --no-default-features --benches --quiet &&
    echo "lints: clean, in $((SECONDS - start)) s"
}
cargo fmt --check
log=$(mktemp)
lint_log=$(mktemp)
trap 'rm -f "$log" "$lint_log"' EXIT
if $quick; then
  lint
  set +e
  cargo test --lib --test core 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  set -e
  lint_status=0
else
  cargo test --lib --tests --no-run --quiet
  export -f lint
  nice -n 19 ionice -c 3 bash -c lint >"$lint_log" 2>&1 &
  lint_pid=$!
  set +e
  cargo test --lib --tests 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  wait "$lint_pid"
  lint_status=$?
  set -e
  cat "$lint_log"
fi
# One closing line for the whole suite.
awk '/^test result:/ { p += $4; f += $6 } END { printf "all tests: %d passed, %d failed\n", p, f }' "$log"
if [ "$lint_status" -ne 0 ]; then
  echo "lints failed (clippy, or the build without the egress feature): see above" >&2
fi
[ "$status" -eq 0 ] && [ "$lint_status" -eq 0 ]
