#!/usr/bin/env bash
# Runs the test suite. With no argument: sets up the machine and runs everything (what CI
# runs). With --quick: the edit loop — formatting, clippy, unit tests and the compositor
# and layout tests (tests/core), no services (run the full suite or scripts/setup.sh once
# first on a fresh machine).
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
cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if $quick; then
  cargo test --lib --bins --test core 2>&1 | tee "$log"
else
  cargo check --no-default-features --benches --quiet   # the GPU bench builds without GStreamer
  cargo test --lib --bins --tests 2>&1 | tee "$log"
fi
# One closing line for the whole suite.
awk '/^test result:/ { p += $4; f += $6 } END { printf "all tests: %d passed, %d failed\n", p, f }' "$log"
