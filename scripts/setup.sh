#!/usr/bin/env bash
# Installs everything tessera needs to build, run and test on Debian 12, from Debian's
# packages. Idempotent: safe to run twice; it installs only what is missing.
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
  # ffprobe/ffmpeg, used by the tests to check outputs
  ffmpeg
  # stream receivers the tests start on loopback: nginx-rtmp (RTMP) and srt-tools (SRT)
  nginx libnginx-mod-rtmp srt-tools
)

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

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust (stable, >= 1.95) with rustup" >&2
  exit 1
fi
