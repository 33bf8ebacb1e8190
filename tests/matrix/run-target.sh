#!/usr/bin/env bash
# run-target.sh <row of targets.tsv, tab-separated fields as arguments>
# Builds the target's static /init (loader.c) with its cross gcc, packs it with the
# target's filter into an initramfs, boots the cached Debian kernel under qemu (TCG)
# and writes "$MATRIX_WORK/<name>/row": name|status|passed|total|seconds|detail.
# Environment: MATRIX_WORK (required), MATRIX_FILTER_DIR (filter-little.bpf,
# filter-big.bpf; filter-<name>-broken.bpf when broken), MATRIX_BROKEN (space-separated
# names fed a broken program), MATRIX_TIMEOUT (seconds, default 120).
set -uo pipefail
name=$1 kflavour=$2 karch=$3 qemu=$4 machine=${5//+/ } console=$6 cc=$7 cflags=${8//+/ }
order=$9 append=${11}
[ "$cflags" = - ] && cflags=
[ "$append" = - ] && append=
here=$(cd "$(dirname "$0")" && pwd)
d=$MATRIX_WORK/$name
rm -rf "$d"; mkdir -p "$d/root"
row() {  # writes the row, says so on stderr (progress), ends the script
  echo "$name|$1|${2:-0}|${3:-0}|${4:-0}|${5:-}" > "$d/row"
  echo "matrix: layer 1 $name $1 ${2:-0}/${3:-0} (${4:-0} s)" >&2
  exit 0
}

broken=0
case " ${MATRIX_BROKEN:-} " in *" $name "*) broken=1 ;; esac

# 1. The loader, from the target's own toolchain and headers.
# shellcheck disable=SC2086
"$cc" $cflags -O2 -static -Wall -DMATRIX_ABI="\"$name\"" -o "$d/root/init" "$here/loader.c" \
  > "$d/build.log" 2>&1 || row FAIL 0 0 0 "loader build failed ($cc $cflags): see $d/build.log"

# 2. The filter: the exported program in the target's byte order (or a broken one).
if [ $broken = 1 ]; then
  cp "$MATRIX_FILTER_DIR/filter-$name-broken.bpf" "$d/root/filter.bpf" || row FAIL 0 0 0 "no broken filter"
else
  cp "$MATRIX_FILTER_DIR/filter-$order.bpf" "$d/root/filter.bpf" || row FAIL 0 0 0 "no $order filter"
fi

# 3. The initramfs and the kernel.
(cd "$d/root" && printf 'init\nfilter.bpf\n' | cpio -o -H newc --quiet | gzip -1 > "$d/initrd.gz") ||
  row FAIL 0 0 0 "cpio failed"
kernel=$("$here/fetch-kernel.sh" "$kflavour" "$karch" 2> "$d/kernel.log") ||
  row FAIL 0 0 0 "kernel $kflavour:$karch not available: see $d/kernel.log"

# 4. Boot. The loader powers the machine off; panic=-1 + -no-reboot end qemu otherwise.
start=$EPOCHREALTIME
# shellcheck disable=SC2086
timeout "${MATRIX_TIMEOUT:-120}" "$qemu" $machine -m 512 -nographic -no-reboot -nic none \
  -kernel "$kernel" -initrd "$d/initrd.gz" \
  -append "console=$console panic=-1 quiet $append" < /dev/null > "$d/console.log" 2>&1
rc=$?
secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
tr -d '\r' < "$d/console.log" > "$d/console.txt"
result=$(grep -a -m1 "^RESULT $name " "$d/console.txt" || true)
[ $rc = 124 ] && [ -z "$result" ] && row FAIL 0 0 "$secs" "timeout after ${MATRIX_TIMEOUT:-120}s: see $d/console.txt"
if [ -z "$result" ]; then
  # e.g. the filter killed the child (SIGSYS = 31 on most ABIs): say how far it got.
  n=$(grep -ac '^CHECK .* ok' "$d/console.txt" || true)
  last=$(grep -a '^CHECK ' "$d/console.txt" | tail -n1 | cut -d' ' -f2)
  why=$(grep -a -m1 '^MATRIX child killed' "$d/console.txt" | cut -d' ' -f2- || true)
  row FAIL "$n" "?" "$secs" "no RESULT (qemu rc=$rc; ${why:-no child status}; last check: ${last:-none})"
fi
pt=${result##* }; p=${pt%/*}; t=${pt#*/}
fails=$(grep -a '^CHECK .* FAIL' "$d/console.txt" | head -n3 | cut -d' ' -f2 | paste -sd, -)
if [ "$p" = "$t" ] && [ "$t" -gt 0 ]; then row PASS "$p" "$t" "$secs" ""; fi
row FAIL "$p" "$t" "$secs" "failed: $fails"
