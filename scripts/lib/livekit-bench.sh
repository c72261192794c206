# Shared by the benchmark scripts that record a real LiveKit room: sourced, not run.
# Needs `bash scripts/setup.sh` (livekit-server, the Python SDK venv) and a release build.
#
#   lk_start                      livekit-server on free loopback ports → $URL, $work
#   lk_publish NAME ARGS...       a publisher (scripts/lk-publish.py) → $work/NAME.log
#   lk_wait_published NAME...     until each has published
#   lk_measure ARGS...            `tessera run $work/req.json ARGS`, every thread's CPU time
#                                 sampled → $work/threads.txt ("name seconds"), $work/run.log
#                                 (with TESSERA_BIN_WRAP, under that command)
#   lk_total                      the CPU seconds in $work/threads.txt

TOOLS="${TESSERA_TOOLS:-$HOME/.cache/tessera-tools}"
PY="$TOOLS/lk-venv/bin/python"
BIN=${TESSERA_BIN:-target/release/tessera}
[ -x "$BIN" ] || cargo build --release --quiet
work="$(mktemp -d)"
pids=()
lk_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap lk_cleanup EXIT

lk_start() {
  local port
  port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat > "$work/lk.yaml" <<YAML
port: $port
bind_addresses: ["127.0.0.1"]
rtc: {tcp_port: $((port + 1)), udp_port: $((port + 2)), use_external_ip: false, enable_loopback_candidate: true, interfaces: {includes: [lo]}}
logging: {level: warn}
YAML
  "$TOOLS/bin/livekit-server" --dev --node-ip 127.0.0.1 --config "$work/lk.yaml" >"$work/lk.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  URL="ws://127.0.0.1:$port"
}

lk_publish() {
  local name="$1"
  shift
  "$PY" scripts/lk-publish.py --url "$URL" "$@" >"$work/$name.log" 2>/dev/null &
  pids+=($!)
}

lk_wait_published() {
  for name in "$@"; do
    for _ in $(seq 300); do grep -q published "$work/$name.log" 2>/dev/null && break; sleep 0.1; done
  done
}

lk_measure() {
  # TESSERA_BIN_WRAP: a command the run is started under (rusage.py: its CPU time).
  RUST_LOG=info ${TESSERA_BIN_WRAP:-} "$BIN" run "$work/req.json" --out "$work/out" "$@" >"$work/info.json" 2>"$work/run.log" &
  local pid=$!
  if [ -n "${TESSERA_BIN_WRAP:-}" ]; then
    for _ in $(seq 50); do pgrep -P "$pid" >/dev/null && break; sleep 0.02; done
    local child
    child=$(pgrep -P "$pid" | head -1)
    [ -n "$child" ] && pid_sampled=$child
  fi
  : >"$work/samples"
  local sampled=${pid_sampled:-$pid}
  while kill -0 "$pid" 2>/dev/null; do
    for t in /proc/$sampled/task/*; do
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

lk_total() {
  awk '{s += $2} END {printf "%.2f", s}' "$work/threads.txt"
}
