#!/usr/bin/env bash
# What captions and isolated audio cost: the same RoomComposite (grid, 720p30, an MP4
# file and HLS) on a real room of 4 publishers that speak and send transcriptions (a text
# stream on lk.transcription every 2 s each, interim then final), recorded without the
# conversation extensions and with all of them ("captions": {"webvtt": true,
# "burn_in": true}, "isolated_audio": true), alternately, ROUNDS times each, in one run.
# CPU is the process's user+system time from getrusage (every thread, short-lived ones and
# the end's remux included); the per-thread split is sampled from /proc as in
# bench-room.sh (threads that live less than a sample are missed there).
#
#   bash scripts/bench-conversation.sh [SECONDS] [ROUNDS]     (default 20 s, 2 rounds)
#
# Needs `bash scripts/setup.sh` and a release build (`cargo build --release`).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_MEDIA="${1:-20}"
ROUNDS="${2:-2}"
. scripts/lib/livekit-bench.sh
lk_start
colours=(217,85,44 44,110,217 85,217,44 217,44,180)
span=$(( (SECONDS_MEDIA + 8) * ROUNDS * 2 + 10 ))
for i in 0 1 2 3; do
  caps=()
  for ((t = 2 + i; t < span; t += 2)); do
    caps+=(--caption "$t|SG_${i}_$t|interim|participant $i is saying something")
    caps+=(--caption "$((t + 1))|SG_${i}_$t|final|participant $i said something at $t seconds")
  done
  lk_publish "p$i" --room bench --identity "p$i" --rgb "${colours[$i]}" --tone $((300 + 120 * i)) "${caps[@]}"
done
lk_wait_published p0 p1 p2 p3
outputs='"file_outputs": [{"filepath": "b.mp4"}], "segment_outputs": [{"filename_prefix": "h/b", "playlist_name": "h/b.m3u8"}]'
plain="{\"room_name\": \"bench\", \"layout\": \"grid\", $outputs}"
conv="{\"room_name\": \"bench\", \"layout\": \"grid\", $outputs, \"captions\": {\"webvtt\": true, \"burn_in\": true}, \"isolated_audio\": true}"

declare -A total=([plain]=0 [conversation]=0)
for ((r = 1; r <= ROUNDS; r++)); do
  for kind in plain conversation; do
    if [ "$kind" = plain ]; then echo "$plain" >"$work/req.json"; else echo "$conv" >"$work/req.json"; fi
    rm -rf "$work/out"
    TESSERA_BIN_WRAP="$PY scripts/lib/rusage.py $work/rusage" \
      lk_measure --url "$URL" --api-key devkey --api-secret secret --duration "$SECONDS_MEDIA"
    cpu=$(cat "$work/rusage")
    total[$kind]=$(echo "${total[$kind]} + $cpu" | bc -l)
    cues=$(grep -o 'captions written cues=[0-9]*' "$work/run.log" | cut -d= -f2 || true)
    echo "round $r, $kind: $cpu CPU s for $SECONDS_MEDIA s ($(echo "$cpu / $SECONDS_MEDIA" | bc -l | xargs printf '%.3f') cores)${cues:+, $cues cues}"
    if [ "$kind" = conversation ]; then
      echo "  by thread:"; sed 's/^/    /' "$work/threads.txt" | head -12
    fi
  done
done
p=$(echo "${total[plain]} / ($SECONDS_MEDIA * $ROUNDS)" | bc -l)
c=$(echo "${total[conversation]} / ($SECONDS_MEDIA * $ROUNDS)" | bc -l)
printf 'without: %.3f cores, with captions + isolated audio: %.3f cores, ratio %.3f (+%.1f%%)\n' \
  "$p" "$c" "$(echo "$c / $p" | bc -l)" "$(echo "($c / $p - 1) * 100" | bc -l)"
