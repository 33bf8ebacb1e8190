#!/usr/bin/env bash
# fetch-kernel.sh <flavour> <arch> [6.12]: prints the path of a cached Debian bookworm kernel
# image (never installed: apt-get download + dpkg-deb extraction): bookworm's 6.1, or with
# `6.12` the one of bookworm-backports.
# Cache: ${ROOTEMU_CACHE:-$HOME/.cache/rootemu}/kernels/<flavour>_<arch>[_6.12]/
set -euo pipefail
flavour=$1 arch=$2 version=${3:-6.1}
case $version in 6.1|6.12) ;; *) echo "fetch-kernel: version $version: expected 6.1 or 6.12" >&2; exit 2 ;; esac
# shellcheck source=scripts/lib/apt.sh
source "$(dirname "$0")/../../scripts/lib/apt.sh"
dir=${ROOTEMU_CACHE:-$HOME/.cache/rootemu}/kernels/${flavour}_${arch}
[ "$version" = 6.1 ] || dir=${dir}_$version
find_image() { find "$dir/boot" -maxdepth 1 -type f \( -name 'vmlinuz-*' -o -name 'vmlinux-*' \) 2>/dev/null | sort | tail -n1 || true; }
img=$(find_image)
if [ -z "$img" ]; then
  mkdir -p "$dir"
  # The metapackage names the current ABI: linux-image-<flavour> -> linux-image-6.1.0-NN-<flavour>.
  if [ "$version" = 6.1 ]; then
    pkg=$(apt_cache depends "linux-image-$flavour:$arch" 2>/dev/null |
          sed -n 's/^ *Depends: \(linux-image-6\.1\.[0-9]*-[0-9]*-[^:]*\).*/\1/p' | head -n1)
  else
    # bookworm-backports: the metapackage's 6.12 version names linux-image-6.12.NN+deb12-<flavour>.
    pkg=$(apt_cache show "linux-image-$flavour:$arch" 2>/dev/null |
          awk '/^Version:/ { v = $2 } /^Depends:/ && v ~ /^6\.12/ { print $2 }' | sort -V | tail -n1)
  fi
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
