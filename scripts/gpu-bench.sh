#!/usr/bin/env bash
# The GPU run of the compositor benchmark, for a machine with a GPU but without GStreamer
# or a Rust toolchain (the project's lent GPU machines).
#
#   bash scripts/gpu-bench.sh build    # here: builds target/gpu-bench/ (binary + runner)
#   bash target/gpu-bench/run.sh       # there: prints the adapter and the frame times
#
# Neither benchmark needs GStreamer:
# - benches/gpu_rooms.rs runs K rooms at once on the one device, each on its own thread
#   at 30 fps (4 and 9 tiles, 720p), and ramps K to the most rooms that hold real time;
#   it also runs K rooms flat out for the device's throughput in frames/s;
# - benches/compositor.rs (criterion) composites 1–25 tiles at 720p and 1080p with a new
#   picture per tile per frame, through NV12 and the readback ring: the time per frame of
#   one room. run.sh prints, for 9 tiles at 720p, the frames per second of one room.
# run.sh writes bench.txt, rooms.txt and gpu-load.csv (nvidia-smi, where there is one)
# beside itself, or under $OUT when that is set.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-build}" in
  build)
    cargo bench --no-default-features --bench compositor --bench gpu_rooms --no-run 2>&1 |
      tail -3
    rm -rf target/gpu-bench && mkdir -p target/gpu-bench/lib
    for b in compositor gpu_rooms; do
      BIN=$(ls -t target/release/deps/$b-* | grep -v '\.d$' | head -1)
      cp "$BIN" target/gpu-bench/$b-bench
    done
    # The Vulkan loader, in case the GPU machine lacks it (its driver brings the ICD).
    for lib in /usr/lib/x86_64-linux-gnu/libvulkan.so.1; do
      [ -e "$lib" ] && cp -L "$lib" target/gpu-bench/lib/
    done
    # NVIDIA's Vulkan ICD library needs GLVND (libGLdispatch, libGLX): without these the
    # loader finds no adapter at all (seen on the lent H200). Debian's packages, unpacked
    # there by run.sh.
    mkdir -p target/gpu-bench/debs /tmp/gpu-bench-apt/partial
    o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/gpu-bench-apt'
    apt-get $o update -qq >/dev/null 2>&1 || true
    (cd target/gpu-bench/debs &&
      apt-get $o download -qq libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 \
        >/dev/null 2>&1) || echo "gpu-bench: could not fetch the GLVND packages" >&2
    cat > target/gpu-bench/run.sh <<'RUN'
#!/usr/bin/env bash
set -euo pipefail
cd "$(dirname "$0")"
dest=${OUT:-$PWD}
# GLVND and the Vulkan loader for NVIDIA's ICD, where the machine lacks them (root only).
if [ "$(id -u)" = 0 ] && ! ldconfig -p 2>/dev/null | grep -q libGLdispatch; then
  for f in debs/*.deb; do [ -e "$f" ] && dpkg -x "$f" /; done
  ldconfig
fi
# Use the machine's Vulkan loader if it has one, else the one carried in lib/.
ldconfig -p 2>/dev/null | grep -q libvulkan.so.1 ||
  export LD_LIBRARY_PATH="$PWD/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# NVIDIA's driver may keep its Vulkan ICD outside the loader's search path.
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -e "$icd" ] && [ -z "${VK_DRIVER_FILES:-}" ] && export VK_DRIVER_FILES=$icd
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
smi=""
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  # Both streams to the file: a background writer on the caller's pipe would hold it open.
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -lms 500 \
    >"$dest/gpu-load.csv" 2>&1 </dev/null &
  smi=$!
fi
trap '[ -z "$smi" ] || kill "$smi" 2>/dev/null || true' EXIT
./gpu_rooms-bench --seconds "${SECONDS_PER_STEP:-3}" 2>&1 | tee "$dest/rooms.txt"
./compositor-bench --bench 2>&1 | tee "$dest/bench.txt"
# "composite+nv12+readback [NAME]/720p/9   time: [a b c]" → median b.
line=$(grep -A1 '/720p/9' "$dest/bench.txt" | grep 'time:' | head -1 || true)
if [ -n "$line" ]; then
  echo "$line" | awk '{ sub(/.*\[/, ""); v = $3; u = $4;
    if (u == "µs" || u == "us") v /= 1000; else if (u == "s") v *= 1000;
    printf "9 tiles 720p, one room alone: %.3f ms/frame, %.0f frames/s\n", v, 1000 / v }'
fi
grep '^RESULT' "$dest/rooms.txt" || true
RUN
    chmod +x target/gpu-bench/run.sh
    echo "built target/gpu-bench (carry it to the GPU machine and run run.sh)" >&2
    ;;
  *) echo "usage: $0 build" >&2; exit 2 ;;
esac
