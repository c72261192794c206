#!/usr/bin/env bash
# Soak: long recordings, sampled for leaks. Three synthetic room composites with every
# output kind a room composite writes locally or streams (MP4 file, HLS segments, RTMP to
# nginx-rtmp, JPEG images) run for SYN_SECONDS, and one composite of a real LiveKit room
# (livekit-server and two publishers on loopback) for ROOM_SECONDS, all at once. Every
# 10 s each tessera's RSS and open descriptors are sampled; at the end a least-squares
# slope per process (after a 60 s warm-up) is printed, and the samples and a plot (SVG)
# are written to OUT_DIR.
#
#   bash scripts/soak.sh [SYN_SECONDS] [ROOM_SECONDS] [OUT_DIR]     # default 3600 1800 soak-out
#   TESSERA_BIN=target/debug/tessera SOAK_SIZE=640x360x15 bash scripts/soak.sh 600 300
#
# Size and rate: SOAK_SIZE (default 1280x720x30); on a 2-core machine use a smaller one so
# that four egresses keep real time (a leak shows at any size).
set -euo pipefail
cd "$(dirname "$0")/.."
SYN=${1:-3600}
ROOM_S=${2:-1800}
OUT=${3:-soak-out}
SIZE=${SOAK_SIZE:-1280x720x30}
IFS=x read -r W H FPS <<<"$SIZE"
bash scripts/setup.sh >/dev/null
if [ -z "${TESSERA_BIN:-}" ]; then cargo build --release --quiet; fi
source scripts/lib/livekit-bench.sh
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
mkdir -p "$OUT"
port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Receivers: nginx-rtmp takes the streams (and drops them: nobody plays).
RTMP_PORT=$(port)
cat >"$work/nginx.conf" <<CONF
daemon off; master_process off; worker_processes 1; pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
events { worker_connections 64; }
rtmp { server { listen 127.0.0.1:$RTMP_PORT; application live { live on; } } }
CONF
nginx -p "$work" -c "$work/nginx.conf" -e "$work/nginx-error.log" &
pids+=($!)

ADV="\"advanced\": {\"width\": $W, \"height\": $H, \"framerate\": $FPS}"
every_output() { # name → a room composite request with every local and stream output
  cat <<JSON
{"room_name": "$1", "layout": "grid", $ADV,
 "file_outputs": [{"filepath": "$1/rec.mp4"}],
 "segment_outputs": [{"filename_prefix": "$1/hls/s", "playlist_name": "$1/hls/p.m3u8", "segment_duration": 4}],
 "stream_outputs": [{"urls": ["rtmp://127.0.0.1:$RTMP_PORT/live/$1"]}],
 "image_outputs": [{"capture_interval": 10, "width": 320, "height": 180, "filename_prefix": "$1/img/i"}]}
JSON
}

declare -A LABEL
for i in 1 2 3; do
  every_output "syn$i" >"$work/syn$i.json"
  RUST_LOG=warn "$BIN" run "$work/syn$i.json" --room "synthetic:4,grain=6,speak=5" \
    --duration "$SYN" --out "$work/out" >"$work/syn$i.info" 2>"$work/syn$i.log" &
  pids+=($!); LABEL[$!]="synthetic-$i"
done

# The real room: livekit-server, two publishers, one composite with the same outputs.
lk_start
lk_publish alice --room soak --identity alice --duration $((ROOM_S + 60))
lk_publish bob --room soak --identity bob --duration $((ROOM_S + 60))
lk_wait_published alice bob
every_output soak >"$work/room.json"
RUST_LOG=warn "$BIN" run "$work/room.json" --url "$URL" --api-key devkey --api-secret secret \
  --duration "$ROOM_S" --out "$work/out" >"$work/room.info" 2>"$work/room.log" &
pids+=($!); LABEL[$!]="real-room"

SAMPLES="$OUT/samples.csv"
echo "seconds,process,rss_kib,fds" >"$SAMPLES"
start=$(date +%s)
echo "soak: 3 synthetic composites for $SYN s, a real-room composite for $ROOM_S s, $SIZE, sampling every 10 s" >&2
while :; do
  alive=0
  now=$(( $(date +%s) - start ))
  for pid in "${!LABEL[@]}"; do
    [ -r "/proc/$pid/status" ] || continue
    alive=1
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
    echo "$now,${LABEL[$pid]},$rss,$fds" >>"$SAMPLES"
  done
  [ "$alive" = 1 ] || break
  if [ $((now % 300)) -lt 10 ]; then echo "  $now s: $(grep -c . "$SAMPLES") samples" >&2; fi
  sleep 10
done
for f in "$work"/syn?.info "$work/room.info"; do
  printf '%s: %s\n' "$(basename "$f" .info)" "$(python3 -c 'import json,sys; i=json.load(open(sys.argv[1])); print(i.get("status"), i.get("error",""))' "$f" 2>/dev/null || echo "no EgressInfo")"
done | tee "$OUT/status.txt"

python3 scripts/soak-report.py "$SAMPLES" "$OUT"
