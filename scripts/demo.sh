#!/usr/bin/env bash
# The main job on its embedded default: a synthetic 4-person room, grid layout, 720p30,
# composited on the GPU (lavapipe without one) and recorded to ./out as MP4.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --no-test-servers
cargo build --release --quiet
exec ./target/release/tessera run --duration "${DURATION:-10}" "$@"
