#!/usr/bin/env bash
# Measures recording a real LiveKit room: CPU per media second of a 4-publisher
# RoomComposite at 720p30 (grid, H.264 file), split by thread, against the same egress on a
# synthetic room of 4 in the same run; and join-to-first-frame (request to the first
# composited frame with every tile live), median of 5 runs.
#
#   bash scripts/bench-room.sh [SECONDS]      (default 20)
#
# Starts livekit-server and 4 publishers (LiveKit's Python SDK, 640x360 VP8 at 30 fps) on
# loopback; needs `bash scripts/setup.sh` and a release build (`cargo build --release`).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_MEDIA="${1:-20}"
. scripts/lib/livekit-bench.sh
lk_start
colours=(217,85,44 44,110,217 85,217,44 217,44,180)
for i in 0 1 2 3; do
  lk_publish "p$i" --room bench --identity "p$i" --rgb "${colours[$i]}" --tone $((300 + 120 * i))
done
lk_wait_published p0 p1 p2 p3
echo '{"room_name": "bench", "layout": "grid", "file_outputs": [{"filepath": "b.mp4"}]}' >"$work/req.json"

echo "== room of 4 publishers, ${SECONDS_MEDIA} s at 720p30 =="
lk_measure --url "$URL" --api-key devkey --api-secret secret --duration "$SECONDS_MEDIA"
room_total=$(lk_total)
echo "CPU: $room_total s for $SECONDS_MEDIA s of media ($(echo "$room_total / $SECONDS_MEDIA" | bc -l | xargs printf '%.2f') cores); by thread:"
sed 's/^/  /' "$work/threads.txt" | head -20

echo "== synthetic room of 4 (baseline, same request) =="
lk_measure --room synthetic:4 --duration "$SECONDS_MEDIA"
synth_total=$(lk_total)
echo "CPU: $synth_total s ($(echo "$synth_total / $SECONDS_MEDIA" | bc -l | xargs printf '%.2f') cores)"
echo "ratio room / synthetic: $(echo "$room_total / $synth_total" | bc -l | xargs printf '%.2f')"

echo "== join to first frame (5 runs) =="
times=()
for k in 1 2 3 4 5; do
  start=$(date +%s%3N)
  RUST_LOG=info "$BIN" run "$work/req.json" --out "$work/out" --url "$URL" --api-key devkey \
    --api-secret secret --duration 1 >/dev/null 2>"$work/join.log"
  first=$(grep -o 'unix_ms=[0-9]*' "$work/join.log" | head -1 | cut -d= -f2)
  times+=($((first - start)))
  echo "  run $k: $((first - start)) ms"
done
median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 3p)
echo "join-to-first-frame median: $median ms (process start to media time 0 with every tile live)"
