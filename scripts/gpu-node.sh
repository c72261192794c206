#!/usr/bin/env bash
# The whole egress measured on a GPU node, for a machine without GStreamer or a Rust
# toolchain (the project's lent GPU machines): build here, carry target/gpu-node/ (the
# bundle and the GPU benchmark, about 35 MiB), run one script there.
#
#   bash scripts/gpu-node.sh build        # here: target/gpu-node/{tessera-*.tar.xz, gpu_rooms-bench.xz, run.sh}
#   bash target/gpu-node/run.sh           # there: results under $OUT (or target/gpu-node/results)
#
# run.sh does, in one run: `tessera probe`; `tessera bench` with the whole egress (the
# GPU compositor, NVDEC where the probe takes it, x264 on the node's cores) for 4
# participants from 640x360 H.264 and for 9 from 320x180, each ramped to its maximum with
# the GStreamer baseline in the same run; where the probe took NVDEC, the 4-participant
# ramp again with software decode (decode CPU per room with and without); the compositor-only benchmark (K rooms with and
# without batched submissions, and a bare upload + readback copy loop, the device's
# physical bound). Settings, from the environment: PARTS (default "probe 4p 9p swdec
# rooms": run a device session's parts in separate calls, each about 1-4 minutes),
# STEP_SECONDS (default 4), MAX_ROOMS (64), MAX_ROOMS_9 (48), MAX_ROOMS_SW (16),
# ROOMS_SECONDS (3), SKIP_BASELINE=1.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-build}" in
  build)
    bash scripts/package.sh
    cargo bench --no-default-features --bench gpu_rooms --no-run 2>&1 | tail -1
    rm -rf target/gpu-node && mkdir -p target/gpu-node
    cp dist/tessera-*-linux-x86_64.tar.xz target/gpu-node/
    BIN=$(ls -t target/release/deps/gpu_rooms-* | grep -v '\.d$' | head -1)
    xz -6 -T0 -c "$BIN" >target/gpu-node/gpu_rooms-bench.xz
    cat >target/gpu-node/run.sh <<'RUN'
#!/usr/bin/env bash
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dest=${OUT:-$here/results}
mkdir -p "$dest"
work=$(mktemp -d)
tar -C "$work" -xJf "$here"/tessera-*-linux-x86_64.tar.xz
root=$(ls -d "$work"/tessera-*-linux-x86_64)
tessera="$root/bin/tessera"
xz -dc "$here/gpu_rooms-bench.xz" >"$work/gpu_rooms-bench" && chmod +x "$work/gpu_rooms-bench"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$work} XDG_CACHE_HOME=$work/cache
# NVIDIA's driver may keep its Vulkan ICD outside the loader's search path.
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  [ -e "$icd" ] && export VK_ADD_DRIVER_FILES=$icd && break
done
log() { echo "== $(date -u +%H:%M:%S) $*" | tee -a "$dest/run.log"; }
parts=" ${PARTS:-probe 4p 9p swdec rooms} "
want() { [[ "$parts" == *" $1 "* ]]; }
{
  uname -r; nproc; grep -m1 'model name' /proc/cpuinfo
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
} >"$dest/node.txt" 2>&1
cat "$dest/node.txt"
smi=""
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=timestamp,utilization.gpu,utilization.decoder,memory.used --format=csv -lms 500 \
    >"$dest/gpu-load.csv" 2>&1 </dev/null &
  smi=$!
fi
trap '[ -z "$smi" ] || kill "$smi" 2>/dev/null || true; rm -rf "$work"' EXIT
# The probe always runs (the software-decode part reads it); it takes a second.
log probe
"$tessera" probe 2>&1 | tee "$dest/probe.txt"
baseline=()
[ "${SKIP_BASELINE:-}" = 1 ] && baseline=(--no-baseline)
want 4p && log "bench 4 participants 640x360" && "$tessera" bench --participants 4 --input 640x360 --compositor gpu \
  --step-seconds "${STEP_SECONDS:-4}" --max-rooms "${MAX_ROOMS:-64}" "${baseline[@]}" \
  --out "$dest/bench-4p" 2>&1 | tail -40 | tee "$dest/bench-4p.log"
want 9p && log "bench 9 participants 320x180" && "$tessera" bench --participants 9 --input 320x180 --compositor gpu \
  --step-seconds "${STEP_SECONDS:-4}" --max-rooms "${MAX_ROOMS_9:-48}" "${baseline[@]}" \
  --out "$dest/bench-9p" 2>&1 | tail -40 | tee "$dest/bench-9p.log"
if want swdec && grep -q "H.264: nvh264dec" "$dest/probe.txt"; then
  # Decode CPU per room with and without NVDEC: the same steps, software decode forced.
  log "bench 4 participants 640x360, software decode (TESSERA_HW_DECODE=0)"
  TESSERA_HW_DECODE=0 "$tessera" bench --participants 4 --input 640x360 --compositor gpu \
    --step-seconds "${STEP_SECONDS:-4}" --max-rooms "${MAX_ROOMS_SW:-16}" --no-baseline \
    --out "$dest/bench-4p-swdec" 2>&1 | tail -40 | tee "$dest/bench-4p-swdec.log"
fi
want rooms && log "compositor only: rooms with and without batched submissions, copy loop" &&
  LD_LIBRARY_PATH="$root/lib" "$work/gpu_rooms-bench" --seconds "${ROOMS_SECONDS:-3}" \
  --max-rooms "${MAX_ROOMS_ROOMS:-256}" --tiles 9 2>&1 | tee "$dest/rooms.txt"
log done
RUN
    chmod +x target/gpu-node/run.sh
    echo "gpu-node: target/gpu-node ($(du -sh target/gpu-node | cut -f1)); carry it and run run.sh" >&2
    ;;
  *) echo "usage: $0 build" >&2; exit 2 ;;
esac
