#!/usr/bin/env bash
# What captions and isolated audio cost: the same RoomComposite (grid, 720p30, an MP4
# file and HLS) on a real room of 4 publishers that speak and send transcriptions (a text
# stream on lk.transcription every 2 s, interim then final), recorded without the
# conversation extensions (plain), with each alone (webvtt: "captions": {"webvtt": true},
# which also writes the speaker timeline and chapters; burn_in: the same and
# "burn_in": true; isolated: "isolated_audio": true) and with all of them (all), in turn,
# ROUNDS times each, in one run.
# CPU is the process's user+system time from getrusage (every thread, short-lived ones and
# the end's remux included); the per-thread split is sampled from /proc as in
# bench-room.sh (threads that live less than a sample are missed there).
#
#   [TALK=turns|all] bash scripts/bench-conversation.sh [SECONDS] [ROUNDS] [KINDS]
#     (default 20 s, 2 rounds, KINDS "plain all"; e.g. "plain webvtt burn_in isolated all")
#
# TALK=turns (the default, a meeting): the speakers take the floor in turn, 4 s each, and
# are muted (the microphone off) and not captioned otherwise. TALK=all (the worst case):
# every speaker's tone all the time, and each captioned every 2 s.
#
# Needs `bash scripts/setup.sh` and a release build (`cargo build --release`).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_MEDIA="${1:-20}"
ROUNDS="${2:-2}"
read -r -a KINDS <<<"${3:-plain all}"
TALK="${TALK:-turns}"
case "$TALK" in turns | all) ;; *) echo "TALK is turns or all" >&2; exit 2 ;; esac
. scripts/lib/livekit-bench.sh
lk_start
colours=(217,85,44 44,110,217 85,217,44 217,44,180)
span=$(( (SECONDS_MEDIA + 8) * ROUNDS * ${#KINDS[@]} + 10 ))
for i in 0 1 2 3; do
  talk=()
  if [ "$TALK" = turns ]; then
    # Speaker i has the floor for 4 s of every 16 (muted otherwise) and is captioned then.
    talk+=(--start-muted)
    for ((t = 4 * i; t < span; t += 16)); do
      talk+=(--at "$t:unmute-audio" --at "$((t + 4)):mute-audio")
      for k in 0 2; do
        talk+=(--caption "$((t + k))|SG_${i}_$((t + k))|interim|participant $i is saying something")
        talk+=(--caption "$((t + k + 1))|SG_${i}_$((t + k))|final|participant $i said something at $((t + k)) seconds")
      done
    done
  else
    for ((t = 2 + i; t < span; t += 2)); do
      talk+=(--caption "$t|SG_${i}_$t|interim|participant $i is saying something")
      talk+=(--caption "$((t + 1))|SG_${i}_$t|final|participant $i said something at $t seconds")
    done
  fi
  lk_publish "p$i" --room bench --identity "p$i" --rgb "${colours[$i]}" --tone $((300 + 120 * i)) "${talk[@]}"
done
lk_wait_published p0 p1 p2 p3
outputs='"file_outputs": [{"filepath": "b.mp4"}], "segment_outputs": [{"filename_prefix": "h/b", "playlist_name": "h/b.m3u8"}]'
declare -A extra=(
  [plain]=''
  [webvtt]=', "captions": {"webvtt": true}'
  [burn_in]=', "captions": {"webvtt": true, "burn_in": true}'
  [isolated]=', "isolated_audio": true'
  [all]=', "captions": {"webvtt": true, "burn_in": true}, "isolated_audio": true'
)
declare -A total=()
for kind in "${KINDS[@]}"; do
  [ -n "${extra[$kind]+set}" ] || { echo "unknown kind $kind (plain webvtt burn_in isolated all)" >&2; exit 2; }
  total[$kind]=0
done
for ((r = 1; r <= ROUNDS; r++)); do
  for kind in "${KINDS[@]}"; do
    echo "{\"room_name\": \"bench\", \"layout\": \"grid\", $outputs${extra[$kind]}}" >"$work/req.json"
    rm -rf "$work/out"
    TESSERA_BIN_WRAP="$PY scripts/lib/rusage.py $work/rusage" \
      lk_measure --url "$URL" --api-key devkey --api-secret secret --duration "$SECONDS_MEDIA"
    cpu=$(cat "$work/rusage")
    total[$kind]=$(echo "${total[$kind]} + $cpu" | bc -l)
    cues=$(grep -o 'captions written cues=[0-9]*' "$work/run.log" | cut -d= -f2 || true)
    echo "round $r, $kind: $cpu CPU s for $SECONDS_MEDIA s ($(echo "$cpu / $SECONDS_MEDIA" | bc -l | xargs printf '%.3f') cores)${cues:+, $cues cues}"
    echo "  by thread: $(head -8 "$work/threads.txt" | tr '\n' ',' | sed 's/,$//; s/,/, /g')"
  done
done
base=$(echo "${total[${KINDS[0]}]} / ($SECONDS_MEDIA * $ROUNDS)" | bc -l)
for kind in "${KINDS[@]}"; do
  c=$(echo "${total[$kind]} / ($SECONDS_MEDIA * $ROUNDS)" | bc -l)
  printf '%-9s %.3f cores, ratio to %s %.3f (%+.1f%%)\n' "$kind" "$c" "${KINDS[0]}" \
    "$(echo "$c / $base" | bc -l)" "$(echo "($c / $base - 1) * 100" | bc -l)"
done
