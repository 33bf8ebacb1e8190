#!/usr/bin/env bash
# End-to-end suite (issue #7): real Debian packages installed with apt-get by an
# unprivileged user under `rootemu run --root`, against real root, no emulation,
# fakeroot and proot -0. See docs/e2e.md for what it shows and the known hard cases.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: tests/e2e/run.sh [OPTIONS]          (run as root: it installs tools and makes roots)

Creates a Debian minbase root with debootstrap once (cached as a tarball), then for every
package of tests/e2e/packages.tsv and every mode installs it with
`apt-get install -y --no-install-recommends PKG` into a fresh copy of that root:

  root      real root: `chroot` in a private mount+PID namespace (the baseline)
  noemu     the user: rootemu run --no-emulation --root DIR -- apt-get ...
  rootemu   the user: rootemu run --root DIR -- apt-get ...
  fakeroot  the user: fakechroot fakeroot chroot DIR apt-get -o APT::Sandbox::User=root ...
  proot     the user: proot -0 -r DIR -b /proc -b /dev -b /sys -w / apt-get -o APT::Sandbox::User=root ...
  consistent  the user: rootemu run --consistent -- tar -xpf ROOT.tar (the root with its owners
            recorded), rootemu run --consistent --root DIR -- apt-get ..., rootemu export DIR
  storm     as consistent, while the handler is SIGKILLed: every time it stops at the test
            hook between receiving a call and answering it (ROOTEMU_TEST_STOP_BEFORE_ANSWER,
            every STORM_EVERY-th call) and at random moments; its export must equal the
            undisturbed consistent export (only the --storm-packages, default "sudo cron")

What a user would pick instead to build an image unprivileged (not run by default; each
unpacks the root, installs and packs the tree with tar in one emulated session, and its
tar is compared with real root's tree like the consistent export):

  fakeroot-tar  fakeroot -s (tar -xpf), fakechroot fakeroot -i -s chroot DIR apt-get, fakeroot -i tar -c
  buildah-tar   buildah unshare (the user's subuid range): tar -xpf, chroot DIR apt-get, tar -c
  proot-tar     proot -0: tar -xpf, proot -0 -r DIR apt-get, proot -0 tar -c

The .debs are downloaded once (cached) and every mode installs from the same files, so
the runs need no network. After each root and rootemu run the tree's file list (paths,
types, modes with setuid/setgid bits, symlink targets, device numbers, capabilities and
ACLs; not owners) is recorded and the two are compared. The consistent mode's export is
listed as a tar (owners, modes, types, device numbers, link targets, hard links, every
xattr decoded) and compared with real root's tree listed the same way, owners included.
Prints a markdown report; exits non-zero unless every `pass` package installs under rootemu
(and under consistent mode), at least half of them fail without emulation, every rootemu
tree equals the real-root tree up to tests/e2e/expected-differences.tsv and every
consistent export equals it up to tests/e2e/expected-differences-consistent.tsv.

Options:
  --packages "P ..."   only these packages (default: all of packages.tsv)
  --modes "M ..."      only these modes (default: root noemu rootemu fakeroot proot consistent storm)
  --storm-packages "P ..."  the packages the storm mode runs (default "sudo cron")
  --suites "S ..."     Debian suites (default: bookworm trixie; trixie runs the packages
                       whose suites column names it)
  --jobs N             packages installed in parallel (default 2)
  --user NAME          the unprivileged user (default rootemu-e2e; created if missing)
  --rootemu PATH       rootemu binary (default: $CARGO_TARGET_DIR or target, release;
                       built with cargo if missing)
  --cache DIR          cache (default ${ROOTEMU_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rootemu}/e2e)
  --work DIR           scratch space (default /var/tmp/rootemu-e2e; wiped at start)
  --mirror URL         Debian mirror (default: the one apt is configured with)
  --refresh            rebuild the cached roots and .debs
  --keep               keep every installed tree under WORK/runs (a tmpfs: umount it after)
  --no-tmpfs           install into WORK/runs on disk instead of a tmpfs (slower)
  --no-probes          skip the hard-case probes (docs/e2e.md, "Known hard cases")
  --report FILE        also write the report to FILE
  -h, --help           this text

Environment: ROOTEMU_E2E_MAX_AGE_DAYS (default 14): an older cached root is rebuilt;
STORM_EVERY (default 41): the storm mode's hook stops the handler at every N-th call.
EOF
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
packages_filter="" modes="root noemu rootemu fakeroot proot consistent storm" suites="bookworm trixie" jobs=2
storm_packages="sudo cron" STORM_EVERY=${STORM_EVERY:-41}
user=rootemu-e2e rootemu_bin="" cache="${ROOTEMU_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/rootemu}/e2e"
work=/var/tmp/rootemu-e2e mirror="" refresh=0 keep=0 report_file="" tmpfs=1 probes=1
while [ $# -gt 0 ]; do
  case $1 in
    --packages) packages_filter=$2; shift 2 ;;
    --modes) modes=$2; shift 2 ;;
    --storm-packages) storm_packages=$2; shift 2 ;;
    --suites) suites=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --user) user=$2; shift 2 ;;
    --rootemu) rootemu_bin=$2; shift 2 ;;
    --cache) cache=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --mirror) mirror=$2; shift 2 ;;
    --refresh) refresh=1; shift ;;
    --keep) keep=1; shift ;;
    --no-tmpfs) tmpfs=0; shift ;;
    --no-probes) probes=0; shift ;;
    --report) report_file=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

# Bump when the cached root's recipe changes.
CACHE_VERSION=1
MAX_AGE_DAYS=${ROOTEMU_E2E_MAX_AGE_DAYS:-14}
RUN_TIMEOUT=600
PY=/usr/bin/python3
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
t0=$(now_ms)
say() { printf '[e2e %4ds] %s\n' $((($(now_ms) - t0) / 1000)) "$*" >&2; }
die() { echo "run.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (it runs debootstrap and the real-root baseline)"
for m in $modes; do case $m in root|noemu|rootemu|fakeroot|proot|consistent|storm|fakeroot-tar|buildah-tar|proot-tar) ;; *) die "unknown mode $m" ;; esac; done

