#!/usr/bin/env bash
# The GPU run of the compositor benchmark, for a machine with a GPU but without GStreamer
# or a Rust toolchain (the project's lent GPU machines).
#
#   bash scripts/gpu-bench.sh build    # here: builds target/gpu-bench/ (binary + runner)
#   bash target/gpu-bench/run.sh       # there: prints the adapter and the frame times
#
# The benchmark (benches/compositor.rs) needs no GStreamer: it composites 1–25 tiles at
# 720p and 1080p with a new picture per tile per frame, through NV12 and the readback
# ring, and criterion reports the time per frame. run.sh also prints, for 9 tiles at
# 720p, frames per second and the implied rooms per GPU at 30 fps (compositor only).
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-build}" in
  build)
    cargo bench --no-default-features --bench compositor --no-run 2>&1 | tail -2
    BIN=$(ls -t target/release/deps/compositor-* | grep -v '\.d$' | head -1)
    rm -rf target/gpu-bench && mkdir -p target/gpu-bench/lib
    cp "$BIN" target/gpu-bench/compositor-bench
    # The Vulkan loader, in case the GPU machine lacks it (its driver brings the ICD).
    for lib in /usr/lib/x86_64-linux-gnu/libvulkan.so.1; do
      [ -e "$lib" ] && cp -L "$lib" target/gpu-bench/lib/
    done
    cat > target/gpu-bench/run.sh <<'RUN'
#!/usr/bin/env bash
set -euo pipefail
cd "$(dirname "$0")"
export LD_LIBRARY_PATH="$PWD/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
./compositor-bench --bench 2>&1 | tee bench.txt
# "composite+nv12+readback [NAME]/720p/9   time: [a b c]" → median b.
line=$(grep -A1 '/720p/9' bench.txt | grep 'time:' | head -1 || true)
if [ -n "$line" ]; then
  ms=$(echo "$line" | sed -E 's/.*\[[^ ]+ [^ ]+ ([0-9.]+) ([a-zµ]+) .*/\1 \2/')
  set -- $ms
  case "$2" in ms) v=$1 ;; µs|us) v=$(echo "$1 / 1000" | bc -l) ;; s) v=$(echo "$1 * 1000" | bc -l) ;; esac
  fps=$(echo "1000 / $v" | bc -l)
  printf '9 tiles 720p: %.3f ms/frame, %.0f frames/s, %.1f rooms at 30 fps (compositor only)\n' "$v" "$fps" "$(echo "$fps / 30" | bc -l)"
fi
RUN
    chmod +x target/gpu-bench/run.sh
    echo "built target/gpu-bench (carry it to the GPU machine and run run.sh)" >&2
    ;;
  *) echo "usage: $0 build" >&2; exit 2 ;;
esac
