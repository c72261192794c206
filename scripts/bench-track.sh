#!/usr/bin/env bash
# Measures track egress (no transcoding) against a transcoding TrackComposite of the same
# track, in the same run: CPU seconds per media second of the recorder, for one 1080p30
# H.264 camera published by LiveKit's Python SDK.
#
#   bash scripts/bench-track.sh [SECONDS]      (default 20)
#
# Starts livekit-server and one publisher on loopback; needs `bash scripts/setup.sh` and a
# release build (`cargo build --release`).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_MEDIA="${1:-20}"
. scripts/lib/livekit-bench.sh
lk_start
lk_publish cam --room bench --identity cam --codec h264 --width 1920 --height 1080 \
  --fps 30 --no-audio
lk_wait_published cam
track=$(grep -o 'track camera sid=[A-Za-z0-9_]*' "$work/cam.log" | cut -d= -f2)
auth=(--url "$URL" --api-key devkey --api-secret secret --duration "$SECONDS_MEDIA")

echo "== track egress of $track (1080p30 H.264 as received → MP4), ${SECONDS_MEDIA} s =="
echo "{\"room_name\": \"bench\", \"track_id\": \"$track\", \"file\": {\"filepath\": \"t\"}}" >"$work/req.json"
lk_measure "${auth[@]}"
track_cpu=$(lk_total)
media=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$work"/out/t.mp4)
size=$(ffprobe -v error -select_streams v -show_entries stream=width,height,nb_frames -of csv=p=0 "$work"/out/t.mp4)
echo "recorded: $size (width,height[,frames]) as published"
echo "CPU: $track_cpu s for $media s of media; by thread:"
sed 's/^/  /' "$work/threads.txt" | head -8
rm -rf "$work/out"

echo "== track composite of the same track (decode, composite, x264 1080p30 → MP4) =="
echo "{\"room_name\": \"bench\", \"video_track_id\": \"$track\", \"preset\": \"H264_1080P_30\",
       \"file_outputs\": [{\"filepath\": \"c.mp4\"}]}" >"$work/req.json"
lk_measure "${auth[@]}"
composite_cpu=$(lk_total)
media_c=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$work"/out/c.mp4)
echo "CPU: $composite_cpu s for $media_c s of media; by thread:"
sed 's/^/  /' "$work/threads.txt" | head -8

per() { echo "$1 / $2" | bc -l | xargs printf '%.3f'; }
echo "track egress:    $(per "$track_cpu" "$media") CPU s per media s"
echo "track composite: $(per "$composite_cpu" "$media_c") CPU s per media s"
echo "ratio track / composite: $(per "$(per "$track_cpu" "$media")" "$(per "$composite_cpu" "$media_c")")"
