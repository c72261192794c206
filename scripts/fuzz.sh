#!/usr/bin/env bash
# Runs the property tests that feed hostile input to tessera's parsers (src/fuzz.rs: requests
# as JSON and protobuf, psrpc frames, SDP, RTCP, names; tests/core/layout_check.rs: layout TOML)
# with many more cases than CI does, and prints how many ran.
#
#   bash scripts/fuzz.sh [CASES_PER_PROPERTY]     # default 200000
set -euo pipefail
cd "$(dirname "$0")/.."
cases="${1:-200000}"
start=$(date +%s)
log=$(mktemp)
PROPTEST_CASES="$cases" cargo test --lib fuzz -- --test-threads 2 2>&1 | tee "$log"
PROPTEST_CASES="$cases" cargo test --test core never_panic -- --test-threads 2 2>&1 | tee -a "$log"
props=$(grep -cE '^test .* \.\.\. ok$' "$log" || true)
failed=$(grep -cE '^test .* \.\.\. FAILED$' "$log" || true)
end=$(date +%s)
echo "fuzz: $props properties x $cases cases = $((props * cases)) cases passed, $failed failed, in $((end - start)) s on $(nproc) cores"
[ "$failed" -eq 0 ]