# --- host tools ---------------------------------------------------------------------
need=()
for pair in debootstrap:debootstrap fakeroot:fakeroot fakechroot:fakechroot proot:proot \
            /usr/bin/python3:python3 runuser:util-linux unshare:util-linux timeout:coreutils; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
# debootstrap needs the keyring of the suites it fetches.
[ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || need+=(debian-archive-keyring)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  # shellcheck source=scripts/lib/apt.sh
  source "$repo/scripts/lib/apt.sh"  # waits for the dpkg lock, prints progress
  apt_update
  apt_install e2e "${need[@]}"
fi

if [ -z "$mirror" ]; then
  mirror=$(grep -rhs '^URIs:.*/debian/*$' /etc/apt/sources.list.d/*.sources | head -n1 | awk '{print $2}' || true)
  [ -n "$mirror" ] || mirror=$(grep -hs '^deb .*/debian/* ' /etc/apt/sources.list | head -n1 | awk '{print $2}' || true)
  mirror=${mirror:-http://deb.debian.org/debian}
fi

# --- the unprivileged user and rootemu ------------------------------------------------
if ! id "$user" >/dev/null 2>&1; then
  say "creating user $user"
  useradd -m -s /bin/bash "$user"
fi
uid=$(id -u "$user")
[ "$uid" != 0 ] || die "--user $user is root"

if [ -z "$rootemu_bin" ]; then
  rootemu_bin="${CARGO_TARGET_DIR:-$repo/target}/release/rootemu"
  if [ ! -x "$rootemu_bin" ]; then
    say "building rootemu (release)"
    (cd "$repo" && cargo build --locked --release -p rootemu-cli)
  fi
fi
[ -x "$rootemu_bin" ] || die "no rootemu binary at $rootemu_bin"

# --- work area ---------------------------------------------------------------------
# The installed trees live on a tmpfs: 75 trees of ~250 MB written to this machine's disk
# are throttled by writeback to several seconds each; in memory they cost ~0.5 s.
if mountpoint -q "$work/runs" 2>/dev/null; then umount "$work/runs"; fi
rm -rf "$work"
mkdir -p "$work"/{bin,runs,logs,manifests,results}
if [ "$tmpfs" = 1 ]; then
  mount -t tmpfs -o "size=$((4 * jobs + 2))g,mode=0755" rootemu-e2e "$work/runs"
  [ "$keep" = 1 ] || trap 'umount "$work/runs" 2>/dev/null || true' EXIT
fi
install -m 0755 "$rootemu_bin" "$work/bin/rootemu"
chown "$user:" "$work" "$work/runs"
chmod 0755 "$work"
mkdir -p "$cache"

as_user() { runuser -u "$user" -- "$@"; }
CMD_ENV=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C
         TERM=dumb DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true)

# root_chroot DIR CMD...: real root in DIR with what `rootemu run --root` provides:
# fresh /proc (PID namespace), tmpfs /dev with the same nodes and a private devpts,
# read-only /sys, tmpfs /tmp and the host's resolv.conf.
root_chroot() {
  local dir=$1; shift
  unshare --mount --pid --fork --propagation private bash -c '
    set -e; d=$1; shift
    mount -t proc proc "$d/proc"
    mount -t tmpfs -o mode=0755,size=64k,nosuid,noexec tmpfs "$d/dev"
    for n in null zero full random urandom tty; do touch "$d/dev/$n"; mount --bind "/dev/$n" "$d/dev/$n"; done
    ln -s /proc/self/fd "$d/dev/fd"; ln -s /proc/self/fd/0 "$d/dev/stdin"
    ln -s /proc/self/fd/1 "$d/dev/stdout"; ln -s /proc/self/fd/2 "$d/dev/stderr"
    ln -s pts/ptmx "$d/dev/ptmx"; mkdir "$d/dev/pts" "$d/dev/shm"
    mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$d/dev/pts"
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$d/dev/shm"
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$d/tmp"
    mount --rbind /sys "$d/sys"; mount -o remount,bind,ro "$d/sys"
    if [ -f "$d/etc/resolv.conf" ] && [ ! -L "$d/etc/resolv.conf" ]; then
      mount --bind /etc/resolv.conf "$d/etc/resolv.conf"; fi
    exec chroot "$d" "$@"' root_chroot "$dir" "$@"
}

# --- cached roots --------------------------------------------------------------------
base_tar() { echo "$cache/$1-minbase.tar"; }
debs_dir() { echo "$cache/$1-debs"; }

build_base() { # SUITE
  local suite=$1 tar stamp tmp key age
  tar=$(base_tar "$suite") stamp="$cache/$suite-minbase.stamp"
  key="version=$CACHE_VERSION suite=$suite mirror=$mirror"
  if [ "$refresh" = 0 ] && [ -f "$tar" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$key" ]; then
    age=$(( ($(date +%s) - $(stat -c %Y "$stamp")) / 86400 ))
    if [ "$age" -lt "$MAX_AGE_DAYS" ]; then
      say "$suite: cached root $tar ($age days old)"
      return 0
    fi
    say "$suite: cached root is $age days old (limit $MAX_AGE_DAYS): rebuilding"
  fi
  tmp="$cache/$suite-minbase.tmp"
  rm -rf "$tmp" "$(debs_dir "$suite")"
  say "$suite: debootstrap --variant=minbase $suite $mirror"
  local t; t=$(now_ms)
  debootstrap --variant=minbase "$suite" "$tmp" "$mirror" > "$work/logs/debootstrap-$suite.log" 2>&1 \
    || { tail -20 "$work/logs/debootstrap-$suite.log" >&2; die "$suite: debootstrap failed (log above)"; }
  # No daemon may start in a build root (the convention of image builds).
  printf '#!/bin/sh\nexit 101\n' > "$tmp/usr/sbin/policy-rc.d"
  chmod 0755 "$tmp/usr/sbin/policy-rc.d"
  root_chroot "$tmp" "${CMD_ENV[@]}" sh -c 'apt-get clean && apt-get update -q' > "$work/logs/update-$suite.log" 2>&1 \
    || { tail -20 "$work/logs/update-$suite.log" >&2; die "$suite: apt-get update failed"; }
  rm -rf "$tmp"/var/lib/apt/lists/partial/* "$tmp"/var/cache/apt/*.bin
  # /dev's nodes are debootstrap's; every runner mounts its own /dev.
  tar -C "$tmp" --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -cf "$tar.new" .
  mv "$tar.new" "$tar"
  rm -rf "$tmp"
  echo "$key" > "$stamp"
  built[$suite]="root built by this run in $((($(now_ms) - t) / 1000)) s"
  say "$suite: cached root built in $((($(now_ms) - t) / 1000)) s ($(du -h "$tar" | cut -f1))"
}

# fetch_debs SUITE PKG...: download-only every package into the cache (once per package).
fetch_debs() {
  local suite=$1; shift
  local dir missing=() p d
  dir=$(debs_dir "$suite")
  mkdir -p "$dir"
  for p in "$@"; do grep -qx "$p" "$dir/.fetched" 2>/dev/null || missing+=("$p"); done
  [ ${#missing[@]} -gt 0 ] || { say "$suite: .debs cached ($(ls "$dir" | wc -l) files)"; return 0; }
  say "$suite: downloading .debs for ${missing[*]}"
  d="$work/runs/download-$suite"
  mkdir -p "$d"
  tar -C "$d" -xpf "$(base_tar "$suite")"
  find "$dir" -maxdepth 1 -name '*.deb' -exec cp -l -t "$d/var/cache/apt/archives/" {} +
  local failed=()
  for p in "${missing[@]}"; do
    # Each package alone, as its install will resolve it alone.
    if root_chroot "$d" "${CMD_ENV[@]}" apt-get install -y -q --no-install-recommends --download-only "$p" \
         >> "$work/logs/download-$suite.log" 2>&1; then
      echo "$p" >> "$dir/.fetched"
    else
      failed+=("$p")
    fi
  done
  find "$d/var/cache/apt/archives" -maxdepth 1 -name '*.deb' -exec cp -n -t "$dir/" {} +
  rm -rf "$d"
  [ ${#failed[@]} -eq 0 ] || return 1
}

# --- one install ---------------------------------------------------------------------
first_error() { # LOG: the first line that reads like an error (joined with the next if it ends in ':')
  local benign='(W: chown to root:adm of file /var/log/apt/term.log|invoke-rc\.d|^debconf: |^Setting up|^Unpacking|^Selecting|^Preparing|Processing triggers|^Get:|^Fetched|^Reading|^Building|^\(Reading|^  |^The following|^Need to get|^After this operation)'
  local pat='(^E: |error|Error|ERROR|failed|Failed|FAILED|not permitted|Invalid argument|Permission denied|Assertion|cannot |fatal|privilege)'
  grep -avE "$benign" "$1" | grep -aE -A1 -m1 "$pat" | awk 'NR==1{l=$0; if ($0 !~ /:$/) {print; exit}} NR==2{sub(/^ +/, ""); print l " " $0}' | tr -d '\r' | cut -c1-220 || true
}

run_one() { # SUITE PKG MODE
  local suite=$1 pkg=$2 mode=$3
  local id="$suite-$pkg-$mode" d="$work/runs/$suite-$pkg-$mode" log="$work/logs/$suite-$pkg-$mode.log"
  local tar debs
  tar=$(base_tar "$suite") debs="$work/runs/debs-$suite"
  local apt=(apt-get install -y -q --no-install-recommends -o Dpkg::Use-Pty=0 -o Dpkg::Options::=--force-unsafe-io)
  if [ "$mode" = root ]; then
    mkdir "$d"; tar -C "$d" -xpf "$tar"
    find "$debs" -maxdepth 1 -name '*.deb' -exec cp -l -t "$d/var/cache/apt/archives/" {} +
  elif [ "$mode" = fakeroot-tar ]; then
    as_user mkdir "$d"; as_user fakeroot -s "$d.state" -- tar -C "$d" -xpf - < "$tar"
    as_user find "$debs" -maxdepth 1 -name '*.deb' -exec cp -l -t "$d/var/cache/apt/archives/" {} +
  elif [ "$mode" = proot-tar ]; then
    as_user mkdir "$d"; as_user proot -0 tar -C "$d" -xpf - < "$tar"
    as_user find "$debs" -maxdepth 1 -name '*.deb' -exec cp -l -t "$d/var/cache/apt/archives/" {} +
  elif [ "$mode" = buildah-tar ]; then
    as_user mkdir "$d" "$d.home" "$d.run"
  elif [ "$mode" = consistent ] || [ "$mode" = storm ]; then
    # The cached root with its owners: tar as root in consistent mode records them.
    as_user mkdir "$d"; as_user "$work/bin/rootemu" run --consistent -- tar -C "$d" -xpf - < "$tar"
    as_user find "$debs" -maxdepth 1 -name '*.deb' -exec cp -l -t "$d/var/cache/apt/archives/" {} +
  else
    as_user mkdir "$d"; as_user tar -C "$d" -xpf - < "$tar"
    as_user find "$debs" -maxdepth 1 -name '*.deb' -exec cp -l -t "$d/var/cache/apt/archives/" {} +
  fi
  local rc=0 t; t=$(now_ms)
  case $mode in
    root) timeout -k 10 $RUN_TIMEOUT bash -c "$(declare -f root_chroot); root_chroot \"\$@\"" _ "$d" "${CMD_ENV[@]}" "${apt[@]}" "$pkg" ;;
    noemu) as_user timeout -k 10 $RUN_TIMEOUT "${CMD_ENV[@]}" "$work/bin/rootemu" run --no-emulation --root "$d" -- "${apt[@]}" "$pkg" ;;
    rootemu) as_user timeout -k 10 $RUN_TIMEOUT "${CMD_ENV[@]}" "$work/bin/rootemu" run --root "$d" -- "${apt[@]}" "$pkg" ;;
    fakeroot-tar) as_user timeout -k 10 $RUN_TIMEOUT "${CMD_ENV[@]}" fakechroot fakeroot -i "$d.state" -s "$d.state" chroot "$d" \
                    "${apt[@]}" -o APT::Sandbox::User=root "$pkg" \
                  && as_user fakeroot -i "$d.state" -- tar -C "$d" --numeric-owner --xattrs --xattrs-include='*' -cf "$work/runs/$id.tar" . ;;
    proot-tar) as_user timeout -k 10 $RUN_TIMEOUT "${CMD_ENV[@]}" proot -0 -r "$d" -b /proc -b /dev -b /sys -w / \
                 "${apt[@]}" -o APT::Sandbox::User=root "$pkg" \
               && as_user proot -0 tar -C "$d" --numeric-owner --xattrs --xattrs-include='*' -cf "$work/runs/$id.tar" . ;;
    buildah-tar) as_user timeout -k 10 $RUN_TIMEOUT "${CMD_ENV[@]}" HOME="$d.home" XDG_RUNTIME_DIR="$d.run" DEBS="$debs" buildah unshare sh -c '
                   set -e; d=$1 tar=$2 out=$3; shift 3
                   tar -C "$d" -xpf "$tar"
                   find "$DEBS" -maxdepth 1 -name "*.deb" -exec cp -t "$d/var/cache/apt/archives/" {} +
                   for m in proc dev sys; do mount --rbind /$m "$d/$m"; done
                   chroot "$d" "$@"; rc=$?
                   for m in proc dev sys; do umount -l "$d/$m"; done
                   [ $rc = 0 ] && tar -C "$d" --numeric-owner --xattrs --xattrs-include="*" -cf "$out" .' \
                   _ "$d" "$tar" "$work/runs/$id.tar" "${apt[@]}" "$pkg" ;;
    consistent) as_user timeout -k 10 $RUN_TIMEOUT "${CMD_ENV[@]}" "$work/bin/rootemu" run --consistent --root "$d" -- "${apt[@]}" "$pkg" ;;
    storm) storm_run "$d" "$work/runs/$id.storm" "${apt[@]}" "$pkg" ;;
    fakeroot) as_user timeout -k 10 $RUN_TIMEOUT "${CMD_ENV[@]}" fakechroot fakeroot chroot "$d" \
                "${apt[@]}" -o APT::Sandbox::User=root "$pkg" ;;
    proot) as_user timeout -k 10 $RUN_TIMEOUT "${CMD_ENV[@]}" proot -0 -r "$d" -b /proc -b /dev -b /sys -w / \
             "${apt[@]}" -o APT::Sandbox::User=root "$pkg" ;;
  esac > "$log" 2>&1 < /dev/null || rc=$?
  local ms=$(( $(now_ms) - t ))
  # apt-get exits 0 only when dpkg configured everything; double-check dpkg's own view.
  local state="ok"
  if [ "$rc" != 0 ]; then
    state="fail"
  elif ! grep -aq "^Package: $pkg\$" "$d/var/lib/dpkg/status" \
       || ! awk -v p="$pkg" '$0=="Package: "p{f=1} f&&/^Status:/{print; exit}' "$d/var/lib/dpkg/status" | grep -q 'install ok installed'; then
    state="fail"; rc=999; echo "run.sh: apt-get exited 0 but dpkg does not list $pkg as installed" >> "$log"
  fi
  if [ "$state" = ok ] && { [ "$mode" = root ] || [ "$mode" = rootemu ]; }; then
    "$PY" "$here/manifest.py" list "$d" > "$work/manifests/$id.tsv"
  fi
  if [ "$state" = ok ] && [ "$mode" = root ]; then
    "$PY" "$here/manifest.py" owners "$d" > "$work/manifests/$id-owners.tsv"
  fi
  if [ "$state" = ok ] && [[ $mode == *-tar ]]; then
    "$PY" "$here/manifest.py" tar "$work/runs/$id.tar" > "$work/manifests/$id.tsv"
    rm -rf "$work/runs/$id.tar" "$d.state" "$d.home" "$d.run"
  fi
  if [ "$state" = ok ] && { [ "$mode" = consistent ] || [ "$mode" = storm ]; }; then
    local te; te=$(now_ms)
    if as_user "$work/bin/rootemu" export --quiet "$d" -o "$work/runs/$id.tar" >> "$log" 2>&1; then
      printf 'export: %s ms, %s bytes\n' $(( $(now_ms) - te )) "$(stat -c %s "$work/runs/$id.tar")" >> "$log"
      "$PY" "$here/manifest.py" tar "$work/runs/$id.tar" > "$work/manifests/$id.tsv"
    else
      state="fail"; rc=998; echo "run.sh: rootemu export failed" >> "$log"
    fi
    rm -f "$work/runs/$id.tar"
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$suite" "$pkg" "$mode" "$state" "$ms" "$(first_error "$log")" > "$work/results/$id.tsv"
  [ "$keep" = 1 ] || rm -rf "$d"
  say "$(printf '%-8s %-20s %-8s %-4s %5.1fs' "$suite" "$pkg" "$mode" "$state" "$(echo "$ms" | awk '{print $1/1000}')")"
}

run_package() { # SUITE PKG: every mode, one after the other
  local m
  for m in $modes; do
    [ "$m" != storm ] || [[ " $storm_packages " == *" $2 "* ]] || continue
    run_one "$1" "$2" "$m"
  done
}

# storm_run DIR OUT APT...: the consistent install of DIR while the handler is SIGKILLed:
# each time the test hook stops it between receiving a call and answering it, and at
# random moments (its pid from the keeper's status, every 0.2-0.6 s). Writes to OUT the
# kills at the hook, the random kills and the keeper's last status (JSON).
storm_run() {
  local d=$1 out=$2 ctl="$1.control" pid rc=0 hook=0 rnd=0 last="{}" p st h next
  shift 2
  as_user timeout -k 10 $RUN_TIMEOUT "${CMD_ENV[@]}" ROOTEMU_TEST_STOP_BEFORE_ANSWER="$STORM_EVERY" \
    "$work/bin/rootemu" run --consistent --control "$ctl" --root "$d" -- "$@" &
  pid=$!
  local -A seen=()
  next=$(( $(now_ms) + 300 ))
  while kill -0 "$pid" 2>/dev/null; do
    # A stopped handler: the only stopped process of the user running this rootemu.
    for p in $(ps -u "$user" -o pid=,stat=,args= | awk -v c="$ctl" '$2 ~ /^T/ && index($0, c) { print $1 }'); do
      kill -9 "$p" 2>/dev/null || true
      if [ -z "${seen[$p]:-}" ]; then seen[$p]=1; hook=$((hook + 1)); fi
    done
    if [ "$(now_ms)" -ge "$next" ]; then
      st=$(as_user timeout 5 "$work/bin/rootemu" supervisor status --control "$ctl" 2> /dev/null || true)
      if [ -n "$st" ]; then
        last=$st
        h=$(printf '%s' "$st" | "$PY" -c 'import json, sys; print(json.load(sys.stdin).get("handler_pid", 0))')
        if [ "$h" -gt 0 ] && [ $((RANDOM % 2)) = 0 ] && [ -z "${seen[$h]:-}" ]; then
          kill -9 "$h" 2>/dev/null && { seen[$h]=1; rnd=$((rnd + 1)); }
        fi
      fi
      next=$(( $(now_ms) + 200 + RANDOM % 400 ))
    fi
    sleep 0.01
  done
  wait "$pid" || rc=$?
  printf '%s\t%s\t%s\n' "$hook" "$rnd" "$last" > "$out"
  return $rc
}

# --- hard-case probes ---------------------------------------------------------------
# Small commands under rootemu that show each known hard case (docs/e2e.md) as it is
# today. Informative, not gated: a probe whose output changed is reported as CHANGED so
# the documentation can be brought up to date.
PROBE_SUITE=bookworm
PROBE_PKGS=(openssh-server fakeroot acl libcap2-bin)
probe_rows=()
probe() { # NAME EXPECT_REGEX DESCRIPTION -- CMD...  (CMD runs as the user)
  local name=$1 expect=$2 what=$3; shift 4
  local out rc=0
  out=$(as_user timeout -k 5 120 "${CMD_ENV[@]}" "$@" 2>&1 < /dev/null) || rc=$?
  printf '%s\n' "$out" > "$work/logs/probe-$name.log"
  local seen verdict
  seen=$(grep -aE -m1 "$expect" <<< "$out" || true)
  if [ -n "$seen" ]; then verdict="as documented"; else verdict="CHANGED"; seen=$(tail -n1 <<< "$out"); fi
  seen=${seen//|/\\|}
  probe_rows+=("| $name | $what | \`${seen:0:160}\` (exit $rc) | $verdict |")
  say "probe $name: $verdict"
}

run_probes() {
  local d="$work/runs/probe" emu="$work/bin/rootemu"
  as_user mkdir "$d"; as_user tar -C "$d" -xpf - < "$(base_tar $PROBE_SUITE)"
  as_user find "$work/runs/debs-$PROBE_SUITE" -maxdepth 1 -name '*.deb' -exec cp -l -t "$d/var/cache/apt/archives/" {} +
  as_user "${CMD_ENV[@]}" "$emu" run --root "$d" -- apt-get install -y -q --no-install-recommends \
    -o Dpkg::Use-Pty=0 -o Dpkg::Options::=--force-unsafe-io "${PROBE_PKGS[@]}" > "$work/logs/probe-setup.log" 2>&1 \
    || { say "probes: installing ${PROBE_PKGS[*]} under rootemu failed (see $work/logs/probe-setup.log)"; return 0; }
  probe apt-sandbox 'Could not switch (group|user)' \
    "apt without rootemu's hook drops to _apt, then checks getgid(): the faked setgid is seen through" \
    -- "$emu" run --no-apt-hook --root "$d" -- apt-get update
  local port=$((20000 + RANDOM % 20000))
  probe sshd-privsep 'was able to restore old' \
    "sshd's pre-auth child drops to sshd, then checks that setgid(0) now fails (misc.c permanently_set_uid)" \
    -- "$emu" run --root "$d" -- sh -c "mkdir -p /run/sshd; /usr/sbin/sshd -p $port -o ListenAddress=127.0.0.1 -E /tmp/sshd.log || exit 1; sleep 0.5; ssh -o StrictHostKeyChecking=no -o BatchMode=yes -o ConnectTimeout=5 -p $port root@127.0.0.1 true; sleep 0.5; cat /tmp/sshd.log"
  probe setuid-no-state 'uid=0\(root\)' \
    "zero consistency: after a faked switch to nobody the process still is uid 0" \
    -- "$emu" run --root "$d" -- runuser -u nobody -- id
  probe mknod-device 'mknod rc=0, node absent' \
    "mknod of a device returns 0 and creates nothing (MAKEDEV then fails on the missing node)" \
    -- "$emu" run --root "$d" -- sh -c 'mknod /root/null c 1 3; rc=$?; if [ -e /root/null ]; then echo "mknod rc=$rc, node present"; else echo "mknod rc=$rc, node absent"; fi'
  probe acl-unmapped-group 'Invalid argument' \
    "setxattr(system.posix_acl_access) naming an unmapped group: EINVAL (systemd-tmpfiles on /var/log/journal)" \
    -- "$emu" run --root "$d" -- sh -c 'touch /root/f && setfacl -m g:adm:rx /root/f'
  probe acl-mapped-group '^ok$' \
    "the same ACL naming group root (mapped): applied" \
    -- "$emu" run --root "$d" -- sh -c 'touch /root/f && setfacl -m g:root:rx /root/f && getfacl -c /root/f | grep -q "^group:root:r-x" && echo ok'
  probe setcap 'cap_net_raw=ep' \
    "setcap in the user namespace works (stored as a v3 capability with rootid = the user's uid)" \
    -- "$emu" run --root "$d" -- sh -c 'cp /bin/true /root/t && setcap cap_net_raw+ep /root/t && getcap /root/t'
  probe fakeroot-in-userns 'Invalid argument' \
    "fakeroot inside a user namespace: its chown wrapper forgives only EPERM, the kernel says EINVAL" \
    -- "$emu" run --no-emulation --root "$d" -- fakeroot sh -c 'touch /root/x && chown 0:8 /root/x'
  [ "$keep" = 1 ] || rm -rf "$d"
}

# --- the runs -------------------------------------------------------------------------
declare -A why expect built
plan=() # "suite pkg"
for suite in $suites; do
  pkgs=()
  while IFS=$'\t' read -r p s e w; do
    case $p in ''|'#'*) continue ;; esac
    [ -z "$packages_filter" ] || [[ " $packages_filter " == *" $p "* ]] || continue
    [[ ",$s," == *",$suite,"* ]] || continue
    why[$p]=$w expect[$p]=$e
    pkgs+=("$p")
  done < "$here/packages.tsv"
  [ ${#pkgs[@]} -gt 0 ] || continue
  build_base "$suite"
  fetch=("${pkgs[@]}")
  [ "$probes" = 0 ] || [ "$suite" != "$PROBE_SUITE" ] || fetch+=("${PROBE_PKGS[@]}")
  if ! fetch_debs "$suite" "${fetch[@]}"; then
    [ "$refresh" = 1 ] && die "$suite: downloading .debs failed (see $work/logs/download-$suite.log)"
    say "$suite: download failed; the cached package lists may be stale: rebuilding"
    refresh=1; build_base "$suite"; refresh=0
    fetch_debs "$suite" "${fetch[@]}" || die "$suite: downloading .debs failed (see $work/logs/download-$suite.log)"
  fi
  # On the same file system as the trees: every install hard-links them into its apt cache.
  mkdir -p "$work/runs/debs-$suite"
  cp "$(debs_dir "$suite")"/*.deb "$work/runs/debs-$suite/"
  chown -R "$user:" "$work/runs/debs-$suite"
  for p in "${pkgs[@]}"; do plan+=("$suite $p"); done
done
[ ${#plan[@]} -gt 0 ] || die "nothing to run (check --packages and --suites)"

setup_s=$((($(now_ms) - t0) / 1000))
say "installing ${#plan[@]} package(s) x modes [$modes], $jobs at a time"
t_runs=$(now_ms)
running=0
for item in "${plan[@]}"; do
  set -- $item
  run_package "$1" "$2" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then wait -n || true; running=$((running - 1)); fi
done
wait
runs_s=$((($(now_ms) - t_runs) / 1000))
if [ "$probes" = 1 ] && [[ " $suites " == *" $PROBE_SUITE "* ]] && [ -d "$work/runs/debs-$PROBE_SUITE" ]; then
  t_probes=$(now_ms)
  run_probes
  probes_s=$((($(now_ms) - t_probes) / 1000))
fi

# --- comparison and report -------------------------------------------------------------
cat "$work"/results/*.tsv | sort > "$work/results.tsv"
result() { awk -F'\t' -v s="$1" -v p="$2" -v m="$3" '$1==s && $2==p && $3==m' "$work/results.tsv"; }

# compare RULES REFERENCE OTHER DIFF: sets cmp_out to yes, yes (N expected differences) or NO: ...
compare() {
  if "$PY" "$here/manifest.py" diff "$1" "$2" "$3" > "$4"; then
    local n; n=$(grep -c '^expected' "$4" || true)
    if [ "$n" = 0 ]; then cmp_out="yes"; else cmp_out="yes ($n expected difference$([ "$n" = 1 ] || echo s))"; fi
  else
    cmp_out="NO: $(grep -c '^UNEXPECTED' "$4") unexpected difference(s)"
  fi
}

declare -A filesq exportq stormq
for item in "${plan[@]}"; do
  set -- $item
  id="$1-$2"
  ref="$work/manifests/$id-root.tsv" emu="$work/manifests/$id-rootemu.tsv"
  if [ -f "$ref" ] && [ -f "$emu" ]; then
    compare "$here/expected-differences.tsv" "$ref" "$emu" "$work/manifests/$id.diff"; filesq[$id]=$cmp_out
  elif [[ " $modes " == *" root "* && " $modes " == *" rootemu "* ]]; then
    filesq[$id]="n/a (an install failed)"
  else
    filesq[$id]="n/a (root and rootemu modes not both run)"
  fi
  ref="$work/manifests/$id-root-owners.tsv" exp="$work/manifests/$id-consistent.tsv"
  if [ -f "$ref" ] && [ -f "$exp" ]; then
    compare "$here/expected-differences-consistent.tsv" "$ref" "$exp" "$work/manifests/$id-consistent.diff"; exportq[$id]=$cmp_out
  elif [[ " $modes " == *" root "* && " $modes " == *" consistent "* ]]; then
    exportq[$id]="n/a (an install failed)"
  else
    exportq[$id]="n/a (root and consistent modes not both run)"
  fi
  exp="$work/manifests/$id-consistent.tsv" storm="$work/manifests/$id-storm.tsv"
  if [ -f "$exp" ] && [ -f "$storm" ]; then
    compare /dev/null "$exp" "$storm" "$work/manifests/$id-storm.diff"; stormq[$id]=$cmp_out
  elif [[ " $modes " == *" storm "* && " $storm_packages " == *" $2 "* ]]; then
    stormq[$id]="NO: an install failed"
  fi
done

# print_diffs SUFFIX: the non-identical diffs SUITE-PKG$SUFFIX as a markdown list.
print_diffs() {
  local f name any=0
  for f in "$work"/manifests/*"$1"; do
    [ -e "$f" ] || continue
    name=$(basename "$f" "$1")
    [[ $name != *-consistent && $name != *-tools ]] || continue
    grep -qv '^identical$' "$f" || continue
    any=1
    echo "- $name:"
    sed 's/^/  - /; s/\t/ | /g' "$f"
  done
  [ "$any" = 1 ] || echo "none"
}

notes=() gate_fail=()
cell() { # SUITE PKG MODE -> $cell_out (not a subshell: it appends to notes)
  local r state ms err
  r=$(result "$1" "$2" "$3")
  [ -n "$r" ] || { cell_out="-"; return; }
  IFS=$'\t' read -r _ _ _ state ms err <<< "$r"
  local secs
  secs=$(awk -v m="$ms" 'BEGIN{printf "%.1f", m/1000}')
  if [ -n "$err" ]; then
    notes+=("$1/$2/$3: \`${err//\`/\'}\`")
    cell_out="$state ${secs}s [${#notes[@]}]"
  else
    cell_out="$state ${secs}s"
  fi
}

{
  echo "# rootemu end-to-end: apt-get install as an unprivileged user"
  echo
  echo "rootemu $("$work/bin/rootemu" --version | awk '{print $2}'), host $(uname -r), mirror $mirror, user $user (uid $uid)."
  echo "Each cell: installed (\`ok\`) or not (\`fail\`), wall time of the apt-get run, [n] = first error line below."
  echo "Every mode runs \`apt-get install -y --no-install-recommends PKG\` (dpkg with --force-unsafe-io) in a fresh copy"
  echo "of the cached root, from the same downloaded .debs:"
  echo
  echo "- real root: \`chroot DIR\` as root in a private mount+PID namespace (same /proc, /dev, /sys, /tmp as rootemu gives)"
  echo "- no emulation: \`rootemu run --no-emulation --root DIR -- apt-get ...\` (user namespace only, like \`unshare -r\`)"
  echo "- rootemu: \`rootemu run --root DIR -- apt-get ...\`"
  echo "- fakeroot: \`fakechroot fakeroot chroot DIR apt-get -o APT::Sandbox::User=root ...\` (no namespace; mmdebstrap's fakechroot mode)"
  echo "- proot -0: \`proot -0 -r DIR -b /proc -b /dev -b /sys -w / apt-get -o APT::Sandbox::User=root ...\`"
  echo "- consistent: \`rootemu run --consistent -- tar -xpf ROOT.tar\`, \`rootemu run --consistent --root DIR -- apt-get ...\`, then \`rootemu export DIR\`;"
  echo "  its export is compared with real root's tree owners included (uid, gid, mode, type, rdev, link target, hard links, xattrs)"
  echo
  for suite in $suites; do
    rows=()
    for item in "${plan[@]}"; do set -- $item; [ "$1" = "$suite" ] && rows+=("$2"); done
    [ ${#rows[@]} -gt 0 ] || continue
    echo "## Debian $suite (${built[$suite]:-cached root})"
    echo
    echo "| package | why it is hard | real root | no emulation | rootemu | fakeroot + fakechroot | proot -0 | files equal to real root | consistent | export equal to real root, owners included |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    n_pass=0 n_noemu_fail=0
    for p in "${rows[@]}"; do
      label=$p; [ "${expect[$p]}" = hard ] && label="$p (known hard)"
      cell "$suite" "$p" root; c_root=$cell_out; cell "$suite" "$p" noemu; c_noemu=$cell_out
      cell "$suite" "$p" rootemu; c_emu=$cell_out; cell "$suite" "$p" fakeroot; c_fr=$cell_out
      cell "$suite" "$p" proot; c_pr=$cell_out; cell "$suite" "$p" consistent; c_co=$cell_out
      echo "| $label | ${why[$p]} | $c_root | $c_noemu | $c_emu | $c_fr | $c_pr | ${filesq[$suite-$p]} | $c_co | ${exportq[$suite-$p]} |"
      [ "${expect[$p]}" = pass ] || continue
      n_pass=$((n_pass + 1))
      [[ $c_noemu == fail* ]] && n_noemu_fail=$((n_noemu_fail + 1))
      if [[ " $modes " == *" rootemu "* && $c_emu != ok* ]]; then gate_fail+=("$suite/$p does not install under rootemu"); fi
      if [[ " $modes " == *" root "* && " $modes " == *" rootemu "* ]] && [[ ${filesq[$suite-$p]} != yes* ]]; then
        gate_fail+=("$suite/$p: files under rootemu differ from real root (${filesq[$suite-$p]})")
      fi
      if [[ " $modes " == *" consistent "* && $c_co != ok* ]]; then gate_fail+=("$suite/$p does not install under consistent mode"); fi
      if [[ " $modes " == *" root "* && " $modes " == *" consistent "* ]] && [[ ${exportq[$suite-$p]} != yes* ]]; then
        gate_fail+=("$suite/$p: the consistent export differs from real root (${exportq[$suite-$p]})")
      fi
    done
    echo
    echo "$suite: $n_noemu_fail of $n_pass gated packages fail without emulation."
    if [[ " $modes " == *" noemu "* ]] && [ $((2 * n_noemu_fail)) -lt "$n_pass" ]; then
      gate_fail+=("$suite: only $n_noemu_fail of $n_pass packages fail without emulation (need at least half)")
    fi
    echo
  done
  if [ ${#notes[@]} -gt 0 ]; then
    echo "### First error lines"
    echo
    i=0; for n in "${notes[@]}"; do i=$((i + 1)); echo "$i. $n"; done
    echo
  fi
  if [ ${#probe_rows[@]} -gt 0 ]; then
    echo "### Hard cases, probed under rootemu ($PROBE_SUITE)"
    echo
    echo "| probe | what it shows | output | |"
    echo "|---|---|---|---|"
    printf '%s\n' "${probe_rows[@]}"
    echo
  fi
  echo "### Differences from real root (rootemu trees)"
  echo
  print_diffs .diff
  echo
  tools=()
  for m in consistent fakeroot-tar buildah-tar proot-tar; do [[ " $modes " == *" $m "* ]] && tools+=("$m"); done
  if [ ${#tools[@]} -gt 1 ]; then
    echo "### Owners in the image: the tar each unprivileged way produces, against real root's tree"
    echo
    echo "Per package: paths whose owner (uid or gid) differs, device nodes that are not the same device,"
    echo "other differences (mode, type, link target, hard links, xattrs, paths only on one side); \`-\` = the install failed."
    echo
    printf '| suite | package |'; for m in "${tools[@]}"; do printf ' %s |' "$m"; done; echo
    printf '|---|---|'; for m in "${tools[@]}"; do printf -- '---|'; done; echo
    for item in "${plan[@]}"; do
      set -- $item
      printf '| %s | %s |' "$1" "$2"
      for m in "${tools[@]}"; do
        ref="$work/manifests/$1-$2-root-owners.tsv" got="$work/manifests/$1-$2-$m.tsv"
        if [ -f "$ref" ] && [ -f "$got" ]; then
          "$PY" "$here/manifest.py" diff /dev/null "$ref" "$got" > "$work/manifests/$1-$2-$m-tools.diff" || true
          printf ' %s |' "$(awk -F'\t' '$1=="UNEXPECTED"{f=$3; if (f=="uid"||f=="gid") {o[$2]=1} else if (f=="dev"||($2 ~ /^dev\// && f=="type")) {d[$2]=1} else {x[$2]=1}}
            END{no=0; nd=0; nx=0; for (k in o) no++; for (k in d) nd++; for (k in x) nx++; printf "owners %d, devices %d, other %d", no, nd, nx}' "$work/manifests/$1-$2-$m-tools.diff")"
        else
          printf ' - |'
        fi
      done
      echo
    done
    echo
  fi
  echo "### Differences from real root (consistent exports, owners included)"
  echo
  print_diffs -consistent.diff
  echo
  storm_rows=()
  for item in "${plan[@]}"; do
    set -- $item
    [ -n "${stormq[$1-$2]:-}" ] && storm_rows+=("$1 $2")
  done
  if [ ${#storm_rows[@]} -gt 0 ]; then
    echo "### The handler SIGKILLed during apt-get (storm mode)"
    echo
    echo "The hook stops the handler before answering every ${STORM_EVERY}th call and the run kills it there;"
    echo "it is also killed at random moments. The export must equal the undisturbed consistent export."
    echo
    echo "Replays, answers to no one and takeovers are the keeper's counts at the last status read (up to 0.6 s before the end)."
    echo
    echo "| suite | package | kills between receive and answer | kills at random moments | calls replayed | answers to no one (lost or double) | takeover median / worst | export equal to the undisturbed one |"
    echo "|---|---|---|---|---|---|---|---|"
    kills=0
    for item in "${storm_rows[@]}"; do
      set -- $item
      f="$work/runs/$1-$2-storm.storm"
      if [ -f "$f" ]; then
        IFS=$'\t' read -r hook rnd last < "$f"
        stats=$(printf '%s' "$last" | "$PY" -c 'import json, sys
s = json.load(sys.stdin); l = sorted(s.get("takeover_latencies_us", []))
mid = f"{l[len(l) // 2] / 1000:.1f} / {l[-1] / 1000:.1f} ms" if l else "-"
print(s.get("replayed", "-"), s.get("gone", "-"), mid, sep="\t")')
        IFS=$'\t' read -r replayed gone lat <<< "$stats"
      else
        hook=0 rnd=0 replayed=- gone=- lat=-
      fi
      kills=$((kills + hook + rnd))
      echo "| $1 | $2 | $hook | $rnd | $replayed | $gone | $lat | ${stormq[$1-$2]} |"
      [[ ${stormq[$1-$2]} == yes* ]] || gate_fail+=("$1/$2: the storm run's export differs from the undisturbed one (${stormq[$1-$2]})")
      [ "$gone" = 0 ] || gate_fail+=("$1/$2: the storm run answered no one $gone time(s) (lost or double answers)")
    done
    echo
    echo "$kills kills in all."
    [ "$kills" -ge 100 ] || gate_fail+=("storm: only $kills kills of the handler (need 100: lower STORM_EVERY)")
    echo
  fi
  total_s=$((($(now_ms) - t0) / 1000))
  echo "Time: ${total_s} s in all (setup ${setup_s} s: tools, cached roots, .debs; installs ${runs_s} s with $jobs job(s); probes ${probes_s:-0} s)."
  echo
  if [ ${#gate_fail[@]} -eq 0 ]; then
    echo "RESULT: PASS"
  else
    echo "RESULT: FAIL"
    for g in "${gate_fail[@]}"; do echo "- $g"; done
  fi
} > "$work/report.md"

cat "$work/report.md"
[ -z "$report_file" ] || cp "$work/report.md" "$report_file"
echo "(logs, manifests and results in $work)" >&2
[ ${#gate_fail[@]} -eq 0 ]
