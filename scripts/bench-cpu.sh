#!/usr/bin/env bash
# CPU seconds per media second of `tessera run` (synthetic 4-person room, 720p30, 3000 kbps,
# AAC, MP4) against a plain GStreamer pipeline doing the same work (4 moving-picture tiles
# on a CPU `compositor`, `x264enc` veryfast at the same size, rate, bitrate and tile
# geometry, 4 tones mixed, AAC, fragmented MP4). Both run paced to the wall clock, in
# alternation, ROUNDS times; the ratio is of the totals.
#
# Usage: scripts/bench-cpu.sh [SECONDS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-20}
ROUNDS=${2:-2}
FPS=30
bash scripts/setup.sh >/dev/null
cargo build --release --quiet
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# Tile geometry of layouts/grid.toml for 4 participants at 1280x720 (contain-fit of 16:9
# pictures into 630x350 cells: 622x350, centred).
tiles=( "11 7" "647 7" "11 363" "647 363" )
# The synthetic participants' colours and tones (src/source/synthetic.rs).
colours=( 0xffd96736 0xff3836d9 0xff64d936 0xffd93694 )
freqs=( 300 420 540 660 )

gst_pipeline() {
  local p="compositor name=mix background=black"
  for i in 0 1 2 3; do
    read -r x y <<<"${tiles[$i]}"
    p+=" sink_$i::xpos=$x sink_$i::ypos=$y sink_$i::width=622 sink_$i::height=350"
  done
  p+=" ! video/x-raw,format=I420,width=1280,height=720,framerate=$FPS/1"
  p+=" ! x264enc speed-preset=veryfast bitrate=3000 bframes=0 ! h264parse ! queue ! mux."
  for i in 0 1 2 3; do
    p+=" videotestsrc is-live=true num-buffers=$((SECS * FPS)) pattern=ball background-color=${colours[$i]} foreground-color=0xffffffff"
    p+=" ! video/x-raw,format=I420,width=640,height=360,framerate=$FPS/1 ! mix.sink_$i"
  done
  p+=" audiomixer name=amix ! audioconvert ! audioresample ! audio/x-raw,rate=44100,channels=2"
  p+=" ! avenc_aac bitrate=128000 ! aacparse ! queue ! mux."
  for i in 0 1 2 3; do
    p+=" audiotestsrc is-live=true freq=${freqs[$i]} volume=0.1 samplesperbuffer=1600 num-buffers=$((SECS * FPS))"
    p+=" ! audio/x-raw,rate=48000,channels=1 ! amix."
  done
  p+=" mp4mux name=mux fragment-duration=1000 ! filesink location=$WORK/gst.mp4"
  echo "$p"
}

# Runs a command and prints the CPU seconds (user + system) it and its children used.
cpu_of() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{r.ru_utime + r.ru_stime:.2f}")
PY
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "media: $SECS s per run, $ROUNDS rounds, 1280x720@$FPS, 4 tiles, x264 veryfast 3000 kbps, AAC 128 kbps"
t_total=0; g_total=0
for r in $(seq 1 "$ROUNDS"); do
  t=$(cpu_of ./target/release/tessera run --room synthetic:4 --duration "$SECS" --out "$WORK/t")
  # shellcheck disable=SC2046
  g=$(cpu_of gst-launch-1.0 -q -e $(gst_pipeline))
  echo "round $r: tessera $(awk "BEGIN{printf \"%.3f\", $t / $SECS}") cpu-s/media-s, gstreamer $(awk "BEGIN{printf \"%.3f\", $g / $SECS}") cpu-s/media-s"
  t_total=$(awk "BEGIN{print $t_total + $t}"); g_total=$(awk "BEGIN{print $g_total + $g}")
done
echo "tessera:   $(awk "BEGIN{printf \"%.3f\", $t_total / ($SECS * $ROUNDS)}") CPU-s per media-s"
echo "gstreamer: $(awk "BEGIN{printf \"%.3f\", $g_total / ($SECS * $ROUNDS)}") CPU-s per media-s"
echo "ratio tessera/gstreamer: $(awk "BEGIN{printf \"%.3f\", $t_total / $g_total}")"
