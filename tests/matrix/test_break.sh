#!/usr/bin/env bash
# The matrix can fail: feed one target a deliberately broken program and assert that
# its row FAILs while a healthy row still PASSes.
#   1. byteorder: s390x gets the little-endian export (the kernel rejects it: EINVAL).
#   2. omit: aarch64 gets a program exported for every other ABI only (unknown_abi
#      kill_process: the loader dies with SIGSYS right after installing it).
# usage: tests/matrix/test_break.sh   (same environment as scripts/matrix)
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
pass=0 fail=0
work=$(mktemp -d "${TMPDIR:-/tmp}/rootemu-matrix-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
export MATRIX_WORK=$work
expect() {  # expect <description> <output> <regex>
  if grep -Eq "$3" <<<"$2"; then echo "ok   $1"; pass=$((pass + 1)); else echo "FAIL $1"; fail=$((fail + 1)); fi
}

out=$("$root/scripts/matrix" --no-install --layer 1 -j 2 --only s390x,aarch64 --break s390x 2>&1); rc=$?
echo "$out" | sed -n '/^ABI/,/^matrix:/p'
expect "byteorder: matrix exits non-zero" "rc=$rc" '^rc=1$'
expect "byteorder: s390x row fails" "$out" '^s390x\(brk\) +1 +FAIL .*filter_install'
expect "byteorder: aarch64 row still passes" "$out" '^aarch64 +1 +PASS'

out=$(MATRIX_BREAK_MODE=omit "$root/scripts/matrix" --no-install --layer 1 --only aarch64 --break aarch64 --expect-fail 2>&1); rc=$?
echo "$out" | sed -n '/^ABI/,/^matrix:/p'
expect "omit: --expect-fail exits 0" "rc=$rc" '^rc=0$'
expect "omit: aarch64 row fails (killed)" "$out" '^aarch64\(brk\) +1 +FAIL .*signal 31'

echo "matrix-break: $pass passed, $fail failed"
[ $fail = 0 ]
