#!/usr/bin/env bash
# Cross-architecture matrix, layer 2: the Rust runtime cross-built for foreign targets
# checks itself there (`rootemu selfcheck`, cli/src/selfcheck.rs).
#
# Usage: tests/matrix/layer2.sh [--no-install] [--no-build] [--dev|--release] [--only NAME,...] [--kernels NAME,...]
#   NAME: aarch64 armv7 i686 ppc64le s390x (default: all)
#   --kernels: real-kernel rows to run (default: all of aarch64 armv7 armv7-on-arm64 i686
#     ppc64le s390x; `--kernels none` for qemu-user only)
#   --no-build: use the binaries already in $CARGO_TARGET_DIR; --no-install: no apt-get
#   --dev (default): dev profile without debug info, fastest to rebuild (1.5 s per target
#     after a change vs 15 s); --release: the binary users ship (docs/cross.md has the times)
# Rows, one per line on stdout and in $MATRIX_WORK/<row>/row:
#   name|status|passed|total|seconds|detail        (status PASS or FAIL)
#   rust-<t>-inspect the host's `$ROOTEMU inspect` on the cross-built binary (exit 0: its
#                    embedded filters match the current tables)
#   rust-<t>-user    qemu-<arch> rootemu selfcheck      (qemu-user has no seccomp: no --install)
#   rust-<k>-kernel  a Debian 6.1 kernel under qemu-system (the targets.tsv row named
#                    below): /init (selfcheck-init.c) drops to 1000:1000 and execs
#                    /rootemu selfcheck --install; armv7-on-arm64: the armv7 binary on the
#                    arm64 kernel (compat); aarch64-6.12 and s390x-6.12: bookworm-backports'
#                    6.12 kernel (tmpfs with user xattrs) and `selfcheck --install
#                    --consistent`: consistent mode's supervisor on a real foreign kernel
#   rust-i686-native on an x86_64 host: the i686 binary on the host kernel, --install
#                    (as root with --uid 65534)
# Exit status 0 when every row passes. Environment: MATRIX_WORK (default: a new temp dir),
# CARGO_TARGET_DIR (default target/cross), ROOTEMU (a host rootemu, for the inspect rows),
# MATRIX_TIMEOUT (seconds per run, default 180),
# ROOTEMU_CACHE (kernels and the Rust sysroot).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=1 profile=dev install_flag='' only='' kernels=aarch64,armv7,armv7-on-arm64,i686,ppc64le,s390x,aarch64-6.12,s390x-6.12
while [ $# -gt 0 ]; do
  case $1 in
    --no-build) build=0 ;;
    --no-install) install_flag=--no-install ;;
    --dev) profile=dev ;;
    --release) profile=release ;;
    --only) only=$2; shift ;;
    --only=*) only=${1#*=} ;;
    --kernels) kernels=$2; shift ;;
    --kernels=*) kernels=${1#*=} ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "layer2: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$top/target/cross}
work=${MATRIX_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/rootemu-layer2.XXXXXX")}
mkdir -p "$work"
timeout_s=${MATRIX_TIMEOUT:-180}
dir=$profile; [ "$profile" = dev ] && dir=debug

# name triple qemu-user
targets="aarch64 aarch64-unknown-linux-gnu qemu-aarch64
armv7 armv7-unknown-linux-gnueabihf qemu-arm
i686 i686-unknown-linux-gnu qemu-i386
ppc64le powerpc64le-unknown-linux-gnu qemu-ppc64le
s390x s390x-unknown-linux-gnu qemu-s390x"
# kernel row, target name, targets.tsv row (kernel, machine, console, cross gcc for /init)
kernel_rows="aarch64 aarch64 aarch64 6.1
armv7 armv7 arm 6.1
armv7-on-arm64 armv7 arm-on-arm64 6.1
i686 i686 i386 6.1
ppc64le ppc64le ppc64le 6.1
s390x s390x s390x 6.1
aarch64-6.12 aarch64 aarch64 6.12
s390x-6.12 s390x s390x 6.12"
selected() { [ -z "$only" ] || [[ ",$only," == *",$1,"* ]]; }
in_list() { [[ ",$2," == *",$1,"* ]]; }

failed=0
# emit NAME STATUS PASSED TOTAL SECONDS DETAIL
emit() {
  mkdir -p "$work/$1"
  local line="$1|$2|$3|$4|$5|$6"
  echo "$line" > "$work/$1/row"
  echo "$line"
  [ "$2" = PASS ] || failed=1
}
secs_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
# judge NAME LOG SECONDS RC: a row from selfcheck's CHECK/RESULT lines.
judge() {
  local name=$1 log=$2 secs=$3 rc=$4 result p t fails
  result=$(grep -a -m1 '^RESULT ' "$log" || true)
  if [ -z "$result" ]; then
    local n last why
    n=$(grep -ac '^CHECK .* ok' "$log" || true)
    last=$(grep -a '^CHECK ' "$log" | tail -n1 | cut -d' ' -f2)
    why=$(grep -a -m1 -E '^MATRIX (child|exec|drop)|^rootemu: ' "$log" | head -c 200 || true)
    [ "$rc" = 124 ] && why="timeout after ${timeout_s}s; $why"
    emit "$name" FAIL "$n" "?" "$secs" "no RESULT (rc=$rc; ${why:-no message}; last check: ${last:-none}): see $log"
    return
  fi
  local pt=${result##* }
  p=${pt%/*} t=${pt#*/}
  fails=$(grep -a '^CHECK .* FAIL' "$log" | head -n3 | cut -d' ' -f2 | paste -sd, -)
  if [ "$p" = "$t" ] && [ "$t" -gt 0 ]; then
    emit "$name" PASS "$p" "$t" "$secs" "${result#RESULT }"
  else
    emit "$name" FAIL "$p" "$t" "$secs" "failed: $fails (see $log)"
  fi
}

# 1. Build every selected target (one scripts/cross-build run; it prints the binaries).
triples=()
while read -r name triple _; do selected "$name" && triples+=("$triple"); done <<< "$targets"
[ ${#triples[@]} -gt 0 ] || { echo "layer2: --only selects nothing" >&2; exit 2; }
declare -A built
if [ $build = 1 ]; then
  # Only what this build produced counts (never a stale binary from an earlier one).
  echo "# cross-building ${triples[*]} (--$profile): $work/build.log" >&2
  "$top/scripts/cross-build" $install_flag "--$profile" "${triples[@]}" 2>&1 | tee "$work/build.log" |
    grep --line-buffered '^cross-build:' | sed -u 's/^/# /' >&2
  echo "build rc=${PIPESTATUS[0]}" >> "$work/build.log"
  while read -r _ t _ _ bin; do
    [ -x "$bin" ] && built[$t]=$bin
  done < <(grep -E '^cross-build: [^ ]+ [^ ]+ [0-9.]+s ' "$work/build.log")
else
  for t in "${triples[@]}"; do
    bin=$CARGO_TARGET_DIR/$t/$dir/rootemu
    [ -x "$bin" ] && built[$t]=$bin
  done
fi

# binary ROW TRIPLE: sets bin to the TRIPLE binary built above, or fails row ROW.
binary() {
  bin=${built[$2]:-}
  [ -n "$bin" ] || { emit "$1" FAIL 0 0 0 "no $2 binary (build failed or --no-build without one): see $work/build.log"; return 1; }
}

# 1b. The host's `rootemu inspect` (ROOTEMU) reads each cross-built binary: its filter
#     section is found in the foreign ELF, decoded in its byte order and matches the tables.
if [ -n "${ROOTEMU:-}" ]; then
  while read -r name triple _; do
    selected "$name" || continue
    row=rust-$name-inspect
    binary "$row" "$triple" || continue
    mkdir -p "$work/$row"
    start=$EPOCHREALTIME
    "$ROOTEMU" inspect "$bin" > "$work/$row/out.txt" 2>&1
    rc=$?
    n=$(grep -c '^filter [0-9]*: matches the current tables' "$work/$row/out.txt")
    t=$(grep -c '^filter [0-9]*: policy' "$work/$row/out.txt")
    if [ $rc = 0 ] && [ "$t" -gt 0 ] && [ "$n" = "$t" ]; then
      emit "$row" PASS "$n" "$t" "$(secs_since "$start")" "$(grep -m1 '^filter 1: policy' "$work/$row/out.txt" | sed 's/^filter 1: //')"
    else
      emit "$row" FAIL "$n" "$t" "$(secs_since "$start")" "rootemu inspect exit $rc: see $work/$row/out.txt"
    fi
  done <<< "$targets"
else
  echo "layer2: ROOTEMU (a host rootemu binary) is not set: no inspect rows" >&2
fi

# 2. qemu-user: no seccomp there, so the checks without --install.
while read -r name triple quser _; do
  selected "$name" || continue
  row=rust-$name-user
  binary "$row" "$triple" || continue
  mkdir -p "$work/$row"
  start=$EPOCHREALTIME
  timeout "$timeout_s" "$quser" "$bin" selfcheck > "$work/$row/out.txt" 2>&1
  rc=$?
  judge "$row" "$work/$row/out.txt" "$(secs_since "$start")" $rc
done <<< "$targets"

# 3. i686 on an x86_64 host kernel: seccomp is real here.
if selected i686 && [ "$(uname -m)" = x86_64 ]; then
  row=rust-i686-native
  if binary "$row" i686-unknown-linux-gnu; then
    mkdir -p "$work/$row"
    uidarg=(); [ "$(id -u)" = 0 ] && uidarg=(--uid 65534)
    start=$EPOCHREALTIME
    TMPDIR=${TMPDIR:-/tmp} timeout "$timeout_s" "$bin" selfcheck --install "${uidarg[@]}" > "$work/$row/out.txt" 2>&1
    rc=$?
    judge "$row" "$work/$row/out.txt" "$(secs_since "$start")" $rc
  fi
fi

# 4. Real kernels: the targets.tsv row's kernel, machine and cross gcc.
while read -r kname name tsv kver; do
  if ! selected "$name" || ! in_list "$kname" "$kernels"; then continue; fi
  row=rust-$kname-kernel
  triple=$(awk -v n="$name" '$1 == n { print $2 }' <<< "$targets")
  binary "$row" "$triple" || continue
  fields=$(awk -F'\t' -v n="$tsv" '$1 == n' "$here/targets.tsv")
  [ -n "$fields" ] || { emit "$row" FAIL 0 0 0 "no row $tsv in targets.tsv"; continue; }
  IFS=$'\t' read -r _ kflavour karch qemu machine console cc _ _ _ append <<< "$fields"
  machine=${machine//+/ }; [ "$append" = - ] && append=
  d=$work/$row
  rm -rf "$d"; mkdir -p "$d/root"
  "$cc" -O2 -static -Wall -o "$d/root/init" "$here/selfcheck-init.c" > "$d/build.log" 2>&1 ||
    { emit "$row" FAIL 0 0 0 "init build failed ($cc): see $d/build.log"; continue; }
  cp "$bin" "$d/root/rootemu"
  files='init\nrootemu\n'
  # A 6.12 kernel's tmpfs takes user xattrs: the consistent-mode checks run there too.
  if [ "$kver" = 6.12 ]; then : > "$d/root/consistent"; files="${files}consistent\n"; fi
  (cd "$d/root" && printf "$files" | cpio -o -H newc --quiet | gzip -1 > "$d/initrd.gz") ||
    { emit "$row" FAIL 0 0 0 "cpio failed"; continue; }
  kernel=$("$here/fetch-kernel.sh" "$kflavour" "$karch" "$kver" 2> "$d/kernel.log") ||
    { emit "$row" FAIL 0 0 0 "kernel $kflavour:$karch not available: see $d/kernel.log"; continue; }
  start=$EPOCHREALTIME
  # shellcheck disable=SC2086
  timeout "$timeout_s" "$qemu" $machine -m 512 -nographic -no-reboot -nic none \
    -kernel "$kernel" -initrd "$d/initrd.gz" \
    -append "console=$console panic=-1 quiet $append" < /dev/null > "$d/console.log" 2>&1
  rc=$?
  secs=$(secs_since "$start")
  tr -d '\r' < "$d/console.log" > "$d/console.txt"
  judge "$row" "$d/console.txt" "$secs" $rc
done <<< "$kernel_rows"
exit $failed
