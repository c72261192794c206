#!/usr/bin/env bash
# A self-contained bundle of tessera for GPU nodes (or any x86-64 Linux with glibc >= the
# version MANIFEST.txt names): the release binary, the GStreamer runtime it uses with every
# library those plugins link, GStreamer's plugin scanner, the Vulkan loader and GLVND, and
# a launcher that makes the binary use only the bundle's GStreamer, whatever the host has.
# Every library is copied from this machine's Debian packages (MANIFEST.txt names the
# package and version of each file); nothing is downloaded. Chromium, Xvfb and PulseAudio
# (web egress) and the NVIDIA driver stay the host's.
#
# Two things are left out for size (the bundle must stay under 60 MiB compressed):
# - gst-libav (its libraries alone are 59 MiB compressed): the probes fall back to
#   openh264dec for H.264 decode and voaacenc for AAC;
# - Mesa's lavapipe (LLVM, Z3, ICU: 39 MiB compressed) unless --with-lavapipe: without a
#   GPU adapter tessera composites on the CPU, which is also what it chooses when lavapipe
#   is the only adapter.
#
#   bash scripts/package.sh                       # release build → dist/tessera-VERSION-linux-x86_64.tar.xz
#   bash scripts/package.sh --binary PATH --dir D # bundle PATH into directory D, no archive (tests)
#   bash scripts/package.sh --with-lavapipe       # add the software Vulkan adapter
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT_DIR=$(pwd)

binary=""
dir=""
lavapipe=""
while (($#)); do
  case "$1" in
    --binary) binary=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --with-lavapipe) lavapipe=1; shift ;;
    *) echo "package: unknown argument $1 (--binary PATH, --dir DIR, --with-lavapipe)" >&2; exit 2 ;;
  esac
done

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
NAME="tessera-$VERSION-linux-x86_64"
ARCH_LIB=/usr/lib/x86_64-linux-gnu
GST_PLUGINS=$ARCH_LIB/gstreamer-1.0

for tool in patchelf ldd dpkg-query xz; do
  command -v "$tool" >/dev/null || { echo "package: $tool is missing (bash scripts/setup.sh)" >&2; exit 1; }
done

if [[ -z "$binary" ]]; then
  echo "package: building the release binary" >&2
  cargo build --release --quiet
  binary=target/release/tessera
fi
[[ -x "$binary" ]] || { echo "package: $binary is not an executable" >&2; exit 1; }

archive=""
if [[ -z "$dir" ]]; then
  mkdir -p dist
  dir="dist/$NAME"
  archive="dist/$NAME.tar.xz"
fi
rm -rf "$dir"
mkdir -p "$dir"/{bin,libexec,lib/gstreamer-1.0,lib/gio/modules,share/vulkan/icd.d,share/tessera}
dir=$(cd "$dir" && pwd)

# The plugins the egress's pipelines and probes name (see docs/architecture.md), by file.
PLUGINS=(
  coreelements app typefindfunctions playback
  videoconvertscale videorate videotestsrc compositor
  audioconvert audioresample audiotestsrc audiomixer interleave level volume
  x264 nvcodec va openh264 vpx aom voaacenc
  videoparsersbad audioparsers opus opusparse lame
  isomp4 matroska ogg flv mpegtsmux mpegtsdemux multifile
  srt rtmp2 jpeg png ximagesrc pulseaudio
)
# Libraries the host provides: glibc (its loader must match it) and the NVIDIA driver
# (it must match the kernel module).
host_lib() {
  case "$(basename "$1")" in
    ld-linux-x86-64.so.* | libc.so.* | libm.so.* | libmvec.so.* | libpthread.so.* | libdl.so.* | \
      librt.so.* | libresolv.so.* | libutil.so.* | libanl.so.* | libnss_* | libthread_db.so.*) return 0 ;;
    libcuda.so* | libnvcuvid.so* | libnvidia-* | libGLX_nvidia* | libEGL_nvidia*) return 0 ;;
  esac
  return 1
}

elves=() # every ELF file copied, for the dependency closure
copy_elf() { # SOURCE DEST_DIR
  local dest="$2/$(basename "$1")"
  cp -L "$1" "$dest"
  chmod u+w "$dest"
  elves+=("$dest")
  sources+=("$(readlink -f "$1")")
}
sources=()

cp "$binary" "$dir/libexec/tessera"
chmod u+w "$dir/libexec/tessera"
# Symbols stay (panics name their functions); debug information goes.
strip --strip-debug "$dir/libexec/tessera"
elves+=("$dir/libexec/tessera")
copy_elf "$ARCH_LIB/gstreamer1.0/gstreamer-1.0/gst-plugin-scanner" "$dir/libexec"
for p in "${PLUGINS[@]}"; do
  f="$GST_PLUGINS/libgst$p.so"
  [[ -e "$f" ]] || { echo "package: GStreamer plugin $f is missing (bash scripts/setup.sh)" >&2; exit 1; }
  copy_elf "$f" "$dir/lib/gstreamer-1.0"
done
# Loaded at run time by name, so no ELF names them: the Vulkan loader (wgpu), GLVND (the
# NVIDIA Vulkan ICD needs libGLdispatch; wgpu's GL backend opens libEGL), lavapipe, and
# GIO's TLS module (rtmps://).
runtime=(libvulkan.so.1 libGLdispatch.so.0 libGLX.so.0 libEGL.so.1 libOpenGL.so.0 libGL.so.1)
[[ -n "$lavapipe" ]] && runtime+=(libvulkan_lvp.so)
for l in "${runtime[@]}"; do
  [[ -e "$ARCH_LIB/$l" ]] || { echo "package: $ARCH_LIB/$l is missing (bash scripts/setup.sh)" >&2; exit 1; }
  copy_elf "$ARCH_LIB/$l" "$dir/lib"
