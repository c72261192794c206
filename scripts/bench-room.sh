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
TOOLS="${TESSERA_TOOLS:-$HOME/.cache/tessera-tools}"
PY="$TOOLS/lk-venv/bin/python"
BIN=target/release/tessera
[ -x "$BIN" ] || cargo build --release --quiet
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/lk.yaml" <<EOF
port: $port
bind_addresses: ["127.0.0.1"]
rtc: {tcp_port: $((port + 1)), udp_port: $((port + 2)), use_external_ip: false, enable_loopback_candidate: true, interfaces: {includes: [lo]}}
logging: {level: warn}
EOF
"$TOOLS/bin/livekit-server" --dev --node-ip 127.0.0.1 --config "$work/lk.yaml" >"$work/lk.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
URL="ws://127.0.0.1:$port"
colours=(217,85,44 44,110,217 85,217,44 217,44,180)
for i in 0 1 2 3; do
  "$PY" scripts/lk-publish.py --url "$URL" --room bench --identity "p$i" \
    --rgb "${colours[$i]}" --tone $((300 + 120 * i)) >"$work/p$i.log" 2>/dev/null &
  pids+=($!)
done
for i in 0 1 2 3; do
  for _ in $(seq 300); do grep -q published "$work/p$i.log" 2>/dev/null && break; sleep 0.1; done
done
echo '{"room_name": "bench", "layout": "grid", "file_outputs": [{"filepath": "b.mp4"}]}' >"$work/req.json"

# Runs tessera with "$@", sampling every thread's CPU time until it exits; prints
# "thread-name cpu-seconds" lines (summed by name) into $work/threads.txt.
measure() {
  RUST_LOG=info "$BIN" run "$work/req.json" --out "$work/out" "$@" >"$work/info.json" 2>"$work/run.log" &
  local pid=$!
  : >"$work/samples"
  while kill -0 "$pid" 2>/dev/null; do
    for t in /proc/$pid/task/*; do
      [ -r "$t/stat" ] && echo "$(basename "$t") $(cat "$t/comm" 2>/dev/null | tr ' ' '_') $(awk '{print $14+$15}' "$t/stat" 2>/dev/null)" >>"$work/samples" || true
    done
    sleep 0.25
  done
  wait "$pid"
  # The last sample of each thread, summed by name (clock ticks → seconds).
  awk -v hz="$(getconf CLK_TCK)" '{ last[$1] = $3; name[$1] = $2 }
    END { for (t in last) sum[name[t]] += last[t] / hz; for (n in sum) printf "%s %.2f\n", n, sum[n] }' \
    "$work/samples" | sort -k2 -rn >"$work/threads.txt"
}

echo "== room of 4 publishers, ${SECONDS_MEDIA} s at 720p30 =="
measure --url "$URL" --api-key devkey --api-secret secret --duration "$SECONDS_MEDIA"
room_total=$(awk '{s += $2} END {printf "%.2f", s}' "$work/threads.txt")
echo "CPU: $room_total s for $SECONDS_MEDIA s of media ($(echo "$room_total / $SECONDS_MEDIA" | bc -l | xargs printf '%.2f') cores); by thread:"
sed 's/^/  /' "$work/threads.txt" | head -20

echo "== synthetic room of 4 (baseline, same request) =="
measure --room synthetic:4 --duration "$SECONDS_MEDIA"
synth_total=$(awk '{s += $2} END {printf "%.2f", s}' "$work/threads.txt")
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
