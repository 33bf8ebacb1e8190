#!/usr/bin/env bash
# Installs what the layer-1 matrix needs (idempotent; root). Debian bookworm host.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
[ "$(id -u)" = 0 ] || { echo "matrix/install: run as root" >&2; exit 1; }

# Foreign architectures only for `apt-get download linux-image-...:<arch>`.
need_update=0
for a in arm64 armhf ppc64el s390x mipsel mips64el i386; do
  dpkg --print-foreign-architectures | grep -qx "$a" || { dpkg --add-architecture "$a"; need_update=1; }
done

pkgs=(qemu-system-arm qemu-system-ppc qemu-system-misc qemu-system-mips qemu-system-x86 cpio
      gcc-aarch64-linux-gnu libc6-dev-arm64-cross
      gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
      gcc-powerpc64le-linux-gnu libc6-dev-ppc64el-cross
      gcc-s390x-linux-gnu libc6-dev-s390x-cross
      gcc-mipsel-linux-gnu libc6-dev-mipsel-cross
      gcc-mips64el-linux-gnuabi64 libc6-dev-mips64el-cross
      libc6-dev-mipsn32-mips64el-cross libn32gcc-12-dev-mips64el-cross
      gcc-i686-linux-gnu libc6-dev-i386-cross
      gcc-x86-64-linux-gnux32 libc6-dev-x32-cross)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ] && [ $need_update = 0 ]; then exit 0; fi
# A foreign bookworm-security index may fail (exit 100) while the main suites load.
apt-get update -qq || true
[ ${#missing[@]} -eq 0 ] && exit 0
echo "matrix: installing ${#missing[@]} packages: ${missing[*]}" >&2
qemu=() other=()
for p in "${missing[@]}"; do case $p in qemu-*) qemu+=("$p") ;; *) other+=("$p") ;; esac; done
[ ${#other[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends "${other[@]}" >/dev/null
if [ ${#qemu[@]} -gt 0 ]; then
  # If qemu-utils (or another qemu package) already came from bookworm-backports, the
  # bookworm qemu-system-* breaks against it: take them from backports as well.
  apt-get install -y -qq --no-install-recommends "${qemu[@]}" >/dev/null 2>&1 ||
    apt-get install -y -qq --no-install-recommends -t bookworm-backports "${qemu[@]}" >/dev/null
fi