done
copy_elf "$ARCH_LIB/gio/modules/libgiognutls.so" "$dir/lib/gio/modules"

# The closure: every library any of them links, from this machine's (Debian's) copies.
declare -A seen=()
for e in "${elves[@]}"; do
  while read -r path; do
    [[ -n "$path" && -z "${seen[$path]:-}" ]] || continue
    seen[$path]=1
    host_lib "$path" && continue
    [[ -e "$dir/lib/$(basename "$path")" ]] && continue
    copy_elf "$path" "$dir/lib"
  done < <(ldd "$e" | awk '/=> \// {print $3}')
done
# An ELF pulled in above may itself link more (ldd already lists the whole closure of
# each file, so one pass suffices); check that nothing is left unresolved.
if ldd "${elves[@]}" 2>/dev/null | grep -q "not found"; then
  ldd "${elves[@]}" | grep -B5 "not found" >&2
  echo "package: unresolved libraries (above)" >&2
  exit 1
fi

# Each file finds its libraries in the bundle first (DT_RPATH: searched before
# LD_LIBRARY_PATH, and applied to what the file loads in turn).
for e in "${elves[@]}"; do
  case "$e" in
    "$dir/lib/gstreamer-1.0/"* | "$dir/lib/gio/modules/"*) rpath='$ORIGIN/..:$ORIGIN/../..' ;;
    "$dir/lib/"*) rpath='$ORIGIN' ;;
    *) rpath='$ORIGIN/../lib' ;;
  esac
  patchelf --force-rpath --set-rpath "$rpath" "$e"
done

# lavapipe's ICD, pointing at the bundle's copy (relative to the JSON file).
[[ -n "$lavapipe" ]] && cat >"$dir/share/vulkan/icd.d/lvp_icd.x86_64.json" <<'EOF'
{
    "ICD": {
        "api_version": "1.1.230",
        "library_path": "../../../lib/libvulkan_lvp.so"
    },
    "file_format_version": "1.0.0"
}
EOF

cp -r layouts "$dir/layouts"
cp scripts/lib/tessera.service "$dir/share/tessera/tessera.service"
cat >"$dir/bin/tessera" <<'EOF'
#!/bin/sh
# tessera's launcher: the bundle's own GStreamer (plugins, scanner, registry) and Vulkan
# fallback, whatever the host has installed. The host's Vulkan ICDs (the NVIDIA driver's)
# stay visible; lavapipe is added after them.
set -e
root=$(CDPATH= cd -- "$(dirname -- "$(readlink -f -- "$0")")/.." && pwd)
version=$(cat "$root/share/tessera/VERSION")
cache=${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/tessera/$version
mkdir -p "$cache"
unset GST_PLUGIN_PATH GST_PLUGIN_PATH_1_0 GST_PLUGIN_SYSTEM_PATH GST_REGISTRY GST_PLUGIN_SCANNER
export GST_PLUGIN_SYSTEM_PATH_1_0="$root/lib/gstreamer-1.0"
export GST_PLUGIN_SCANNER_1_0="$root/libexec/gst-plugin-scanner"
export GST_REGISTRY_1_0="$cache/gstreamer-registry.bin"
export GIO_MODULE_DIR="$root/lib/gio/modules"
# wgpu through Vulkan only: its GL backend would load the host's EGL vendor libraries.
export WGPU_BACKEND="${WGPU_BACKEND:-vulkan}"
lvp="$root/share/vulkan/icd.d/lvp_icd.x86_64.json"
[ -e "$lvp" ] && export VK_ADD_DRIVER_FILES="$lvp${VK_ADD_DRIVER_FILES:+:$VK_ADD_DRIVER_FILES}"
exec "$root/libexec/tessera" "$@"
EOF
chmod +x "$dir/bin/tessera"
echo "$VERSION" >"$dir/share/tessera/VERSION"

# Provenance: each copied file's Debian package and version; the glibc the bundle needs.
{
  echo "tessera $VERSION bundle, built $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(. /etc/os-release && echo "$PRETTY_NAME")"
  glibc=$(for e in "${elves[@]}"; do objdump -T "$e" 2>/dev/null; done |
    grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
  echo "needs: glibc ${glibc#GLIBC_} or newer; for NVIDIA GPUs the driver's Vulkan ICD, libcuda and libnvcuvid"
  echo
  echo "file	package	version"
  # One dpkg query for all (Debian 12 merged /usr: a file may be registered under /lib).
  declare -A owner=()
  while IFS= read -r line; do
    pkg=${line%%: *}
    path=${line#*: }
    [[ "$pkg" == "$line" || "$pkg" == diversion* ]] && continue
    owner[$path]=$pkg
    owner[${path/#\/lib\//\/usr\/lib\/}]=$pkg
  done < <(dpkg -S "${sources[@]}" "${sources[@]/#\/usr\/lib\//\/lib\/}" 2>/dev/null)
  for s in "${sources[@]}"; do
    pkg=${owner[$s]:-?}
    ver=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || echo "?")
    echo "$(basename "$s")	$pkg	$ver"
  done
} >"$dir/share/tessera/MANIFEST.txt"
if grep -q '	?	' "$dir/share/tessera/MANIFEST.txt"; then
  grep '	?	' "$dir/share/tessera/MANIFEST.txt" >&2
  echo "package: the files above belong to no Debian package" >&2
  exit 1
fi

echo "package: $dir ($(du -sh "$dir" | cut -f1), $(find "$dir" -type f | wc -l) files)" >&2
if [[ -n "$archive" ]]; then
  tar -C "$(dirname "$dir")" -cf - "$NAME" | xz -9 -T0 >"$archive"
  echo "package: $archive ($(du -h "$archive" | cut -f1))" >&2
fi
