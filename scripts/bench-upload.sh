#!/usr/bin/env bash
# Upload throughput and memory: one file (default 200 MB) to MinIO on loopback, with
# tessera's uploader (examples/upload_bench.rs) and with boto3 (what `aws s3 cp` is built
# on: 8 MB parts, 10 at a time), alternating, in the same run.
#
#   bash scripts/bench-upload.sh [MB] [ROUNDS]
#
# Needs scripts/setup.sh's MinIO (in ${TESSERA_TOOLS:-$HOME/.cache/tessera-tools}/bin);
# installs boto3 into a venv there.
set -euo pipefail
cd "$(dirname "$0")/.."
MB=${1:-200}
ROUNDS=${2:-2}
TOOLS="${TESSERA_TOOLS:-$HOME/.cache/tessera-tools}"
[ -x "$TOOLS/bin/minio" ] || { echo "run scripts/setup.sh first (MinIO)" >&2; exit 1; }
[ -x "$TOOLS/boto-venv/bin/python" ] || {
  python3 -m venv "$TOOLS/boto-venv"
  "$TOOLS/boto-venv/bin/pip" install -q --disable-pip-version-check boto3
}
cargo build -q --example upload_bench
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export MINIO_ROOT_USER=bench-user MINIO_ROOT_PASSWORD=bench-secret-123 MINIO_BROWSER=off
"$TOOLS/bin/minio" server --quiet --address "127.0.0.1:$port" --console-address "127.0.0.1:$cport" \
  "$work/data" >"$work/minio.log" 2>&1 &
minio=$!
trap 'kill $minio 2>/dev/null; rm -rf "$work"' EXIT
endpoint="http://127.0.0.1:$port"
for _ in $(seq 100); do
  curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user "bench-user:bench-secret-123" \
    -X PUT "$endpoint/bench" -o /dev/null && break
  sleep 0.2
done
head -c "${MB}M" /dev/urandom >"$work/file.bin"
cat >"$work/boto.py" <<'PY'
import sys, time, resource, boto3
from botocore.config import Config
file, endpoint = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="bench-user",
                  aws_secret_access_key="bench-secret-123", region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}))
t = time.monotonic()
s3.upload_file(file, "bench", "boto-file.bin")
secs = time.monotonic() - t
print(f"boto3 seconds={secs:.3f} peak_rss_mib={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024:.1f}")
PY
echo "file: ${MB} MB, MinIO on loopback, $(nproc) cores"
for r in $(seq "$ROUNDS"); do
  b=$("$TOOLS/boto-venv/bin/python" "$work/boto.py" "$work/file.bin" "$endpoint")
  t=$(target/debug/examples/upload_bench "$work/file.bin" "$endpoint" bench bench-user bench-secret-123)
  echo "round $r: $b | $t"
  bs=$(echo "$b" | sed -E 's/.*seconds=([0-9.]+).*/\1/')
  ts=$(echo "$t" | sed -E 's/.*seconds=([0-9.]+).*/\1/')
  awk -v b="$bs" -v t="$ts" -v mb="$MB" 'BEGIN { printf "round: boto3 %.0f MB/s, tessera %.0f MB/s, tessera/boto3 throughput %.2f\n", mb/b, mb/t, b/t }'
done
