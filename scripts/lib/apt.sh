# Sourced (bash) by the scripts that install packages or download .debs: scripts/setup-deps,
# scripts/oracle-deps, scripts/cross-build, tests/matrix/install.sh, tests/matrix/fetch-kernel.sh.
#
#   apt_get ARGS...    apt-get that waits for the dpkg and apt locks (another apt run,
#                      unattended-upgrades) up to $ROOTEMU_APT_LOCK_WAIT seconds (default
#                      1200) instead of failing at once, and prints why it waits
#   apt_cache ARGS...  apt-cache, same cache options
#   apt_update         apt-get update; a foreign or security index may fail (exit 100,
#                      "Mirror sync in progress?") while the main suites load: a warning
#   apt_install TAG PKG...  apt-get install -y --no-install-recommends with one progress
#                      line per ~10% of the packages downloaded, unpacked and set up (a
#                      PKG=VERSION older than the installed one is a downgrade: allowed);
#                      dpkg without an fsync per file (--force-unsafe-io, as Debian's
#                      docker images configure it: ~1500 MB of cross compilers otherwise
#                      take minutes more)
#   qemu_from          `-t bookworm-backports` when an installed qemu package came from
#                      bookworm-backports (the image's qemu-utils 10.0 does): every qemu
#                      package must then come from there with the dependencies it needs
#                      (seabios, qemu-system-data...; PKG/RELEASE would not take those), or
#                      apt reports broken packages; else nothing (bookworm's qemu 7.2)
#
# apt's package cache: Debian's docker images set `Dir::Cache::pkgcache ""`
# (/etc/apt/apt.conf.d/docker-clean), so every apt-get/apt-cache call rebuilds it from the
# indexes of every architecture (~20 s each here with 7 foreign ones). These calls keep
# it in $ROOTEMU_CACHE/apt instead (default ~/.cache/rootemu/apt; apt rebuilds it when an
# index or dpkg's status changes). Nothing of the system's apt configuration is changed.

export DEBIAN_FRONTEND=noninteractive
apt_lock_wait=${ROOTEMU_APT_LOCK_WAIT:-1200}
apt_cache_dir=${ROOTEMU_CACHE:-${HOME:-/root}/.cache/rootemu}/apt
mkdir -p "$apt_cache_dir" 2>/dev/null || apt_cache_dir=""
apt_opts=(-o "DPkg::Lock::Timeout=$apt_lock_wait")
[ -z "$apt_cache_dir" ] ||
  apt_opts+=(-o "Dir::Cache::pkgcache=$apt_cache_dir/pkgcache.bin" -o "Dir::Cache::srcpkgcache=$apt_cache_dir/srcpkgcache.bin")

# apt_locked TOOL ARGS...: TOOL (apt-get or apt-cache) with apt_opts, run again while it
# fails on a lock (apt-get update and the archive lock do not honour DPkg::Lock::Timeout).
apt_locked() {
  local tool=$1 err start=$SECONDS rc said=0
  local -; set +e
  shift
  err=$(mktemp "${TMPDIR:-/tmp}/rootemu-apt.XXXXXX")
  while :; do
    "$tool" "${apt_opts[@]}" "$@" 2> "$err"
    rc=$?
    if [ $rc != 0 ] && grep -q 'Could not get lock\|Unable to acquire the dpkg\|Unable to lock' "$err" &&
       [ $((SECONDS - start)) -lt "$apt_lock_wait" ]; then
      [ $said = 1 ] || echo "apt: waiting for $(grep -o -m1 'lock [^ ]*\. It is held by process [0-9]* ([^)]*)' "$err" || echo "an apt lock")" >&2
      said=1
      sleep 5
      continue
    fi
    [ $said = 0 ] || echo "apt: lock acquired after $((SECONDS - start)) s" >&2
    cat "$err" >&2
    rm -f "$err"
    return $rc
  done
}

apt_get() { apt_locked apt-get "$@"; }
apt_cache() { apt_locked apt-cache "$@"; }

apt_update() {
  local out
  out=$(apt_get update -qq 2>&1) || echo "apt: warning: apt-get update: $(printf '%s\n' "$out" | grep -m3 '^[EW]:' | paste -sd ' ' -)" >&2
}

apt_install() {
  local tag=$1 rc start=$SECONDS log opts=()
  local -; set +e
  shift
  while [ "${1:-}" = -t ]; do opts+=("$1" "$2"); shift 2; done
  echo "$tag: installing $# packages${opts[*]:+ (${opts[*]})}: $*" >&2
  log=$(mktemp "${TMPDIR:-/tmp}/rootemu-apt.XXXXXX")
  apt_get install -y -q --no-install-recommends --allow-downgrades -o Dpkg::Use-Pty=0 \
    -o Dpkg::Options::=--force-unsafe-io "${opts[@]}" "$@" | tee "$log" |
    awk -v tag="$tag" -v t0="$(date +%s)" '
      function say(what, n,  now) { if (total > 0 && (n == total || n >= next_[what])) {
          "date +%s" | getline now; close("date +%s")
          printf "%s: %s %d/%d packages (%d s)\n", tag, what, n, total, now - t0 > "/dev/stderr"; fflush("/dev/stderr")
          next_[what] = n + (total > 10 ? int(total / 10) : 1) } }
      /newly installed/ { total = $1 + $3; next_["downloaded"] = next_["unpacked"] = next_["set up"] = 1 }
      /^Get:[0-9]+ / { got++; say("downloaded", got) }
      /^Unpacking / { unpacked++; say("unpacked", unpacked) }
      /^Setting up / { set++; say("set up", set) }
      /^(E|W): / { print > "/dev/stderr" }'
  rc=${PIPESTATUS[0]}
  if [ "$rc" != 0 ]; then
    # apt explains a failed resolution before its E: line.
    sed -n '/unmet dependencies/,$p' "$log" | head -n 40 >&2
    rm -f "$log"
    echo "$tag: apt-get install failed (exit $rc)" >&2
    return "$rc"
  fi
  rm -f "$log"
  echo "$tag: installed in $((SECONDS - start)) s" >&2
}

qemu_from() {
  if dpkg-query -W -f='${db:Status-Abbrev} ${Version}\n' 'qemu-*' 2>/dev/null | grep -q '^ii .*~bpo12'; then
    echo "-t bookworm-backports"
  fi
}
