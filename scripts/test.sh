#!/usr/bin/env bash
# Sets up the machine and runs the whole test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
cargo check --no-default-features --benches --quiet   # the GPU bench builds without GStreamer
cargo test
