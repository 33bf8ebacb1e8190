#!/usr/bin/env bash
# fetch-kernel.sh <flavour> <arch>: prints the path of a cached Debian bookworm kernel
# image (never installed: apt-get download + dpkg-deb extraction).
# Cache: ${ROOTEMU_CACHE:-$HOME/.cache/rootemu}/kernels/<flavour>_<arch>/
set -euo pipefail
flavour=$1 arch=$2
# shellcheck source=scripts/lib/apt.sh
source "$(dirname "$0")/../../scripts/lib/apt.sh"
dir=${ROOTEMU_CACHE:-$HOME/.cache/rootemu}/kernels/${flavour}_${arch}
find_image() { find "$dir/boot" -maxdepth 1 -type f \( -name 'vmlinuz-*' -o -name 'vmlinux-*' \) 2>/dev/null | sort | tail -n1 || true; }
img=$(find_image)
if [ -z "$img" ]; then
  mkdir -p "$dir"
  # The metapackage names the current ABI: linux-image-<flavour> -> linux-image-6.1.0-NN-<flavour>.
  pkg=$(apt_cache depends "linux-image-$flavour:$arch" 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-6\.1\.[0-9]*-[0-9]*-[^:]*\).*/\1/p' | head -n1)
  [ -n "$pkg" ] || { echo "fetch-kernel: no linux-image for $flavour:$arch (dpkg --add-architecture $arch; apt-get update)" >&2; exit 1; }
  tmp=$(mktemp -d); chown _apt "$tmp" 2>/dev/null || true
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && apt_get download -qq "$pkg:$arch" >/dev/null)
  dpkg-deb --fsys-tarfile "$tmp"/*.deb | tar -x -C "$dir" ./boot
  echo "$pkg" > "$dir/package"
  img=$(find_image)
fi
[ -n "$img" ] || { echo "fetch-kernel: no kernel image in $dir/boot" >&2; exit 1; }
echo "$img"
