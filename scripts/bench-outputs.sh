#!/usr/bin/env bash
# Outputs benchmark, two figures measured in one run on this machine:
#  1. CPU seconds per media second with one file output, against the same egress with
#     file + HLS + RTMP + SRT + images (rounds alternate; the ratio shows the encode
#     happens once: more outputs add muxing, not encoding).
#  2. RTMP end-to-end latency: a frame's composition time (tessera's media clock) to its
#     arrival at a player pulling the stream back from nginx-rtmp (median, p90).
# Receivers (nginx-rtmp, srt-live-transmit) are started here on loopback and stopped at
# the end. Usage: bash scripts/bench-outputs.sh [SECONDS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-20}
ROUNDS=${2:-2}
bash scripts/setup.sh
cargo build --release --quiet
BIN=target/release/tessera
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RTMP_PORT=$(port)
SRT_PORT=$(port)
mkdir -p "$WORK/rec"
cat > "$WORK/nginx.conf" <<CONF
daemon off; master_process off; worker_processes 1; pid $WORK/nginx.pid;
error_log $WORK/error.log warn;
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
events { worker_connections 64; }
rtmp { server { listen 127.0.0.1:$RTMP_PORT; application live { live on; } } }
CONF
nginx -p "$WORK" -c "$WORK/nginx.conf" -e "$WORK/error.log" & PIDS+=($!)
sleep 0.5

ROOM="synthetic:4,grain=6"
cat > "$WORK/one.json" <<JSON
{"room_name": "bench", "file_outputs": [{"filepath": "one.mp4"}]}
JSON
cpu_run() { # request → CPU seconds (user + sys) of the whole process
  local req=$1 out=$2
  local t0 t1
  t0=$(awk '{print $14+$15+$16+$17}' /proc/self/stat)
  /usr/bin/env bash -c "TIMEFORMAT='%3U %3S'; time $BIN run $req --room $ROOM --duration $SECS --out $out >/dev/null 2>$out.log" 2>"$out.time"
  awk '{printf "%.3f", $1+$2}' "$out.time"
}

echo "outputs benchmark: $SECS s per run, $ROUNDS rounds, room $ROOM, 720p30" >&2
one_total=0; all_total=0
for r in $(seq 1 "$ROUNDS"); do
  one=$(cpu_run "$WORK/one.json" "$WORK/one-$r")
  srt-live-transmit "srt://127.0.0.1:$SRT_PORT?mode=listener" file://con > /dev/null 2>&1 & SRT_PID=$!; PIDS+=($SRT_PID)
  sleep 0.3
  cat > "$WORK/all.json" <<JSON
{"room_name": "bench", "file_outputs": [{"filepath": "all.mp4"}],
 "segment_outputs": [{"filename_prefix": "hls/s", "playlist_name": "p.m3u8"}],
 "stream_outputs": [{"urls": ["rtmp://127.0.0.1:$RTMP_PORT/live/bench$r", "srt://127.0.0.1:$SRT_PORT"]}],
 "image_outputs": [{"capture_interval": 5, "width": 640, "height": 360}]}
JSON
  all=$(cpu_run "$WORK/all.json" "$WORK/all-$r")
  kill "$SRT_PID" 2>/dev/null || true
  echo "round $r: one file ${one} CPU-s, all outputs ${all} CPU-s" >&2
  one_total=$(echo "$one_total + $one" | bc -l); all_total=$(echo "$all_total + $all" | bc -l)
done
printf 'cpu per media second: one file %.3f, all outputs %.3f, ratio %.3f\n' \
  "$(echo "$one_total / ($ROUNDS * $SECS)" | bc -l)" \
  "$(echo "$all_total / ($ROUNDS * $SECS)" | bc -l)" \
  "$(echo "$all_total / $one_total" | bc -l)"

# Latency: stream to nginx, pull it back with ffprobe, stamp each packet's arrival.
cat > "$WORK/lat.json" <<JSON
{"room_name": "bench", "stream_outputs": [{"urls": ["rtmp://127.0.0.1:$RTMP_PORT/live/lat"]}]}
JSON
RUST_LOG=info $BIN run "$WORK/lat.json" --room "$ROOM" --duration "$SECS" --out "$WORK/lat" >/dev/null 2>"$WORK/lat.log" & PIDS+=($!)
TPID=$!
python3 - "$RTMP_PORT" "$WORK/lat.log" "$SECS" <<'PY'
import re, subprocess, sys, time, statistics
port, log, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
time.sleep(2.0)  # the stream is up
# A player: ffmpeg pulls the stream and re-emits it as FLV, flushing every packet; each
# video tag's arrival time is taken when its last byte is read. ffmpeg probes up to 2 s
# to find both streams (it holds those packets back), so the first 3 s are skipped.
p = subprocess.Popen(["ffmpeg", "-v", "error", "-fflags", "nobuffer", "-probesize", "1000000",
    "-analyzeduration", "2000000", "-i", f"rtmp://127.0.0.1:{port}/live/lat", "-c", "copy", "-copyts",
    "-flush_packets", "1", "-f", "flv", "pipe:1"], stdout=subprocess.PIPE)
buf, arrivals, deadline = b"", [], time.time() + secs - 4
pos = 13  # FLV header (9) + first previous-tag-size (4)
while time.time() < deadline:
    chunk = p.stdout.read1(65536)
    if not chunk:
        break
    buf += chunk
    now = time.time()
    while len(buf) >= pos + 11:
        kind = buf[pos]
        size = int.from_bytes(buf[pos + 1:pos + 4], "big")
        ts = int.from_bytes(buf[pos + 4:pos + 7], "big") | (buf[pos + 7] << 24)
        if len(buf) < pos + 11 + size + 4:
            break
        if kind == 9:
            arrivals.append((ts / 1000.0, now))
        pos += 11 + size + 4
p.kill()
strip = lambda s: re.sub(r"\x1b\[[0-9;]*m", "", s)
text = strip(open(log).read())
clock = int(re.search(r"media clock started.*?unix_ms=(\d+)", text).group(1)) / 1000
m = re.search(r"stream starts on a key frame.*?media_s=([0-9.]+) stream_s=([0-9.]+)", text)
media0, stream0 = float(m.group(1)), float(m.group(2))
# With -copyts the tags keep the publisher's times, which tessera rebased: stream time t
# carries media time t - stream0 + media0, composed at clock + that.
lat = sorted(arr - (clock + t - stream0 + media0) for t, arr in arrivals[90:])
if not lat:
    sys.exit("no packets received")
print(f"rtmp latency (composed -> received): median {statistics.median(lat)*1000:.0f} ms, "
      f"p90 {lat[int(len(lat)*0.9)]*1000:.0f} ms, {len(lat)} frames")
PY
wait "$TPID" || true
